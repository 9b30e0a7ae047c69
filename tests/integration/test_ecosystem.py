"""The host where operators run it: under systemd (the test plays systemd's side of
NOTIFY_SOCKET), as PID 1 of a container (a real PID namespace), and with health checks
(WATCHDOG=1, as systemd's WatchdogSec)."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from hostlib import (descendants, free_port, proc_stat, process_alive, read_cmdline, wait_for,
                     worker_command)


class FakeSystemd:
    """A datagram socket in the abstract namespace that records what the host sends."""

    def __init__(self):
        self.name = f"aerie-test-systemd-{os.getpid()}-{time.monotonic_ns()}"
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind("\0" + self.name)
        self.socket.settimeout(0.1)
        self.messages = []
        self._lock = threading.Lock()
        self._running = True
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    @property
    def address(self):
        return "@" + self.name

    def _receive(self):
        while self._running:
            try:
                data = self.socket.recv(4096)
            except socket.timeout:
                continue
            with self._lock:
                self.messages.append((time.monotonic(), data.decode()))

    def texts(self):
        with self._lock:
            return [text for _, text in self.messages]

    def wait(self, predicate, timeout=10, message="a message"):
        return wait_for(lambda: [t for t in self.texts() if predicate(t)], timeout,
                        message=message)

    def close(self):
        self._running = False
        self._thread.join(2)
        self.socket.close()


@pytest.fixture
def systemd():
    fake = FakeSystemd()
    yield fake
    fake.close()


def start_under_systemd(start_host, systemd, config, **env):
    saved = {key: os.environ.get(key) for key in ["NOTIFY_SOCKET", *env]}
    os.environ["NOTIFY_SOCKET"] = systemd.address
    os.environ.update(env)
    try:
        return start_host(config)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_ready_reload_stopping_sent_to_systemd(start_host, systemd, examples_dir):
    host = start_under_systemd(start_host, systemd, f"""
[service:web]
command = {worker_command(examples_dir, "--ready-after", "0.3")}
count = 2
ready = notify
""")
    ready = systemd.wait(lambda t: t.startswith("READY=1"), message="READY=1")
    assert ready[0] == "READY=1\nSTATUS=web 2/2 ready, generation 1"
    # READY=1 came only once both workers were ready: no earlier READY, earlier STATUS= only.
    before = systemd.texts()[: systemd.texts().index(ready[0])]
    assert all(t.startswith("STATUS=") for t in before), before
    assert len(host.workers("web", "ready")) == 2

    # A reload that changes the service, which is rolled to generation 2.
    host.config.write_text(host.config.read_text() + "env = CHANGED=1\n")
    host.send_signal(signal.SIGHUP)  # systemd's ExecReload
    reloading = systemd.wait(lambda t: t.startswith("RELOADING=1"), message="RELOADING=1")
    assert re.match(r"RELOADING=1\nMONOTONIC_USEC=\d+\nSTATUS=reloading the config$",
                    reloading[0]), reloading
    monotonic_usec = int(reloading[0].split("\n")[1].split("=")[1])
    assert abs(monotonic_usec / 1e6 - time.clock_gettime(time.CLOCK_MONOTONIC)) < 30
    systemd.wait(lambda t: t == "READY=1\nSTATUS=web 2/2 ready, generation 2",
                 message="READY=1 after the reload")
    texts = systemd.texts()
    assert texts.index(reloading[0]) < texts.index("READY=1\nSTATUS=web 2/2 ready, generation 2")

    assert host.stop() == 0
    systemd.wait(lambda t: t.startswith("STOPPING=1"), message="STOPPING=1")


def test_watchdog_pings_at_half_the_interval(start_host, systemd, examples_dir):
    host = start_under_systemd(start_host, systemd, f"""
[service:web]
command = {worker_command(examples_dir)}
""", WATCHDOG_USEC="400000")
    host.wait_ready("web", 1)
    first = systemd.wait(lambda t: t == "WATCHDOG=1", message="WATCHDOG=1")
    time.sleep(1.0)  # measuring: how many pings come in a second
    with systemd._lock:
        pings = [when for when, text in systemd.messages if text == "WATCHDOG=1"]
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert len(pings) >= 4, pings
    assert all(0.1 < gap < 0.35 for gap in gaps), gaps  # every 0.2 s
    assert first
    assert host.stop() == 0


def test_watchdog_for_another_pid_is_not_ours(start_host, systemd, examples_dir):
    host = start_under_systemd(start_host, systemd, f"""
