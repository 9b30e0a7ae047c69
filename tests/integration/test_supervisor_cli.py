"""`aerie supervisor -s PATH status|metrics|restart`: the client's output and exit codes (SPEC.md
"Commands": 0 ok, 1 the request failed, 2 usage, 3 the socket cannot be reached), against a real
host and against fake peers that answer badly."""
import json
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

from hostlib import NOBODY, config, descendants, service, wait_for, worker_command


@pytest.fixture
def cli(aerie_bin):
    """cli(*args, cwd=None, timeout=30, user=()) → CompletedProcess with text output."""

    def run(*args, cwd=None, timeout=30, user=()):
        return subprocess.run([*user, aerie_bin, "supervisor", *map(str, args)],
                              capture_output=True, text=True, timeout=timeout, cwd=cwd)

    return run


@pytest.fixture
def host(start_host, examples_dir):
    """web: 2 workers that say "serving"; clock: 1 worker."""
    running = start_host(config(
        service("web", worker_command(examples_dir, "--status", "serving"), count=2,
                ready="notify"),
        service("clock", worker_command(examples_dir), count=1, ready="notify")))
    running.wait_ready("web", 2)
    running.wait_ready("clock", 1)
    return running


class FakePeer:
    """A unix socket server that is not a supervisor: answer(request bytes) → bytes to send, or
    None to keep the connection open without a word, or b"" to close at once."""

    def __init__(self, path, answer):
        self.path = str(path)
        self.answer = answer
        self.requests = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(8)
        self.held = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            data = b""
            while b"\0" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            self.requests.append(data)
            reply = self.answer(data)
            if reply is None:
                self.held.append(conn)  # never answers, never closes
                continue
            if reply:
                conn.sendall(reply)
            conn.close()

    def close(self):
        self.server.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def fake_peer(tmp_path):
    peers = []

    def start(answer):
        peer = FakePeer(tmp_path / f"fake{len(peers)}.ipc", answer)
        peers.append(peer)
        return peer

    yield start
    for peer in peers:
        peer.close()


# status -----------------------------------------------------------------------------------


def test_status_table(cli, host):
    result = cli("-s", host.socket, "status")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.match(rf"host {host.pid}: up \S+, generation 1$", lines[0]), lines[0]
    assert lines[1].split() == ["WORKER", "PID", "GEN", "STATE", "RESTARTS", "HKILLS", "MEMREP",
                                "UPTIME", "STATUS"]
    rows = [line.split() for line in lines if line.startswith("web.")]
    assert sorted(row[0] for row in rows) == ["web.0", "web.1"]
    status = host.status()
    assert sorted(int(row[1]) for row in rows) == sorted(
        w["pid"] for w in status["services"]["web"]["workers"])
    for row in rows:
        assert row[2:7] == ["1", "ready", "0", "0", "0"] and row[-1] == "serving", row
    assert "web: 2/2 ready, 0 restarts, 0 health kills, 0 memory replacements" in lines
    assert "clock: 1/1 ready, 0 restarts, 0 health kills, 0 memory replacements" in lines
    assert len([line for line in lines if line.startswith("clock.")]) == 1
    assert result.stderr == ""


