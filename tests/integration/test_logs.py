"""Worker output as the host keeps it (SPEC "logs", log_file, log_max_size, log_keep, log_lines):
the ring and `aerie supervisor logs`, `logs -f` against a worker that writes 100,000 lines as fast
as it can (a client that reads, and one that is stopped and resumed), log_file rotation and its
reopen on SIGUSR1, stderr at warn, and native journal entries parsed from a socket the test
binds."""
import json
import os
import signal
import socket
import struct
import subprocess

import pytest

from hostlib import config, service, wait_for

LINES = 100000


def fifo(tmp_path, name="go"):
    path = tmp_path / name
    os.mkfifo(path)
    return path


def burst_command(count=LINES):
    """Waits for a line on the FIFO go, then writes 1…count to stdout at once (seq) and stays."""
    return f"/bin/sh -c 'read x < go; seq 1 {count}; exec sleep 1000'"


def frames(sock):
    """The NUL-ended frames of sock, decoded, as they come."""
    buffer = b""
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            return
        buffer += chunk
        *complete, buffer = buffer.split(b"\0")
        for frame in complete:
            yield json.loads(frame)


def check_sequence(objects, count):
    """Line objects and gaps from a follow of a burst: every number 1…count in order, each one
    either received or counted in a {"missed":N} in its place. Returns (received, missed)."""
    expected, received, missed = 1, 0, 0
    for obj in objects:
        if "missed" in obj:
            assert obj["service"] == "web" and obj["missed"] > 0
            expected += obj["missed"]
            missed += obj["missed"]
            continue
        assert obj["service"] == "web" and obj["worker"] == 0 and obj["stream"] == "stdout"
        assert obj["line"] == str(expected), f"line {obj['line']} where {expected} was due"
        expected += 1
        received += 1
    assert expected == count + 1, f"ended at {expected - 1} of {count}"
    return received, missed


def cli(aerie_bin, host, *args, **kwargs):
    return subprocess.run([aerie_bin, "supervisor", "-s", str(host.socket), "logs", *args],
                          capture_output=True, text=True, timeout=30, **kwargs)


def test_logs_ring_and_cli(start_host, aerie_bin, tmp_path):
    host = start_host(config(service(
        "web", "/bin/sh -c 'echo one; echo two >&2; printf \"bell\\a\\033[31mred\\n\"; "
        "exec sleep 1000'", count=2, log_lines=5)))
    # Two workers of three lines: the ring keeps log_lines (5) of the 6.
    host.wait_ready("web", 2)
    host.wait_log("web.0[", count=3)
    host.wait_log("web.1[", count=3)
    assert len(host.request({"please": "logs"})["lines"]) == 5
    assert len(host.request({"please": "logs", "lines": 2})["lines"]) == 2
    lines = host.request({"please": "logs", "service": "web", "worker": 1, "lines": 3})["lines"]
    # stdout and stderr are two pipes: their lines' order between them is the reads'.
    assert sorted((l["worker"], l["stream"], l["line"]) for l in lines) == [
        (1, "stderr", "two"), (1, "stdout", "bell\a\x1b[31mred"), (1, "stdout", "one")] or \
        len(lines) == 2  # worker 1's first line was the one of the six forgotten
    pid = [w["pid"] for w in host.workers("web") if w["index"] == 1][0]
    assert all(l["pid"] == pid and l["time"].endswith("Z") for l in lines)
    # -n and the human form: TIME web.1[PID] text, stderr marked, no control character.
    out = cli(aerie_bin, host, "web.1", "-n", "3")
    assert out.returncode == 0, out.stderr
    printed = out.stdout.splitlines()
    assert len(printed) == 3
    assert any(f" web.1[{pid}] stderr: two" in line for line in printed)
    assert any(line.endswith(f" web.1[{pid}] one") for line in printed)
    assert not any(c in out.stdout for c in "\a\x1b")
    assert any("bell??[31mred" in line for line in printed)
    out = cli(aerie_bin, host, "-n", "2", "--json")
    assert [json.loads(line)["service"] for line in out.stdout.splitlines()] == ["web", "web"]
    # Bad requests: an error reply, exit 1 with the message.
    reply = host.request({"please": "logs", "service": "nope"})
    assert reply["error"]["code"] == "invalid_request" and "nope" in reply["error"]["message"]
    assert host.request({"please": "logs", "worker": 1})["error"]["code"] == "invalid_request"
    assert host.request({"please": "logs", "lines": "x"})["error"]["code"] == "invalid_request"
    out = cli(aerie_bin, host, "nope")
    assert out.returncode == 1 and "no service named" in out.stderr