[service:web]
command = {worker_command(examples_dir)}
""", WATCHDOG_USEC="200000", WATCHDOG_PID="1")
    host.wait_ready("web", 1)
    systemd.wait(lambda t: t.startswith("READY=1"), message="READY=1")
    time.sleep(0.5)  # measuring: no ping may come
    assert "WATCHDOG=1" not in systemd.texts()
    assert host.stop() == 0


def test_workers_do_not_inherit_the_hosts_notify_socket(start_host, systemd, examples_dir):
    host = start_under_systemd(start_host, systemd, f"""
[service:plain]
command = {worker_command(examples_dir, "--print-env")}
ready = none
""")
    lines = host.wait_log("sigign=")
    assert not [line for line in host.log() if "NOTIFY_SOCKET=" in line], host.log_text()
    assert lines
    assert host.stop() == 0


# PID 1 --------------------------------------------------------------------------------------

def test_pid_1_in_a_container_reaps_everything(aerie_bin, examples_dir, tmp_path):
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed"
    if os.geteuid() != 0:
        pytest.skip("a PID namespace needs root here")
    (tmp_path / "aerie.ini").write_text(f"""
[service:web]
command = {worker_command(examples_dir, "--spawn-grandchild", "--leave-zombie")}
count = 2
ready = notify

[service:daemon]
command = sh -c 'setsid sleep 1000 & exec {examples_dir}/worker'
cgroup = no
""")  # the daemon's escapee is left to the sweep of orphans: with a cgroup, cgroup.kill would
    # take it first
    # --fork: the host is the namespace's PID 1, and `unshare`'s only child.
    process = subprocess.Popen([unshare, "--pid", "--fork", "--mount-proc", aerie_bin, "host",
                                "aerie.ini"], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
    reader.start()
    try:
        def host_pid():
            children = descendants(process.pid)
            return children[0] if children else None
        host = wait_for(host_pid, 10, message="the host in its namespace")
        wait_for(lambda: sum("ready after" in line for line in list(lines)) >= 2, 10,
                 message="both web workers ready")
        wait_for(lambda: any("as init" in line for line in list(lines)), 5,
                 message="the host to say it is init")

        def states():
            return {pid: (fields[0], int(fields[1])) for pid in descendants(host)
                    if (fields := proc_stat(pid))}

        # Kill a web worker from outside: its zombie child and its grandchild are orphaned
        # into the namespace, where only PID 1 (the host) can reap them.
        web = [pid for pid, (state, ppid) in states().items()
               if ppid == host and b"spawn-grandchild" in read_cmdline(pid)]
        assert web
        os.kill(web[0], signal.SIGKILL)
        wait_for(lambda: not [pid for pid, (state, ppid) in states().items()
                              if state == "Z" and ppid == host], 5,
                 message="no zombie left with the host as parent")
        os.kill(host, signal.SIGTERM)
        assert process.wait(15) == 0
        reader.join(5)
        text = "".join(lines)
        assert "stopping orphan" in text  # the setsid sleep, out of every worker's group
        assert "all workers stopped" in text
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# health checks ------------------------------------------------------------------------------

def test_health_timeout_replaces_a_quiet_worker(start_host, examples_dir):
    host = start_host(f"""
[service:web]
command = {worker_command(examples_dir, "--watchdog-for", "0.8")}
ready = notify
health_timeout = 0.4
restart_delay = 0.1
""")
    first = host.wait_ready("web", 1)[0]
    line = host.wait_log(f"web.0[{first}] sent no WATCHDOG=1 for 0.4 s (health_timeout)")
    assert line
    host.wait_log(f"web.0[{first}] killed by SIGKILL")
    assert not process_alive(first)
    second = wait_for(lambda: [p for p in host.wait_ready("web", 1) if p != first], 10,
                      message="a replacement")[0]
    workers = host.status()["services"]["web"]["workers"]
    assert workers[0]["health_kills"] >= 1
    assert workers[0]["restarts"] >= 1
    assert second != first
    assert host.stop() == 0


def test_health_timeout_keeps_a_worker_that_pings(start_host, examples_dir):
    show = ("--print-env", "--env-key", "WATCHDOG_USEC", "--env-key", "WATCHDOG_PID")
    host = start_host(f"""