def test_status_json(cli, host):
    result = cli("-s", host.socket, "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["host"]["pid"] == host.pid and status["host"]["generation"] == 1
    assert status["services"]["web"]["ready"] == 2
    assert len(status["services"]["clock"]["workers"]) == 1


def test_default_socket_is_in_the_current_directory(cli, host):
    result = cli("status", "--json", cwd=host.directory)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["host"]["pid"] == host.pid


def test_options_after_the_command(cli, host):
    result = cli("status", "--json", "-s", host.socket)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["host"]["pid"] == host.pid


# metrics ----------------------------------------------------------------------------------


def test_metrics_table(cli, host):
    result = cli("-s", host.socket, "metrics")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["PID", "PPID", "PGID", "%CPU"]
    assert lines[0].split()[-1] == "COMMAND"
    children = descendants(host.pid)
    rows = lines[1:-1]
    assert len(rows) == 1 + len(children) == 5
    assert int(rows[0].split()[0]) == host.pid and " host " in rows[0]
    assert " \\_ " not in rows[0]
    assert sorted(int(row.split()[0]) for row in rows[1:]) == sorted(children)
    assert all(" \\_ " in row for row in rows[1:])
    assert sum("supervisor-process" in row for row in rows) == 1
    assert sum("--status serving" in row for row in rows) == 2
    assert re.match(r"total: 5 processes, RSS \S+ \S+, PSS \S+ \S+, USS \S+ \S+$", lines[-1]), \
        lines[-1]


def test_metrics_json(cli, host):
    result = cli("-s", host.socket, "metrics", "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert {int(pid) for pid in metrics} == {host.pid, *descendants(host.pid)}
    assert metrics[str(host.pid)]["process_id"] == host.pid
    assert metrics[str(host.pid)]["memory"]["resident_size"] > 0


def parse_exposition(text):
    """A strict reader of Prometheus' text format 0.0.4: every sample belongs to a family
    declared by # HELP and # TYPE before it, names and labels are well formed, values are
    numbers, and no series appears twice. Returns {(name, labels): value}."""
    name_re = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
    label_re = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
    sample_re = re.compile(rf"^({name_re})(?:\{{((?:{label_re})(?:,{label_re})*)?\}})? (\S+)$")
    types, helps, samples = {}, set(), {}
    assert text.endswith("\n"), "the exposition ends with a newline"
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert re.fullmatch(name_re, name), line
            assert name not in helps, f"HELP twice: {line}"
            helps.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name not in types, f"TYPE twice: {line}"
            types[name] = kind
        else:
            match = sample_re.match(line)
            assert match, f"not a sample line: {line!r}"
            name, labels, value = match.groups()
            assert name in types and name in helps, f"sample before its TYPE/HELP: {line}"
            float(value)
            key = (name, labels or "")
            assert key not in samples, f"series twice: {line}"
            samples[key] = float(value)
    return samples


def test_metrics_prometheus(cli, host):
    pids = host.wait_ready("web", 2)
    result = cli("-s", host.socket, "metrics", "--prometheus")
    assert result.returncode == 0, result.stderr
    samples = parse_exposition(result.stdout)
    host_cpu = [k for k in samples
                if k[0] == "aerie_process_cpu_seconds_total" and f'pid="{host.pid}"' in k[1]]
    assert host_cpu == [("aerie_process_cpu_seconds_total", f'pid="{host.pid}",role="host"')]
    for index, pid in enumerate(sorted(pids)):
        worker = [k for k in samples
                  if k[0] == "aerie_process_resident_bytes" and f'pid="{pid}"' in k[1]]
        assert len(worker) == 1 and 'role="worker",service="web"' in worker[0][1], worker
        assert samples[worker[0]] > 100 * 1024
        ready = [v for k, v in samples.items()
                 if k[0] == "aerie_worker_ready" and f'pid="{pid}"' in k[1]]
        assert ready == [1.0]
    assert samples[("aerie_service_workers", 'service="web"')] == 2
    assert samples[("aerie_service_ready_workers", 'service="web"')] == 2
    assert samples[("aerie_host_generation", "")] == 1
    promtool = shutil.which("promtool")
    if promtool:  # Prometheus' own checker, where Debian's prometheus package is installed
        check = subprocess.run([promtool, "check", "metrics"], input=result.stdout,
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
    # The same over the socket, as a JSON string.
    reply = host.request({"please": "metrics", "format": "prometheus"})
    assert isinstance(reply, str) and parse_exposition(reply)


def test_prometheus_goes_with_metrics_only(cli, host):
    for args in (["status", "--prometheus"], ["metrics", "--prometheus", "--json"]):
        result = cli("-s", host.socket, *args)
        assert result.returncode == 2, (args, result.stderr)


# restart ----------------------------------------------------------------------------------


def test_restart(cli, host):
    old = host.wait_ready("web", 2)
    result = cli("-s", host.socket, "restart")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "restarted: generation 2 is serving\n"
    status = host.status()
    assert status["host"]["generation"] == 2
    ready = [w for w in status["services"]["web"]["workers"] if w["state"] == "ready"]
    assert [w["generation"] for w in ready] == [2, 2]
    assert not {w["pid"] for w in ready} & set(old)


def test_restart_one_service(cli, host):
    clock = host.wait_ready("clock", 1)
    result = cli("-s", host.socket, "restart", "--service", "web")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "restarted: generation 2 is serving\n"
    assert [w["generation"] for w in host.workers("web", "ready")] == [2, 2]
    assert [w["pid"] for w in host.workers("clock")] == clock


def test_restart_unknown_service(cli, host):
    result = cli("-s", host.socket, "restart", "--service", "nope")
    assert result.returncode == 1
    assert result.stdout == ""
    assert '"nope"' in result.stderr and "restart_failed" in result.stderr


def test_restart_with_hup(cli, host):
    # SIGHUP is a reload: with the config unchanged, nothing is replaced.
    pids = sorted(w["pid"] for w in host.workers("web"))
    result = cli("-s", host.socket, "restart", "--signal", "HUP")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "sent SIGHUP to the host\n"
    assert '"unchanged":["web","clock"]' in host.wait_log("reload done:")[0]
    result = cli("-s", host.socket, "restart", "--signal", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "sent SIGHUP to the host\n"
    host.wait_log("reload done:", count=2)
    assert host.status()["host"]["generation"] == 1
    assert sorted(w["pid"] for w in host.workers("web")) == pids


def test_restart_with_unknown_signal(cli, host):
    result = cli("-s", host.socket, "restart", "--signal", "FOO")
    assert result.returncode == 1
    assert result.stdout == ""
    assert 'unknown signal "FOO"' in result.stderr and "unknown_signal" in result.stderr
    assert host.status()["host"]["generation"] == 1


def test_restart_with_term_stops_the_host(cli, host):
    result = cli("-s", host.socket, "restart", "--signal", "TERM")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "sent SIGTERM to the host\n"
    assert host.process.wait(15) == 0
    result = cli("-s", host.socket, "status")
    assert result.returncode == 3
    assert "no socket at" in result.stderr


# Reaching the socket ----------------------------------------------------------------------


def test_missing_socket(cli, tmp_path):
    result = cli("-s", tmp_path / "nothing.ipc", "status")
    assert result.returncode == 3
    assert f"no socket at {tmp_path / 'nothing.ipc'}" in result.stderr
    assert result.stdout == ""


def test_stale_socket(cli, tmp_path):
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "stale.ipc"))
    stale.close()
    result = cli("-s", tmp_path / "stale.ipc", "metrics")
    assert result.returncode == 3
    assert "connection refused" in result.stderr


def test_path_too_long_is_usage(cli, tmp_path):
    result = cli("-s", tmp_path / ("x" * 200), "status")
    assert result.returncode == 2
    assert "too long" in result.stderr


def test_peer_that_is_not_a_supervisor(cli, fake_peer):
    peer = fake_peer(lambda request: b"hello\0")
    result = cli("-s", peer.path, "status")
    assert result.returncode == 3
    assert "did not answer like" in result.stderr
    assert peer.requests == [b'{"please":"status"}\0']


def test_peer_that_closes_without_a_reply(cli, fake_peer):
    peer = fake_peer(lambda request: b"")
    result = cli("-s", peer.path, "metrics")
    assert result.returncode == 3
    assert "connection closed before a reply" in result.stderr


def test_peer_that_never_answers(cli, fake_peer):
    peer = fake_peer(lambda request: None)
    started = time.monotonic()
    result = cli("-s", peer.path, "--timeout", "0.5", "restart")
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "no answer" in result.stderr and "0.5 s" in result.stderr
    assert 0.5 <= elapsed < 5


def test_falcon_style_reply(cli, fake_peer):
    """Falcon's supervisor answers restart with the integer 1."""
    peer = fake_peer(lambda request: b"1\0")
    result = cli("-s", peer.path, "restart")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"
    assert json.loads(peer.requests[0].rstrip(b"\0")) == {"please": "restart"}


def test_error_reply_from_any_peer(cli, fake_peer):
    peer = fake_peer(lambda request: b'{"error":{"code":"busy","message":"try later"}}\0')
    result = cli("-s", peer.path, "status")
    assert result.returncode == 1
    assert "try later (busy)" in result.stderr


def test_reply_split_across_writes(cli, fake_peer):
    def answer(request):
        return b'{"ok":true,' + b" " * 200000 + b'"generation":7}\0'

    peer = fake_peer(answer)
    result = cli("-s", peer.path, "restart", "--service", "web")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "restarted: generation 7 is serving\n"
    assert json.loads(peer.requests[0].rstrip(b"\0")) == {"please": "restart", "service": "web"}


# Usage ------------------------------------------------------------------------------------


def test_help(cli):
    result = cli("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: aerie supervisor")
    for word in ("status", "metrics", "restart", "--signal", "--service", "--timeout"):
        assert word in result.stdout


@pytest.mark.parametrize("args", [
    (),
    ("frobnicate",),
    ("status", "metrics"),
    ("status", "--service", "web"),
    ("metrics", "--signal", "HUP"),
    ("--timeout", "soon", "status"),
    ("--timeout", "0", "status"),
    ("--timeout", "-1", "status"),
    ("--bogus", "status"),
    ("-s",),
])
def test_bad_usage(cli, tmp_path, args):
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == 2, (args, result.stderr)
    assert result.stderr
    assert result.stdout == ""


# Another user ----------------------------------------------------------------------------


def test_other_user_stopped_by_the_file_mode(cli, world_dir, start_host, examples_dir):
    host = start_host(service("web", worker_command(examples_dir), count=1, ready="notify"),
                      directory=world_dir)
    host.wait_ready("web", 1)
    result = cli("-s", host.socket, "status", user=("setpriv", *NOBODY))
    assert result.returncode == 3
    assert "permission denied" in result.stderr


# The supervisor refuses a client (permission_denied, too_many_clients) at accept: it sends the
# refusal and closes. A client that writes its request after that close gets EPIPE. That is a
# race of microseconds, so strace holds the client's send back 0.3 s to make it certain.
SLOW_SEND = ("env", "ASAN_OPTIONS=detect_leaks=0",  # LeakSanitizer can't run under ptrace
             "strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=sendto",
             "-e", "inject=sendto:delay_enter=300000")


@pytest.fixture
def slow_send():
    if not shutil.which("strace"):
        pytest.skip("needs strace to delay the client's send")
    return SLOW_SEND


def test_other_user_gets_the_refusal(cli, world_dir, start_host, examples_dir, slow_send):
    host = start_host(config(service("web", worker_command(examples_dir), count=1,
                                     ready="notify"), socket_mode="0666"), directory=world_dir)
    host.wait_ready("web", 1)
    # Past the file mode, the supervisor itself refuses.
    result = cli("-s", host.socket, "status", user=(*slow_send, "setpriv", *NOBODY))
    assert "permission_denied" in result.stderr, result.stderr
    assert result.returncode == 1


def test_too_many_clients(cli, host, slow_send):
    conns = []
    try:
        while True:  # fill every slot; the next connection is refused
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.settimeout(10)
            conn.connect(str(host.socket))
            conns.append(conn)
            try:
                conn.sendall(b'{"please":"status"}\0')
            except (BrokenPipeError, ConnectionResetError):
                pass
            data = b""
            while b"\0" not in data:
                chunk = conn.recv(65536)
                assert chunk, "closed without a reply"
                data += chunk
            if b"too_many_clients" in data:
                break
            assert len(conns) <= 64
        result = cli("-s", host.socket, "status", user=slow_send)
        assert "too_many_clients" in result.stderr, result.stderr
        assert result.returncode == 1
    finally:
        for conn in conns:
            conn.close()