def test_follow_reading_client_gets_every_line(start_host, tmp_path):
    """A client that reads: every line of the burst in order, nothing missed (the ring holds
    the burst: it is the slack between a worker writing without pause and the client)."""
    go = fifo(tmp_path)
    host = start_host(config(service("web", burst_command(), log_lines=LINES)))
    host.wait_ready("web", 1)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(60)
        s.connect(str(host.socket))
        s.sendall(json.dumps({"please": "logs", "follow": True, "lines": 0}).encode() + b"\0")
        stream = frames(s)
        assert next(stream) == {"lines": []}
        with open(go, "w") as trigger:
            trigger.write("go\n")

        def until_last():
            for obj in stream:
                yield obj
                if obj.get("line") == str(LINES):
                    return
        received, missed = check_sequence(until_last(), LINES)
    assert (received, missed) == (LINES, 0)


def test_follow_stopped_client_gets_a_counted_gap(start_host, aerie_bin, tmp_path):
    """A client stopped (SIGSTOP) while the worker writes: the host does not wait for it; once
    resumed it gets the lines it could still get, and the others counted in {"missed":N}, in
    order."""
    go = fifo(tmp_path)
    host = start_host(config(service("web", burst_command())))  # log_lines: 1000
    host.wait_ready("web", 1)
    output = open(tmp_path / "follow.out", "w")
    client = subprocess.Popen([aerie_bin, "supervisor", "-s", str(host.socket), "logs", "-f",
                               "--json", "-n", "0"], stdout=output)
    try:
        # Connected and following: the host counts it (a request answered, see its status).
        wait_for(lambda: os.path.exists(host.socket) and any(
            "socket:" in os.readlink(f"/proc/{client.pid}/fd/{fd}")
            for fd in os.listdir(f"/proc/{client.pid}/fd")))
        wait_for(lambda: host.request({"please": "status"}) is not None)
        os.kill(client.pid, signal.SIGSTOP)
        with open(go, "w") as trigger:
            trigger.write("go\n")
        # The host went on: all of the burst is in its ring, the last line too.
        wait_for(lambda: [l["line"] for l in host.request(
            {"please": "logs", "lines": 1})["lines"]] == [str(LINES)], timeout=30)
        os.kill(client.pid, signal.SIGCONT)

        def done():
            with open(tmp_path / "follow.out") as f:
                text = f.read()
            return text if f'"line":"{LINES}"' in text else None
        text = wait_for(done, timeout=30)
    finally:
        client.kill()
        client.wait()
        output.close()
    received, missed = check_sequence(map(json.loads, text.splitlines()), LINES)
    assert missed > 0 and received > 0 and received + missed == LINES


def test_log_file_rotation(start_host, tmp_path):
    """log_max_size = 64K, log_keep = 3: web.log and web.log.1 to .3, none over 64 KiB, their
    lines in order across the files, the newest ending with the last line."""
    go = fifo(tmp_path)
    (tmp_path / "logs").mkdir(mode=0o700)
    host = start_host(config(service("web", burst_command(20000), log_file="logs/web.log",
                                     log_max_size="64K", log_keep=3)))
    host.wait_ready("web", 1)
    with open(go, "w") as trigger:
        trigger.write("go\n")
    current = tmp_path / "logs" / "web.log"
    wait_for(lambda: current.exists() and current.read_text().endswith(" 20000\n"), timeout=30)
    names = sorted(os.listdir(tmp_path / "logs"))
    assert names == ["web.log", "web.log.1", "web.log.2", "web.log.3"]
    numbers = []
    for name in ["web.log.3", "web.log.2", "web.log.1", "web.log"]:
        path = tmp_path / "logs" / name
        assert 0 < path.stat().st_size <= 64 * 1024
        for line in path.read_text().splitlines():
            time, who, text = line.split(" ", 2)
            assert time.endswith("Z") and who.startswith("web.0[")
            numbers.append(int(text))
    assert numbers == list(range(numbers[0], 20001))
    assert numbers[0] > 1  # the oldest went with the fourth rotation
    assert host.status()["services"]["web"]["log_dropped"] == 0