[service:web]
command = {worker_command(examples_dir, "--watchdog", *show)}
ready = notify
health_timeout = 0.3
""")
    pid = host.wait_ready("web", 1)[0]
    host.wait_log(f"web.0[{pid}] WATCHDOG_USEC=300000")
    host.wait_log(f"web.0[{pid}] WATCHDOG_PID={pid}")
    time.sleep(1.5)  # measuring: five health periods pass without a kill
    assert host.wait_ready("web", 1) == [pid]
    assert "sent no WATCHDOG=1" not in host.log_text()
    assert host.status()["services"]["web"]["workers"][0]["health_kills"] == 0
    assert host.stop() == 0


# memory limits ------------------------------------------------------------------------------

@pytest.mark.parametrize("metric", ["pss", "rss"])
def test_worker_over_memory_limit_is_replaced_new_one_first(start_host, examples_dir, metric):
    host = start_host(f"""
[service:web]
command = {worker_command(examples_dir, "--allocate", "24")}
ready = notify
count = 2
memory_limit = 16M
memory_metric = {metric}
memory_check_interval = 0.3

[service:small]
command = {worker_command(examples_dir)}
memory_limit = 512M
memory_check_interval = 0.3
""")
    first = host.wait_ready("web", 2)
    small = host.wait_ready("small", 1)
    over = host.wait_log("over memory_limit 16.0 MiB: replacing it")
    assert f"({metric.upper()} of its tree)" in over[0]
    old = int(re.search(r"web\.\d\[(\d+)\]", over[0]).group(1))
    assert old in first
    # The new worker is ready before the old one is asked to stop.
    handover = host.wait_log(f"which stops now")
    host.wait_log(f"[{old}] stopping: sending SIGTERM")  # both may be over: the other first
    log = host.log_text()
    assert log.index("ready in place of") < log.index(f"[{old}] stopping: sending SIGTERM")
    host.wait_log(f"[{old}] stopped: exited with status 0")
    assert handover
    status = host.status()["services"]
    assert max(w["memory_replacements"] for w in status["web"]["workers"]) >= 1
    assert host.wait_ready("small", 1) == small  # under its limit: untouched
    assert host.stop() == 0


def test_memory_limit_config_errors(aerie_bin, tmp_path):
    for value, hint in [("lots", "expected a size such as 512M, 2G or none"),
                        ("12X", "expected a size such as 512M, 2G or none")]:
        (tmp_path / "bad.ini").write_text(f"[service:web]\ncommand = true\nmemory_limit = {value}\n")
        result = subprocess.run([aerie_bin, "host", "bad.ini"], cwd=tmp_path,
                                capture_output=True, text=True, timeout=10)
        assert result.returncode == 2
        assert result.stderr == (f'aerie: bad.ini:3: invalid memory_limit "{value}" in '
                                 f"[service:web] ({hint})\n")


# logs -------------------------------------------------------------------------------------

def test_json_logs_to_a_file_reopened_on_usr1(start_host, examples_dir, tmp_path):
    host = start_host(f"""
[host]
log = aerie.log
log_format = json

