"""The channel between the host and its supervisor process, under load and failure: no reply is
dropped however many come at once or however large one is, a hung supervisor process is
replaced, and one that cannot start is retried with a growing delay (src/lib/channel.c,
src/host/control.c). Every wait polls a condition with a deadline; nothing sleeps blind."""
import json
import os
import re
import shutil
import signal
import socket
import threading

from hostlib import (fd_count_but_proc, proc_stat, process_alive, service, supervisor_pid, wait_for,
                     wait_gone, worker_command)

MIB = 1024 * 1024
MAX_OUTPUT = 16 * MIB  # PROTOCOL_MAX_OUTPUT: once the bound on any one reply


def ask(path, please, timeout=30.0):
    """One request on a fresh connection; the raw reply frame (without its NUL), or the
    exception that stopped it."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(path))
            s.sendall(json.dumps({"please": please}).encode() + b"\0")
            chunks, size = [], 0
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    return ConnectionError(f"closed after {size} bytes without a reply")
                chunks.append(chunk)
                size += len(chunk)
                if chunk.endswith(b"\0"):
                    return b"".join(chunks)[:-1]
    except OSError as error:
        return error


def status_text_host(start_host, examples_dir, count, status_length):
    """A host of count workers, each with a STATUS= text of status_length characters, all
    ready: its status reply is about count × (status_length + 150) bytes."""
    command = (f"/bin/sh -c 'exec {worker_command(examples_dir)} --status \"$S\"'")
    host = start_host(service("web", command, count=count, ready="notify",
                              env="S=" + "s" * status_length))
    host.wait_log("ready after", count=count, timeout=60)
    return host


def test_every_concurrent_request_is_answered(start_host, examples_dir):
    # 1000 workers make a status reply of 0.6 MB: 30 of them at once are many times what the
    # channel's socket holds, and 30 metrics requests keep the supervisor process busy
    # meanwhile, so that the host answers faster than it reads.
    host = status_text_host(start_host, examples_dir, 1000, 450)
    supervisor = supervisor_pid(host.pid)
    baseline = fd_count_but_proc(supervisor)
    replies = {}

    def one(index):
        replies[index] = ask(host.socket, "status" if index % 2 == 0 else "metrics")

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(60)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    failed = {i: r for i, r in replies.items() if not isinstance(r, bytes)}
    assert len(replies) == 60 and not failed, f"{len(failed)} without a reply: {failed}"
    for index, raw in replies.items():
        reply = json.loads(raw)
        if index % 2 == 0:
            assert len(reply["services"]["web"]["workers"]) == 1000, raw[:200]
        else:
            assert str(host.pid) in reply, raw[:200]
    assert not [line for line in host.log() if "reply dropped" in line or "reply lost" in line]
    # Every client's connection closed, nothing held for them.
    wait_for(lambda: fd_count_but_proc(supervisor) == baseline, message="the supervisor's fds back to "
             f"{baseline}")
    assert supervisor_pid(host.pid) == supervisor  # never taken for hung


def test_status_of_many_megabytes(start_host, examples_dir):
    # 1100 workers with 4000-character STATUS= texts: a status reply of 4.7 MB, more than one
    # datagram can carry.
    host = status_text_host(start_host, examples_dir, 1100, 4000)
    supervisor = supervisor_pid(host.pid)
    baseline = fd_count_but_proc(supervisor)
    raw = ask(host.socket, "status", timeout=20)
    assert isinstance(raw, bytes), f"no status reply: {raw!r}"
    assert len(raw) > 4 * MIB
    workers = json.loads(raw)["services"]["web"]["workers"]
    assert len(workers) == 1100 and all(len(w["status"]) == 4000 for w in workers)
    # The memfd it came in is closed again on both sides.
    wait_for(lambda: fd_count_but_proc(supervisor) == baseline, message="the supervisor's fds back")
    assert not [name for name in os.listdir(f"/proc/{host.pid}/fd")
                if "memfd" in os.readlink(f"/proc/{host.pid}/fd/{name}")]


def test_metrics_reply_larger_than_the_output_bound(start_host, examples_dir):
    # 20 workers with command lines of 960 KB each (a shell makes them: $C is 120 KB, eight
    # times): the metrics reply, which the supervisor process makes itself, is over 19 MB.
    c = "$B" * 30
    command = ("/bin/sh -c 'C=" + c + "; exec " + worker_command(examples_dir) +
               ' --status "$C"' * 8 + " --status ready'")
    host = start_host(service("web", command, count=20, ready="notify", env="B=" + "x" * 4000))
    host.wait_ready("web", 20, timeout=30)
    raw = ask(host.socket, "metrics", timeout=30)
    assert isinstance(raw, bytes), f"no metrics reply: {raw!r}"
    assert len(raw) > MAX_OUTPUT + 2 * MIB
    metrics = json.loads(raw)
    workers = [p for p in metrics.values() if "--status" in p["command"]]
    assert len(workers) == 20
    assert all(len(p["command"]) > 960_000 for p in workers)
    # The bound is still there for a client that lets replies pile up: see test_supervisor's
    # test_client_that_never_reads_is_dropped.


def test_stopped_supervisor_is_replaced(start_host):
    host = start_host(service("web", "/bin/sleep 1000", count=2, ready="none"))
    host.wait_ready("web", 2)
    supervisor = supervisor_pid(host.pid)
    os.kill(supervisor, signal.SIGSTOP)
    wait_for(lambda: (proc_stat(supervisor) or ["?"])[0] == "T", message="it to be stopped")
    # Connected while it is stopped: the kernel queues the connection on the socket the host
    # holds, and the next supervisor process answers it.
    raw = ask(host.socket, "status", timeout=15)
    assert isinstance(raw, bytes), f"no status within 15 s of the hang: {raw!r}"
    assert json.loads(raw)["host"]["pid"] == host.pid
    host.wait_log(f"supervisor[{supervisor}] has not answered")
    host.wait_log(f"supervisor[{supervisor}] killed by signal 9")
    wait_gone([supervisor], what="the stopped supervisor")
    assert supervisor_pid(host.pid) != supervisor
    assert host.process.poll() is None


def uptime(pid):
    """Seconds since pid started, from /proc."""
    with open("/proc/uptime") as f:
        now = float(f.read().split()[0])
    return now - int(proc_stat(pid)[19]) / os.sysconf("SC_CLK_TCK")


def restart_delays(host):
    """The delays the host logged before each start of a supervisor process, in order."""
    return [int(m.group(1)) for line in host.log()
            if (m := re.search(r"supervisor\[\d+\] .*; restarting in (\d+) s", line))]


def test_supervisor_that_cannot_start_is_retried_with_growing_delays(start_host, aerie_bin,
                                                                   tmp_path):
    # The host runs from a copy of its executable, which an upgrade then removes: each new
    # supervisor process fails at exec, until the file is back.
    binary = tmp_path / "aerie"
    shutil.copy2(aerie_bin, binary)
    host = start_host(service("web", "/bin/sleep 1000", count=1, ready="none"),
                      binary=str(binary))
    host.wait_ready("web", 1)
    supervisor = supervisor_pid(host.pid)
    away = tmp_path / "aerie.away"
    binary.rename(away)
    os.kill(supervisor, signal.SIGKILL)
    host.wait_log("restarting in 4 s", timeout=20)
    delays = restart_delays(host)
    assert delays[-3:] == [1, 2, 4], delays  # doubling per quick failure
    assert len(host.wait_log("exited with status 127")) >= 2
    away.rename(binary)
    # The next attempt starts it: it answers again.
    wait_for(lambda: isinstance(ask(host.socket, "status", timeout=2), bytes), timeout=15,
             message="a supervisor process that answers")
    again = supervisor_pid(host.pid)
    # Up CONTROL_STABLE_SECONDS, the backoff is forgotten: its next crash restarts it at once.
    wait_for(lambda: uptime(again) > 10.5, timeout=15, interval=0.2,
             message="the supervisor up 10 s")
    os.kill(again, signal.SIGKILL)
    host.wait_log(f"supervisor[{again}] killed by signal 9; restarting in 0 s")
    assert process_alive(supervisor_pid(host.pid, exclude=(again,)))
