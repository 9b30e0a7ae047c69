"""Leak check: the plain binary under valgrind's memcheck, the host and its supervisor-process
both (`--trace-children=yes`; workers are skipped), over a scripted session: start, 1000
requests (status, metrics, Prometheus, bad ones of every kind, clients that leave early), three
rolling restarts (one a config reload that changes a count), a crash loop all along, and a
graceful stop. Every memcheck log must say 0 errors, definite leaks counted as errors, and the
host must exit 0."""
import json
import re
import shutil
import socket
import time

from hostlib import Client, config, free_port, request, service, wait_for, worker_command

VALGRIND_OPTIONS = ["--leak-check=full", "--errors-for-leak-kinds=definite",
                    "--error-exitcode=99", "--trace-children=yes",
                    "--trace-children-skip=*/worker,*/http_worker",
                    # No gdbserver: its FIFOs' unlink at exit is outside the supervisor
                    # process's syscall filter, which would kill it there.
                    "--vgdb=no"]
REQUESTS = 1000
ERROR_SUMMARY = re.compile(r"^==(\d+)== ERROR SUMMARY: (\d+) errors", re.M)


def session_config(examples_dir, port, web_count):
    """web: web_count plain workers; http: http_worker on a listen socket; crash: a crash loop."""
    slow = dict(ready="notify", ready_timeout=60, stop_timeout=20)
    return config(
        service("web", worker_command(examples_dir), count=web_count, **slow),
        service("http", worker_command(examples_dir, program="http_worker"), count=1,
                listen=f"tcp:127.0.0.1:{port}", **slow),
        # start_limit_burst = 0: the crash loop is meant to go on (restarts under valgrind).
        service("crash", worker_command(examples_dir, "--exit-code", "1"), restart_delay=0.01,
                restart_delay_max=0.05, start_limit_burst=0))


def exchange(path, payloads, replies=None, timeout=60):
    """Sends every payload (NUL-terminated) pipelined on one connection; reads `replies` replies
    (default: one per payload); returns them decoded."""
    wanted = len(payloads) if replies is None else replies
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(b"".join(p + b"\0" for p in payloads))
        data = b""
        while data.count(b"\0") < wanted:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            data += chunk
    return [json.loads(part) for part in data.split(b"\0")[:wanted]]


def error_code(reply):
    return reply.get("error", {}).get("code") if isinstance(reply, dict) else None


def memcheck_logs(directory):
    """{pid: text} of every memcheck log file."""
    return {int(p.name[3:-4]): p.read_text(errors="replace")
            for p in directory.glob("vg.*.log")}