[service:web]
command = sh -c 'printf "plain \\\\042quoted\\\\042 \\\\001 caf\\\\303\\\\251 bad \\\\377\\\\n"; exec {examples_dir}/worker'
ready = notify
""")
    log = tmp_path / "aerie.log"
    pid = host.wait_ready("web", 1)[0]

    def records():
        return [json.loads(line) for line in log.read_text(errors="strict").splitlines()]

    wait_for(lambda: any(r.get("message", "").startswith("plain") for r in records()), 10,
             message="the worker's line in the file")
    line = [r for r in records() if r.get("message", "").startswith("plain")][0]
    assert line["worker"] == "web.0" and line["level"] == "info"
    assert line["message"] == 'plain "quoted" \x01 café bad \ufffd'
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", line["time"])
    assert any(r["message"] == f"web.0[{pid}] ready after " + r["message"].split()[-2] + " s"
               for r in records() if "ready after" in r["message"])
    assert host.log() == []  # nothing on stderr: it all went to the file

    log.rename(tmp_path / "aerie.log.1")  # a rotation
    host.send_signal(signal.SIGUSR1)
    wait_for(lambda: log.exists() and any("reopened" in r["message"] for r in records()), 10,
             message="the reopened file")
    assert host.stop() == 0
    assert any(r["message"] == "all workers stopped" for r in records())


# socket activation of the host --------------------------------------------------------------

def test_sockets_from_systemd_go_to_matching_listen_lines(aerie_bin, examples_dir, tmp_path):
    """The test plays systemd's socket activation: it binds the sockets, passes them at fd 3…
    with LISTEN_FDS/LISTEN_PID, and the host hands them to the listen lines of the same
    address instead of binding its own (it couldn't: the address is taken)."""
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(16)
    port = tcp.getsockname()[1]
    unix_path = tmp_path / "web.sock"
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(unix_path))
    unix.listen(16)
    stray = socket.socket()
    stray.bind(("127.0.0.1", 0))
    stray.listen(1)
    (tmp_path / "aerie.ini").write_text(f"""
[service:web]
command = {examples_dir}/http_worker
count = 2
ready = notify
listen = tcp:127.0.0.1:{port}
listen = unix:web.sock
""")
    fds = [tcp.fileno(), unix.fileno(), stray.fileno()]

    def pass_sockets():
        moved = [os.dup(fd) for fd in fds]  # out of the way of 3…5 first
        for index, fd in enumerate(moved):
            os.dup2(fd, 3 + index, inheritable=True)
        os.environ["LISTEN_FDS"] = "3"
        os.environ["LISTEN_PID"] = str(os.getpid())

    # preexec_fn runs in the child before exec: LISTEN_PID is the host's own pid.
    host = subprocess.Popen([aerie_bin, "host", "aerie.ini"], cwd=tmp_path,
                            stderr=subprocess.PIPE, text=True, preexec_fn=pass_sockets,
                            close_fds=False)  # else 3…5 would be closed after preexec_fn
    for sock in (tcp, unix, stray):
        sock.close()  # only the host holds them now
    try:
        def answer():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as client:
                    client.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    return client.recv(4096)
            except OSError:
                return None
        reply = wait_for(answer, 10, message="an HTTP answer on the passed socket")
        assert reply.startswith(b"HTTP/1.1 200"), reply
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(unix_path))
            client.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert client.recv(4096).startswith(b"HTTP/1.1 200")
        host.send_signal(signal.SIGTERM)
        _, err = host.communicate(timeout=15)
        assert host.returncode == 0, err
    finally:
        if host.poll() is None:
            host.kill()
            host.communicate()
    assert f"listening on tcp:127.0.0.1:{port} (socket from the service manager)" in err
    assert "listening on unix:web.sock (socket from the service manager)" in err
    assert "socket fd 5 from the service manager matches no listen line: closed" in err
    assert unix_path.exists()  # systemd's socket: not the host's to remove


def test_init_flag_is_accepted(start_host, examples_dir):
    host = start_host(f"[service:web]\ncommand = {examples_dir}/worker\n", args=["--init"])
    host.wait_ready("web", 1)
    host.wait_log("as init: reaping every orphan")
    assert host.stop() == 0