def test_log_file_reopened_on_usr1(start_host, tmp_path):
    """External logrotate: the file is moved away, SIGUSR1, and the next lines go to a new file
    under the name."""
    go = fifo(tmp_path)
    (tmp_path / "logs").mkdir(mode=0o700)
    host = start_host(config(service(
        "web", "/bin/sh -c 'while read x < go; do echo \"$x\"; done'", log_file="logs/web.log")))
    host.wait_ready("web", 1)
    current = tmp_path / "logs" / "web.log"
    with open(go, "w") as trigger:
        trigger.write("before\n")
    wait_for(lambda: current.exists() and current.read_text().endswith(" before\n"))
    moved = tmp_path / "logs" / "web.log.old"
    os.rename(current, moved)
    host.send_signal(signal.SIGUSR1)
    host.wait_log("received SIGUSR1")
    wait_for(current.exists)
    with open(go, "w") as trigger:
        trigger.write("after\n")
    wait_for(lambda: current.read_text().endswith(" after\n"))
    assert "after" not in moved.read_text() and "before" not in current.read_text()


def test_log_file_refused_link_counts_dropped_lines(start_host, tmp_path):
    """A log_file that is a symbolic link is not followed: an error once, its lines counted as
    dropped in status, the host and the worker run on."""
    (tmp_path / "logs").mkdir(mode=0o700)
    (tmp_path / "elsewhere").write_text("")
    os.symlink(tmp_path / "elsewhere", tmp_path / "logs" / "web.log")
    host = start_host(config(service(
        "web", "/bin/sh -c 'echo a; echo b; echo c; exec sleep 1000'", log_file="logs/web.log")))
    host.wait_ready("web", 1)
    host.wait_log("symbolic link")
    wait_for(lambda: host.status()["services"]["web"]["log_dropped"] == 3)
    assert (tmp_path / "elsewhere").read_text() == ""


def test_log_file_write_error_drops_lines_and_the_host_runs_on(start_host, tmp_path):
    """A write that fails (here EFBIG: the host runs with RLIMIT_FSIZE of 64 KiB, as a full
    disk fails with ENOSPC): the lines are dropped and counted in status, one warning is
    logged, and the host goes on serving (its ring still has every line)."""
    go = fifo(tmp_path)
    (tmp_path / "logs").mkdir(mode=0o700)
    host = start_host(config(service("web", burst_command(20000), log_file="logs/web.log",
                                     log_lines=20000)),
                      wrapper=("prlimit", "--fsize=65536", "--"))
    host.wait_ready("web", 1)
    with open(go, "w") as trigger:
        trigger.write("go\n")
    wait_for(lambda: [l["line"] for l in host.request({"please": "logs", "lines": 1})["lines"]]
             == ["20000"], timeout=30)
    dropped = wait_for(lambda: host.status()["services"]["web"]["log_dropped"])
    size = (tmp_path / "logs" / "web.log").stat().st_size
    assert size <= 65536
    written = (tmp_path / "logs" / "web.log").read_text().count("\n")
    assert dropped > 0 and written + dropped >= 20000 - 1, (written, dropped)
    # (A small reply: one over 64 KiB travels in a memfd, which RLIMIT_FSIZE limits too.)
    assert len(host.request({"please": "logs", "lines": 100})["lines"]) == 100
    assert len([l for l in host.log() if "lines dropped" in l]) == 1
    assert host.process.poll() is None