def test_valgrind_session_has_no_errors_in_host_and_supervisor(start_host, examples_dir,
                                                                aerie_plain_bin, tmp_path):
    valgrind = shutil.which("valgrind")
    assert valgrind, "valgrind is not installed"
    logs = tmp_path / "memcheck"
    logs.mkdir()
    port = free_port()
    host = start_host(session_config(examples_dir, port, 2), binary=aerie_plain_bin, wrapper=[
        valgrind, *VALGRIND_OPTIONS, f"--log-file={logs}/vg.%p.log"])
    host.wait_ready("web", 2, timeout=60)
    host.wait_ready("http", 1, timeout=60)
    started = time.monotonic()
    sent = 0

    # Status and metrics, pipelined on a few connections, checked.
    status, metrics = b'{"please":"status"}', b'{"please":"metrics"}'
    prometheus = b'{"please":"metrics","format":"prometheus"}'
    for _ in range(10):
        replies = exchange(host.socket, [status] * 30 + [metrics] * 10 + [prometheus] * 5)
        sent += 45
        assert all(r["host"]["pid"] == host.pid for r in replies[:30]), replies[:30]
        assert all(str(host.pid) in r for r in replies[30:40]), replies[30:40]
        assert all(isinstance(r, str) and "aerie_host_uptime_seconds" in r
                   for r in replies[40:]), replies[40:]
    for _ in range(50):  # one request per connection, as the CLI does
        assert host.status()["host"]["pid"] == host.pid
        sent += 1

    # Bad requests of every kind, each with its error reply.
    bad = [(b"{not json", "malformed"), (b"\xff\xfe", "malformed"),
           (b"[" * 40 + b"]" * 40, "malformed"), (b'"status"', "invalid_request"),
           (b"{}", "invalid_request"), (b'{"please":42}', "invalid_request"),
           (b'{"please":"launch"}', "unknown_command"),
           (b'{"please":"restart","signal":"NOPE"}', "unknown_signal"),
           (b'{"please":"restart","service":7}', "invalid_request"),
           (b'{"please":"metrics","format":"xml"}', "invalid_request")]
    for _ in range(30):
        replies = exchange(host.socket, [payload for payload, _ in bad])
        sent += len(bad)
        assert [error_code(r) for r in replies] == [code for _, code in bad], replies
    # Too large: the reply, then the connection is closed.
    replies = exchange(host.socket, [b'{"please":"' + b"x" * (70 << 10) + b'"}'])
    sent += 1
    assert error_code(replies[0]) == "too_large", replies
    # Clients that leave: without reading their replies, and in the middle of a request.
    for payloads in ([status] * 20 + [metrics] * 5, [b'{"please":"sta']):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(host.socket))
            s.sendall(b"\0".join(payloads) + (b"\0" if payloads[0] == status else b""))
        sent += len(payloads)
    # The rest as status requests, to reach the count.
    while sent < REQUESTS:
        batch = min(50, REQUESTS - sent)
        assert len(exchange(host.socket, [status] * batch)) == batch
        sent += batch
    requests_took = time.monotonic() - started

    # Three rolling restarts: two on the socket, then a reload (SIGHUP) that changes a count,
    # which scales.
    # The crash loop goes on all the while.
    assert request(host.socket, {"please": "restart", "service": "web"}, 60)["ok"] is True
    assert request(host.socket, {"please": "restart", "service": "http"}, 60)["ok"] is True
    client = Client(port)
    assert client.get("/")[0] == 200
    client.close()

    def restarts_ended():
        return [line for line in host.log()
                if re.search(r"rolling restart (to generation \d+ done|failed)|reload done:",
                             line)]
    before = len(restarts_ended())
    host.config.write_text(session_config(examples_dir, port, 3))
    assert request(host.socket, {"please": "restart", "signal": "HUP"}, 60) == {
        "ok": True, "signal": "HUP"}
    wait_for(lambda: len(restarts_ended()) > before, 90, message="the reload's restart ends")
    host.wait_ready("web", 3, timeout=60)
    status_now = host.status()
    assert status_now["services"]["crash"]["restarts"] >= 5, status_now["services"]["crash"]

    assert host.stop(timeout=90) == 0, host.log_text()[-4000:]

    found = memcheck_logs(logs)
    summaries = {pid: ERROR_SUMMARY.findall(text) for pid, text in found.items()}
    assert host.pid in found and summaries[host.pid], f"no memcheck summary of the host:\n" \
        f"{found.get(host.pid, '(no log)')}"
    supervisors = [pid for pid, text in found.items()
                   if re.search(r"== Command: \S+ supervisor-process", text)]
    assert supervisors, "memcheck did not trace the supervisor-process: " \
        f"{ {pid: text.splitlines()[3:4] for pid, text in found.items()} }"
    for pid in supervisors:
        assert summaries[pid], f"the supervisor-process's log has no summary:\n{found[pid]}"
    bad_logs = {pid: text for pid, text in found.items()
                if any(count != "0" for _, count in summaries[pid])}
    assert not bad_logs, "\n\n".join(bad_logs.values())[-8000:]
    print(f"[leaks] {sent} requests in {requests_took:.1f} s; memcheck logs: host {host.pid}, "
          f"supervisor-process {supervisors}, {len(found)} files in all; crash restarts "
          f"{status_now['services']['crash']['restarts']}")