def test_health_timeout_needs_notify(aerie_bin, tmp_path):
    (tmp_path / "bad.ini").write_text(
        "[service:web]\ncommand = true\nready = none\nhealth_timeout = 5\n")
    result = subprocess.run([aerie_bin, "host", "bad.ini"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=10)
    assert result.returncode == 2
    assert result.stderr == ("aerie: bad.ini:4: health_timeout needs ready = notify in "
                             "[service:web] (workers report health with WATCHDOG=1 on "
                             "NOTIFY_SOCKET)\n")


def test_rolling_restart_of_services_ready_at_once(start_host):
    """ready = none: every new worker is ready as it starts, so each service's restart ends
    inside the call that begins it; the host must still finish the restart once, after
    every service."""
    host = start_host("""
[service:a]
command = sleep 1000
count = 2

[service:b]
command = sleep 1000
""")
    old_a, old_b = host.wait_ready("a", 2), host.wait_ready("b", 1)
    for generation in (2, 3):
        assert host.request({"please": "restart"}) == {"ok": True, "generation": generation}
    new_a, new_b = host.wait_ready("a", 2), host.wait_ready("b", 1)
    assert not set(new_a) & set(old_a) and not set(new_b) & set(old_b)
    # Generation 2 was asked to stop once 3 was ready; it goes as soon as sleep exits.
    wait_for(lambda: [w["generation"] for w in host.workers("b")] == [3], 10,
             message="only generation 3 left in b")
    host.send_signal(signal.SIGHUP)  # the same config: a reload leaves both alone
    assert '"unchanged":["a","b"]' in host.wait_log("reload done:")[0]
    assert host.wait_ready("a", 2) == new_a and host.wait_ready("b", 1) == new_b
    assert host.process.poll() is None
    assert host.stop() == 0


def test_memory_limit_added_by_a_reload_is_checked(start_host, examples_dir, tmp_path):
    host = start_host(f"[service:web]\ncommand = {examples_dir}/worker --allocate 24\n"
                      "ready = notify\n")
    host.wait_ready("web", 1)
    (tmp_path / "aerie.ini").write_text(
        f"[service:web]\ncommand = {examples_dir}/worker --allocate 24\nready = notify\n"
        "memory_limit = 16M\nmemory_check_interval = 0.3\n")
    host.send_signal(signal.SIGHUP)
    host.wait_log("over memory_limit 16.0 MiB: replacing it")
    assert host.stop() == 0


# Prometheus over HTTP -----------------------------------------------------------------------

def test_prometheus_http_endpoint(start_host, examples_dir):
    port = free_port()
    host = start_host(f"""
[host]
prometheus = 127.0.0.1:{port}

[service:web]
command = {worker_command(examples_dir)}
count = 2
ready = notify
""")
    pids = host.wait_ready("web", 2)
    host.wait_log(f"serving Prometheus metrics on http://127.0.0.1:{port}/metrics")

    def get(request):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(request)
            data = b""
            while chunk := client.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return head.decode(), body.decode()

    head, body = get(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.startswith("HTTP/1.1 200 OK"), head
    assert "Content-Type: text/plain; version=0.0.4" in head
    assert f"Content-Length: {len(body.encode())}" in head
    assert all(f'pid="{pid}",role="worker",service="web"' in body for pid in pids)
    assert f'aerie_process_cpu_seconds_total{{pid="{host.pid}",role="host"}}' in body
    promtool = shutil.which("promtool")
    if promtool:
        check = subprocess.run([promtool, "check", "metrics"], input=body, text=True,
                               capture_output=True)
        assert check.returncode == 0, check.stdout + check.stderr
    assert get(b"GET /other HTTP/1.1\r\n\r\n")[0].startswith("HTTP/1.1 404")
    assert get(b"POST /metrics HTTP/1.1\r\n\r\n")[0].startswith("HTTP/1.1 405")
    assert get(b"nonsense\r\n\r\n")[0].startswith("HTTP/1.1 400")
    assert get(b"GET /" + b"x" * 9000 + b"\r\n")[0].startswith("HTTP/1.1 431")
    assert host.stop() == 0


# rolling restarts in batches ------------------------------------------------------------------

def test_rolling_batch_replaces_one_worker_at_a_time(start_host, examples_dir):
    host = start_host(f"""
[service:web]
command = {worker_command(examples_dir, "--ready-after", "0.2")}
count = 4
ready = notify
rolling_batch = 1
""")
    old = host.wait_ready("web", 4)
    alive_max, samples = 0, []
    done = threading.Event()
    replies = []
    thread = threading.Thread(target=lambda: (replies.append(host.request({"please": "restart"})),
                                              done.set()))
    thread.start()
    while not done.is_set():
        workers = [w for w in host.workers("web") if w["state"] in ("starting", "ready")]
        alive_max = max(alive_max, len(workers))
        samples.append(len(workers))
        time.sleep(0.01)  # sampling the roll as it goes
    thread.join()
    assert replies == [{"ok": True, "generation": 2}]
    new = host.wait_ready("web", 4)
    assert not set(new) & set(old)
    assert alive_max <= 5, samples  # count + the one batch: capacity never doubles
    # One at a time: each old worker is stopped just after the new one of its index is ready.
    # The last stop is logged in the turn of the reply: the log's reader may be behind it.
    stops = host.wait_log("stopping: sending SIGTERM", count=4)
    readies = [line for line in host.log() if "ready after" in line][4:]
    assert len(stops) == 4 and len(readies) == 4
    order = [line for line in host.log() if "stopping: sending SIGTERM" in line or
             ("ready after" in line and line in readies)]
    assert [("ready" if "ready after" in line else "stop") for line in order] == \
        ["ready", "stop"] * 4, order
    assert host.stop() == 0


def test_rolling_batch_that_fails_keeps_the_old_workers(start_host, examples_dir, tmp_path):
    config = f"""
[service:web]
command = {worker_command(examples_dir)}
count = 3
ready = notify
ready_timeout = 0.5
rolling_batch = 1
"""
    host = start_host(config)
    old = host.wait_ready("web", 3)
    (tmp_path / "aerie.ini").write_text(config.replace(str(examples_dir / "worker"),
                                                       f"{examples_dir / 'worker'} --no-ready"))
    host.send_signal(signal.SIGHUP)
    host.wait_log("reload failed:")
    assert sorted(host.wait_ready("web", 3)) == sorted(old)
    assert host.stop() == 0