def test_stderr_is_warn(start_host, tmp_path):
    host = start_host(config(service(
        "web", "/bin/sh -c 'echo fine; echo broken >&2; exec sleep 1000'")))
    host.wait_ready("web", 1)
    [err] = host.wait_log("broken")
    [out] = host.wait_log("fine")
    assert " warn " in err and "stderr: broken" in err
    assert " info " in out and "stderr" not in out


def test_stderr_is_warn_in_json_logs(start_host, tmp_path):
    host = start_host(config(service(
        "web", "/bin/sh -c 'echo fine; echo broken >&2; exec sleep 1000'"), log_format="json"))
    host.wait_ready("web", 1)
    err = json.loads(host.wait_log("broken")[0])
    out = json.loads(host.wait_log("fine")[0])
    assert err["level"] == "warn" and err["stream"] == "stderr" and err["worker"] == "web.0"
    assert out["level"] == "info" and "stream" not in out


def parse_journal(datagram):
    """systemd's native protocol: KEY=value lines, or KEY, newline, 64-bit LE length, bytes."""
    fields, i = {}, 0
    while i < len(datagram):
        end = datagram.index(b"\n", i)
        line = datagram[i:end]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            i = end + 1
        else:
            key = line
            (size,) = struct.unpack_from("<Q", datagram, end + 1)
            value = datagram[end + 9:end + 9 + size]
            assert datagram[end + 9 + size:end + 10 + size] == b"\n"
            i = end + 10 + size
        fields[key.decode()] = value
    return fields


@pytest.fixture
def journal(tmp_path, monkeypatch):
    path = tmp_path / "journal.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    monkeypatch.setenv("AERIE_JOURNAL_SOCKET", str(path))
    yield sock
    sock.close()


def journal_entries(sock, until):
    entries = []
    while True:
        entries.append(parse_journal(sock.recv(1 << 20)))
        if until(entries):
            return entries


def check_journal(journal, host):
    [pid] = host.wait_ready("web", 1)
    entries = journal_entries(journal, lambda e: sum("AERIE_SERVICE" in x for x in e) >= 2)
    workers = [e for e in entries if "AERIE_SERVICE" in e]
    by_message = {e["MESSAGE"]: e for e in workers}
    out, err = by_message[b"hello\tthere"], by_message[b"oops"]
    for entry in (out, err):
        assert entry["AERIE_SERVICE"] == b"web" and entry["AERIE_WORKER"] == b"0"
        assert entry["AERIE_PID"] == str(pid).encode()
        assert entry["SYSLOG_IDENTIFIER"] == b"aerie"
    assert out["PRIORITY"] == b"6" and err["PRIORITY"] == b"4"
    # The host's own messages too, with their priority.
    assert any(e.get("PRIORITY") == b"6" and b"started" in e["MESSAGE"] for e in entries)


JOURNAL_WORKER = "/bin/sh -c 'printf \"hello\\tthere\\n\"; echo oops >&2; exec sleep 1000'"


def test_journal_entries_with_log_format_journal(start_host, journal):
    host = start_host(config(service("web", JOURNAL_WORKER), log_format="journal"))
    check_journal(journal, host)


def test_journal_entries_under_systemd(start_host, journal):
    """JOURNAL_STREAM naming the host's stderr, as systemd sets it, is enough."""
    wrapper = ("/bin/sh", "-c",
               'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$0" "$@"')
    host = start_host(config(service("web", JOURNAL_WORKER)), wrapper=wrapper)
    check_journal(journal, host)
    assert not any("hello" in line for line in host.log())


def test_journal_missing_socket_is_an_error(start_host, tmp_path, monkeypatch):
    monkeypatch.setenv("AERIE_JOURNAL_SOCKET", str(tmp_path / "none.sock"))
    host = start_host(config(service("web", "sleep 1000"), log_format="journal"))
    assert host.process.wait(10) == 1
    assert "log_format = journal" in host.log_text()
