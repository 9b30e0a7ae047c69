"""aerie host: the real binary running the example worker: start and stop, crashes and
backoff, timeouts, process trees, output, environment, idle cost, valgrind."""
import ctypes
import os
import pathlib
import re
import shlex
import shutil
import signal
import struct
import subprocess
import tempfile
import time

import pytest

from hostlib import (all_pids, cpu_seconds, descendants, exists, find_process, idle_syscalls,
                     ignored_signals, parent, proc_stat, process_alive, read_cmdline,
                     supervisor_pid, wait_for,
                     wait_gone, worker_command, zombies_of)

# 12:34:56.789 info  web.0[123] text
LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} (error|warn |info |debug) (.*)$")
RESTARTING = re.compile(r"(\w+)\.(\d+): restarting in (\d+\.\d{3}) s \(failure (\d+) in a row\)$")
ZERO_MASK = "0000000000000000"


def messages(host):
    """The log without timestamps and levels (lines from valgrind or the like left out)."""
    found = []
    for line in host.log():
        match = LOG_LINE.match(line)
        if match:
            found.append(match.group(2))
    return found


def timestamped(host):
    """[(seconds since midnight, message)] for each log line of the host."""
    found = []
    for line in host.log():
        match = re.match(r"^(\d\d):(\d\d):(\d\d\.\d{3}) \w+\s+(.*)$", line)
        if match:
            h, m, sec, message = match.groups()
            found.append((int(h) * 3600 + int(m) * 60 + float(sec), message))
    return found


def restarts_logged(host, label):
    """[(failure, delay)] from the "restarting in" lines of worker label ("web.0")."""
    found = []
    for message in messages(host):
        match = RESTARTING.match(message)
        if match and f"{match.group(1)}.{match.group(2)}" == label:
            found.append((int(match.group(4)), float(match.group(3))))
    return found


def assert_backoff(delays, first, maximum):
    """Each delay is jittered in [base/2, base], base = first * 2^(n-1) capped at maximum;
    the log rounds to milliseconds."""
    assert [n for n, _ in delays] == list(range(1, len(delays) + 1)), delays
    for n, delay in delays:
        base = min(first * 2 ** (n - 1), maximum)
        assert base / 2 - 0.0011 <= delay <= base + 0.0011, (n, delay, base, delays)


def worker_by_index(host, service, index):
    return next(w for w in host.workers(service) if w["index"] == index)


def orphan_of(host, cmdline):
    """Waits for the process running cmdline to be orphaned to the host; returns its pid."""
    def found():
        pid = find_process(host.pid, cmdline)
        return pid if pid and parent(pid) == host.pid else None
    return wait_for(found, 5, message=f"{cmdline} orphaned to the host")


# 1 ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_start_and_stop_several_services(start_host, examples_dir, signum):
    host = start_host(f"""
[service:web]
command = {worker_command(examples_dir, "--status", "serving web")}
count = 3
ready = notify

[service:clock]
command = {worker_command(examples_dir)}
count = 1
ready = none
""")
    web = host.wait_ready("web", 3)
    clock = host.wait_ready("clock", 1)
    status = host.status()
    assert status["host"]["pid"] == host.pid
    assert status["host"]["generation"] == 1
    assert status["services"]["web"]["ready"] == 3
    assert status["services"]["clock"]["ready"] == 1
    assert sorted(w["index"] for w in status["services"]["web"]["workers"]) == [0, 1, 2]
    assert [w["status"] for w in status["services"]["web"]["workers"]] == ["serving web"] * 3
    everyone = descendants(host.pid)  # the workers and the supervisor process
    assert set(web + clock) <= set(everyone)
    assert all(parent(pid) == host.pid for pid in web + clock)
    assert host.socket.exists()

    assert host.stop(signum=signum) == 0
    text = host.log_text()
    name = signal.Signals(signum).name
    assert f"received {name}: stopping gracefully" in text
    assert len([m for m in messages(host) if "stopped: exited with status 0" in m]) == 4, text
    assert "all workers stopped" in text
    assert f"host {host.pid} exiting" in text
    # Reaped by the host before it exited: not alive, and not left as zombies either.
    left = [pid for pid in everyone if exists(pid)]
    assert left == [], f"still in /proc after the host exited: {left}\n{text}"
    assert not host.socket.exists()


def test_many_workers_start_and_stop(start_host, examples_dir):
    host = start_host(f"""
[service:web]
command = {worker_command(examples_dir)}
count = 30
ready = notify
""")
    pids = host.wait_ready("web", 30, timeout=20)
    assert len(set(pids)) == 30
    assert host.stop() == 0
    assert [pid for pid in pids if exists(pid)] == []
    assert len([m for m in messages(host) if "stopped: exited with status 0" in m]) == 30


def test_stop_signal_from_the_config(start_host, examples_dir):
    host = start_host(f"""
[service:web]
command = {worker_command(examples_dir)}
ready = notify
stop_signal = INT
""")
    pid, = host.wait_ready("web", 1)
    assert host.stop() == 0
    text = host.log_text()
    assert f"web.0[{pid}] stopping: sending SIGINT" in text
    assert f"web.0[{pid}] worker web.0 stopping on SIGINT" in text
    assert f"web.0[{pid}] stopped: exited with status 0" in text


def test_stop_while_starting_or_in_backoff_is_prompt(start_host, examples_dir):
    host = start_host(f"""
[service:slow]
command = {worker_command(examples_dir, "--ready-after", "5")}
ready = notify

[service:crashy]
command = {worker_command(examples_dir, "--exit-code", "3")}
ready = none
restart_delay = 5
restart_delay_max = 5
""")
    host.wait_log("crashy.0: restarting in")
    host.wait_log("slow.0[")
    assert host.workers("slow")[0]["state"] == "starting"
    assert host.workers("crashy")[0]["state"] == "backoff"
    started = time.monotonic()
    assert host.stop() == 0
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, f"stopped in {elapsed:.2f} s"
    text = host.log_text()
    assert "worker slow.0 stopping on SIGTERM" in text
    assert len(re.findall(r"crashy\.0\[\d+\] started", text)) == 1  # not started again


def test_ready_from_a_process_in_the_workers_group(start_host, examples_dir):
    # sh stays the worker (no exec: "&&" follows); the real program, its child in the same
    # process group, is the one that sends READY=1.
    script = f"{worker_command(examples_dir)} && exit 0"
    host = start_host(f"""
[service:web]
command = sh -c {shlex.quote(script)}
ready = notify
ready_timeout = 5
""")
    pid, = host.wait_ready("web", 1)
    assert read_cmdline(pid).split(b"\0")[0] == b"sh"
    host.wait_log(f"web.0[{pid}] ready after")
    assert host.stop() == 0
    assert not exists(pid)


# 2 ----------------------------------------------------------------------------------------

def test_killed_worker_is_replaced(start_host, examples_dir):
    host = start_host(f"""
[service:web]
command = {worker_command(examples_dir)}
count = 2
ready = notify
""")
    host.wait_ready("web", 2)
    before = host.status()["services"]["web"]
    victim = worker_by_index(host, "web", 0)
    other = worker_by_index(host, "web", 1)
    os.kill(victim["pid"], signal.SIGKILL)

    host.wait_log(f"web.0[{victim['pid']}] killed by SIGKILL after")
    host.wait_log("web.0: restarting in")

    def replaced():
        w = worker_by_index(host, "web", 0)
        return w if w["state"] == "ready" and w["pid"] != victim["pid"] else None
    new = wait_for(replaced, 5, message="a new ready web.0")
    assert not exists(victim["pid"])
    assert process_alive(new["pid"])
    assert parent(new["pid"]) == host.pid
    after = host.status()["services"]["web"]
    assert after["restarts"] == before["restarts"] + 1
    assert after["ready"] == 2
    assert new["restarts"] == 1
    assert new["last_exit"] == {"signal": "KILL"}
    assert worker_by_index(host, "web", 1)["pid"] == other["pid"]  # untouched
    host.wait_log(f"web.0[{new['pid']}] started: generation 1")
    assert host.stop() == 0


def test_crashed_worker_is_replaced(start_host, examples_dir):
    host = start_host(f"""
[service:web]
command = {worker_command(examples_dir, "--exit-after", "0.2", "--crash")}
ready = notify
restart_delay = 0.1
""")
    line = host.wait_log("killed by SIGSEGV after")[0]
    pid = int(re.search(r"web\.0\[(\d+)\]", line).group(1))
    host.wait_log("web.0: restarting in")
    host.wait_log("started: generation 1", count=2)
    assert "(core dumped)" not in line
    assert not exists(pid)
    assert host.process.poll() is None
    assert host.stop() == 0


# 3 ----------------------------------------------------------------------------------------

def test_crash_loop_backs_off_without_spinning(start_host, examples_dir):
    host = start_host(f"""
[service:web]
command = {worker_command(examples_dir, "--exit-after", "0", "--exit-code", "3")}
ready = none
restart_delay = 0.1
restart_delay_max = 0.8
start_limit_burst = 0
""")
    host.wait_log("web.0: restarting in")
    cpu_before, started = cpu_seconds(host.pid), time.monotonic()
    time.sleep(2.5)  # measuring: the host must stay idle between its deadlines
    cpu = cpu_seconds(host.pid) - cpu_before
    elapsed = time.monotonic() - started

    delays = restarts_logged(host, "web.0")
    # 0.1 + 0.2 + 0.4 + 0.8 at most before the fifth: the cap is reached in the window.
    assert len(delays) >= 5, host.log_text()
    assert_backoff(delays, 0.1, 0.8)
    assert all(delay <= 0.8011 for _, delay in delays)
    assert "exited with status 3 after" in host.log_text()
    assert host.status()["services"]["web"]["restarts"] >= 5
    # Each deadline fires when due: not early (a spin), not much later.
    lines = timestamped(host)
    for i, (when, message) in enumerate(lines):
        match = RESTARTING.match(message)
        if not match:
            continue
        later = [t for t, m in lines[i + 1:] if re.match(r"web\.0\[\d+\] started", m)]
        if later:
            delay, gap = float(match.group(3)), later[0] - when
            assert delay - 0.003 <= gap <= delay + 0.25, (delay, gap, message)
    assert cpu < 0.3, f"host used {cpu:.2f} s of CPU in {elapsed:.2f} s of a crash loop"
    assert host.stop() == 0


# 4 ----------------------------------------------------------------------------------------

def test_restart_policies(start_host, examples_dir):
    host = start_host(f"""
[service:ok]
command = {worker_command(examples_dir, "--exit-code", "0")}
ready = none
restart = on-failure

[service:bad]
command = {worker_command(examples_dir, "--exit-code", "3")}
ready = none
restart = on-failure
restart_delay = 0.1

[service:never]
command = {worker_command(examples_dir, "--exit-code", "3")}
ready = none
restart = never
""")
    host.wait_log("ok.0: not restarted (restart = on-failure)")
    host.wait_log("never.0: not restarted (restart = never)")
    host.wait_log("bad.0: restarting in", count=2)
    text = host.log_text()
    assert "ok.0: restarting" not in text
    assert "never.0: restarting" not in text
    assert re.search(r"bad\.0\[\d+\] exited with status 3 after", text)
    assert re.search(r"never\.0\[\d+\] exited with status 3 after", text)

    time.sleep(0.5)  # measuring: nothing starts ok.0 or never.0 again
    status = host.status()["services"]
    ok, = status["ok"]["workers"]
    never, = status["never"]["workers"]
    assert ok["state"] == "done" and ok["last_exit"] == {"code": 0}
    assert never["state"] == "exited" and never["last_exit"] == {"code": 3}
    assert status["ok"]["restarts"] == 0 and status["never"]["restarts"] == 0
    assert status["ok"]["ready"] == 0
    assert status["bad"]["restarts"] >= 2
    started = [m for m in messages(host) if re.match(r"(ok|never)\.0\[\d+\] started", m)]
    assert len(started) == 2, started
    assert host.stop() == 0


# 5 ----------------------------------------------------------------------------------------

def test_ready_timeout_kills_and_backs_off(start_host, examples_dir):
    host = start_host(f"""
[service:web]
command = {worker_command(examples_dir, "--no-ready")}
ready = notify
ready_timeout = 0.5
restart_delay = 0.2
restart_delay_max = 1
""")
    host.wait_log("web.0: restarting in", count=2)
    text = host.log_text()
    first = int(re.search(r"web\.0\[(\d+)\] started", text).group(1))
    assert f"web.0[{first}] not ready within ready_timeout: killing it" in text
    took = float(re.search(
        rf"web\.0\[{first}\] killed by SIGKILL after (\d+\.\d+) s \(killed: not ready in time\)",
        text).group(1))
    assert 0.5 <= took < 2.0, text
    assert not exists(first)
    pids = re.findall(r"web\.0\[(\d+)\] started", text)
    assert len(set(pids)) >= 2  # restarted, as a new process
    delays = restarts_logged(host, "web.0")
    assert_backoff(delays, 0.2, 1.0)  # counted as failures: 1, 2, ... in a row
    worker, = host.workers("web")
    assert worker["state"] in ("starting", "backoff")
    assert host.status()["services"]["web"]["ready"] == 0
    assert host.stop() == 0


# 6 ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["ignores", "starting", "stopped"])
def test_stop_timeout_sends_sigkill(start_host, examples_dir, case):
    args = {"ignores": ["--ignore-stop"], "starting": ["--ignore-stop", "--no-ready"],
            "stopped": []}[case]
    host = start_host(f"""
[service:web]
command = {worker_command(examples_dir, *args)}
ready = notify
ready_timeout = 60
stop_timeout = 0.5
""")
    if case == "starting":
        # Its ready_timeout deadline is armed; the stop_timeout one must replace it.
        pid = int(re.search(r"web\.0\[(\d+)\] worker web\.0 not ready",
                            host.wait_log("not ready (--no-ready)")[0]).group(1))
        assert host.workers("web")[0]["state"] == "starting"
    else:
        pid, = host.wait_ready("web", 1)
    if case == "stopped":
        os.kill(pid, signal.SIGSTOP)  # SIGTERM stays pending; SIGKILL works all the same
        wait_for(lambda: proc_stat(pid)[0] == "T", 5, message="the worker to stop")
    started = time.monotonic()
    assert host.stop(timeout=5) == 0
    elapsed = time.monotonic() - started
    text = host.log_text()
    if case != "stopped":
        assert "worker web.0 ignoring SIGTERM" in text
    assert (f"web.0[{pid}] still running 0.5 s after SIGTERM (stop_timeout): sending SIGKILL "
            "to its process group") in text
    assert f"web.0[{pid}] stopped: killed by SIGKILL" in text
    assert 0.5 <= elapsed < 2.5, f"stopped in {elapsed:.2f} s"
    assert not exists(pid)


# 7 ----------------------------------------------------------------------------------------

def test_second_sigint_stops_at_once(start_host, examples_dir):
    host = start_host(f"""
[service:web]
command = {worker_command(examples_dir, "--stop-delay", "5")}
count = 2
ready = notify
stop_timeout = 10
""")
    pids = host.wait_ready("web", 2)
    host.send_signal(signal.SIGINT)
    host.wait_log("stopping on SIGTERM", count=2)  # both workers are draining
    assert host.process.poll() is None
    started = time.monotonic()
    assert host.stop(timeout=5, signum=signal.SIGINT) == 0
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, f"second SIGINT took {elapsed:.2f} s"
    text = host.log_text()
    assert "received SIGINT again: killing every worker" in text
    assert "worker web.0 stopped" not in text  # cut short, not drained
    for pid in pids:
        assert f"[{pid}] stopped: killed by SIGKILL" in text
        assert not exists(pid)


# 8 ----------------------------------------------------------------------------------------

def grandchild_of(host, worker_pid):
    line = host.wait_log(f"web.0[{worker_pid}] worker web.0 grandchild ")[0]
    return int(line.rsplit(" ", 1)[1])


def test_grandchildren_go_with_their_worker(start_host, examples_dir):
    host = start_host(f"""
[service:web]
command = {worker_command(examples_dir, "--spawn-grandchild")}
ready = notify
""")
    worker, = host.wait_ready("web", 1)
    grandchild = grandchild_of(host, worker)
    assert process_alive(grandchild)
    assert parent(grandchild) == host.pid  # orphaned, so it came to the subreaper
    assert os.getpgid(grandchild) == worker  # in the worker's process group

    os.kill(worker, signal.SIGKILL)
    wait_gone([worker, grandchild])  # group killed, and reaped: no zombie left behind
    assert zombies_of(host.pid) == []

    def new_worker():
        pids = host.wait_ready("web", 1)
        return pids if pids[0] != worker else None
    worker2, = wait_for(new_worker, 5, message="a new web.0")
    grandchild2 = grandchild_of(host, worker2)
    assert process_alive(grandchild2)
    tree = descendants(host.pid)
    assert host.stop() == 0
    assert not exists(grandchild2)
    assert [pid for pid in tree if exists(pid)] == []
    assert descendants(host.pid) == []


def test_escaped_orphan_is_stopped_with_the_host(start_host, examples_dir):
    # The subshell exits at once, so `sleep` is orphaned; setsid puts it out of the worker's
    # process group, where the group kill can't reach it.
    script = ("(setsid sleep 1234 </dev/null >/dev/null 2>&1 &) && "
              f"exec {worker_command(examples_dir)}")
    host = start_host(f"""
[service:web]
command = sh -c {shlex.quote(script)}
ready = notify
cgroup = no
""")  # the sweep of orphans, as where no cgroup is writable: with one, cgroup.kill goes first
    worker, = host.wait_ready("web", 1)
    orphan = orphan_of(host, ["sleep", "1234"])  # reparented to the subreaper, not to init
    assert os.getsid(orphan) == orphan  # its own session: out of the worker's group
    assert os.getpgid(orphan) != worker

    assert host.stop(timeout=10) == 0
    text = host.log_text()
    assert f"stopping orphan {orphan} with SIGTERM" in text
    assert "all workers stopped" in text
    assert not exists(orphan)
    assert not exists(worker)


@pytest.mark.parametrize("how", ["timeout", "again"])
def test_orphan_ignoring_sigterm_gets_sigkill(start_host, examples_dir, how):
    script = ('(setsid sh -c "trap \\"\\" TERM && exec sleep 1236" </dev/null >/dev/null 2>&1 &)'
              f" && exec {worker_command(examples_dir)}")
    host = start_host(f"""
[service:web]
command = sh -c {shlex.quote(script)}
ready = notify
cgroup = no
""")  # the sweep of orphans, as where no cgroup is writable: with one, cgroup.kill goes first
    host.wait_ready("web", 1)
    orphan = orphan_of(host, ["sleep", "1236"])
    wait_for(lambda: ignored_signals(orphan) & (1 << (signal.SIGTERM - 1)), 5,
             message="the orphan to ignore SIGTERM")
    started = time.monotonic()
    host.send_signal(signal.SIGTERM)
    host.wait_log(f"stopping orphan {orphan} with SIGTERM")
    if how == "timeout":
        host.process.wait(timeout=10)
        assert host.stop() == 0  # exited already: this only collects the code and the log
        elapsed = time.monotonic() - started
        assert 4.9 <= elapsed < 7.0, f"stopped in {elapsed:.2f} s"
    else:
        assert host.process.poll() is None
        again = time.monotonic()
        assert host.stop(timeout=5) == 0
        elapsed = time.monotonic() - again
        assert elapsed < 1.5, f"stopped in {elapsed:.2f} s after the second SIGTERM"
    assert f"stopping orphan {orphan} with SIGKILL" in host.log_text()
    assert not exists(orphan)


def test_orphan_exiting_on_its_own_is_reaped(start_host, examples_dir):
    script = f"(sleep 0.3 &) && exec {worker_command(examples_dir)}"
    host = start_host(f"""
[service:web]
command = sh -c {shlex.quote(script)}
ready = notify
min_uptime = 0
""")
    host.wait_ready("web", 1)
    orphan = orphan_of(host, ["sleep", "0.3"])
    wait_gone([orphan])  # exited, and reaped by the host: not left as its zombie
    assert zombies_of(host.pid) == []
    assert host.process.poll() is None
    assert host.stop() == 0


# 9 ----------------------------------------------------------------------------------------

def test_zombie_of_a_worker_is_reaped(start_host, examples_dir):
    host = start_host(f"""
[service:web]
command = {worker_command(examples_dir, "--leave-zombie")}
ready = notify
""")
    worker, = host.wait_ready("web", 1)
    line = host.wait_log(f"web.0[{worker}] worker web.0 zombie ")[0]
    zombie = int(line.rsplit(" ", 1)[1])
    stat = proc_stat(zombie)
    assert stat and stat[0] == "Z" and int(stat[1]) == worker  # the worker's, unreaped

    os.kill(worker, signal.SIGKILL)
    # The zombie goes to the host (the subreaper), which reaps it with the worker.
    wait_gone([worker, zombie])
    assert zombies_of(host.pid) == []
    assert host.process.poll() is None
    worker2, = wait_for(lambda: [p for p in host.wait_ready("web", 1) if p != worker], 5,
                        message="a new web.0")
    line = host.wait_log(f"web.0[{worker2}] worker web.0 zombie ")[0]
    zombie2 = int(line.rsplit(" ", 1)[1])
    assert host.stop() == 0
    assert not exists(zombie2)
    assert not exists(worker2)


# 10 ---------------------------------------------------------------------------------------

def test_output_capture(start_host, examples_dir):
    # stdout goes away so that nothing follows the partial stderr line in the pipe: the host
    # has to hold it until the pipe closes, then log it as a line of its own.
    script = f"exec {worker_command(examples_dir, '--stderr-lines', '3')} >/dev/null"
    host = start_host(f"""
[service:web]
command = sh -c {shlex.quote(script)}
ready = notify
""")
    pid, = host.wait_ready("web", 1)
    host.wait_log(f"web.0[{pid}] stderr: stderr line 3")
    for n in (1, 2, 3):
        # stderr: logged at warn and marked.
        pattern = rf"^\d\d:\d\d:\d\d\.\d{{3}} warn  web\.0\[{pid}\] stderr: stderr line {n}$"
        assert [l for l in host.log() if re.match(pattern, l)], host.log_text()
    assert "partial" not in host.log_text()  # no newline yet: held back
    assert host.stop() == 0
    pattern = rf"^\d\d:\d\d:\d\d\.\d{{3}} warn  web\.0\[{pid}\] stderr: stderr partial line$"
    assert len([l for l in host.log() if re.match(pattern, l)]) == 1, host.log_text()


def test_output_lines_keep_their_order(start_host, examples_dir):
    host = start_host(f"""
[service:web]
command = {worker_command(examples_dir, "--stderr-lines", "200")}
ready = notify
""")
    pid, = host.wait_ready("web", 1)
    host.wait_log(f"web.0[{pid}] stderr: stderr line 200")
    numbers = [int(m.rsplit(" ", 1)[1]) for m in messages(host)
               if m.startswith(f"web.0[{pid}] stderr: stderr line ")]
    assert numbers == list(range(1, 201))
    assert host.stop() == 0


def test_long_output_line_is_logged_in_pieces(start_host, examples_dir):
    script = (f"head -c 5000 /dev/zero | tr \"\\\\0\" x && echo && echo after && "
              f"exec {worker_command(examples_dir)}")
    host = start_host(f"""
[service:web]
command = sh -c {shlex.quote(script)}
ready = notify
""")
    pid, = host.wait_ready("web", 1)
    host.wait_log(f"web.0[{pid}] after")
    pieces = [m.split("] ", 1)[1] for m in messages(host) if m.startswith(f"web.0[{pid}] x")]
    assert "".join(pieces) == "x" * 5000, pieces
    assert all(len(piece) <= 2048 for piece in pieces), [len(p) for p in pieces]
    assert host.stop() == 0


def test_flooding_worker_does_not_starve_the_host(start_host, examples_dir):
    # The host's log goes to /dev/null: the flood would fill this process's memory.
    host = start_host(f"""
[service:chatty]
command = yes
ready = none
min_uptime = 0

[service:web]
command = {worker_command(examples_dir)}
ready = notify
""", wrapper=["sh", "-c", 'exec "$@" 2>/dev/null', "sh"])
    try:
        wait_for(lambda: find_process(host.pid, ["yes"]), 5, message="yes to run")
        # Short request timeouts: a starved host would hold each for the default 30 s.
        started = time.monotonic()
        status = host.request({"please": "status"}, timeout=3)
        assert status["services"]["chatty"]["ready"] == 1
        wait_for(lambda: host.request({"please": "status"}, timeout=1)["services"]["web"]
                 ["ready"] == 1, 5 - (time.monotonic() - started), message="web.0 ready")
        host.send_signal(signal.SIGTERM)
        assert host.process.wait(timeout=5) == 0
    finally:
        if host.process.poll() is None:
            host.kill()  # not the 20 s graceful stop of the fixture


# 11 ---------------------------------------------------------------------------------------

def printed_env(host, service):
    """{index: {KEY: VALUE}} from the --print-env lines of each worker of service."""
    found = {}
    pattern = re.compile(rf"^{service}\.(\d+)\[(\d+)\] (\w+)=(.*)$")
    for message in messages(host):
        match = pattern.match(message)
        if match:
            found.setdefault(int(match.group(1)), {})[match.group(3)] = match.group(4)
    return found


def test_worker_environment(start_host, examples_dir, tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    # Inherited values of the keys the host sets must not get through; env = overrides.
    monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent/notify")
    monkeypatch.setenv("AERIE_WORKER", "99")
    monkeypatch.setenv("LISTEN_FDS", "7")
    monkeypatch.setenv("GREETING", "inherited")
    show = ("--print-env", "--env-key", "GREETING")
    host = start_host(f"""
[service:web]
command = {worker_command(examples_dir, *show)}
count = 2
ready = notify
env = GREETING=hello
directory = sub

[service:clock]
command = {worker_command(examples_dir, *show)}
ready = none
""", wrapper=["sh", "-c", 'exec 7</dev/null && exec "$@"', "sh"])  # a leaked fd 7 in the host
    host.wait_ready("web", 2)
    host.wait_ready("clock", 1)
    assert os.path.exists(f"/proc/{host.pid}/fd/7")
    host.wait_log("] sigign=", count=3)  # the last line each worker prints
    web = printed_env(host, "web")
    clock = printed_env(host, "clock")
    assert sorted(web) == [0, 1] and sorted(clock) == [0]
    for index, env in web.items():
        assert env["NOTIFY_SOCKET"].startswith("@"), env
        assert env["AERIE_SERVICE"] == "web"
        assert env["AERIE_WORKER"] == str(index)
        assert env["AERIE_GENERATION"] == "1"
        assert env["GREETING"] == "hello"
        assert "LISTEN_FDS" not in env and "LISTEN_PID" not in env
        assert env["cwd"] == os.path.realpath(tmp_path / "sub")
        assert env["fds"] == "0,1,2"
        assert env["sigmask"] == ZERO_MASK
        assert env["sigign"] == ZERO_MASK
    env = clock[0]
    assert "NOTIFY_SOCKET" not in env, env
    assert env["AERIE_SERVICE"] == "clock"
    assert env["AERIE_WORKER"] == "0"
    assert env["AERIE_GENERATION"] == "1"
    assert env["GREETING"] == "inherited"
    assert "LISTEN_FDS" not in env
    assert env["cwd"] == os.path.realpath(tmp_path)
    assert env["fds"] == "0,1,2"
    assert env["sigmask"] == ZERO_MASK
    assert env["sigign"] == ZERO_MASK
    assert host.stop() == 0


# 12 ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("program, error, code", [
    ("./does-not-exist", "No such file or directory", 127),
    ("./not-executable", "Permission denied", 126),
], ids=["missing", "not-executable"])
def test_exec_failure_is_a_crash(start_host, tmp_path, program, error, code):
    (tmp_path / "not-executable").write_text("#!/bin/sh\n")
    host = start_host(f"""
[service:web]
command = {program} --flag
ready = notify
restart_delay = 0.1
restart_delay_max = 0.4
""")
    host.wait_log("web.0: restarting in", count=3)
    text = host.log_text()
    assert re.search(rf"web\.0\[\d+\] stderr: aerie: exec {re.escape(program)}: {error}$", text,
                     re.M), text
    assert re.search(rf"web\.0\[\d+\] exited with status {code} after", text), text
    assert_backoff(restarts_logged(host, "web.0"), 0.1, 0.4)
    assert host.process.poll() is None
    status = host.status()
    assert status["services"]["web"]["restarts"] >= 3
    assert status["services"]["web"]["ready"] == 0
    assert host.stop() == 0


def test_zero_restart_delay_survives_a_long_crash_loop(start_host, aerie_plain_bin):
    # The plain build: the sanitizers make each of the 1100 spawns several times slower.
    host = start_host(binary=aerie_plain_bin, config="""
[service:web]
command = ./does-not-exist
ready = none
restart_delay = 0
restart_delay_max = 0
start_limit_burst = 0
""")

    def exits():
        return sum(1 for line in host.log() if "exited with status 127" in line)

    # With no delay every failure restarts at once: 1100 of them take a few seconds.
    wait_for(lambda: exits() >= 1100 or "restarting in" in host.log_text(), 30, interval=0.1,
             message="1100 restarts")
    backoff = [m for m in messages(host) if "restarting in" in m]
    assert backoff == [], backoff  # delay 0: never a deadline, let alone a NaN one
    assert exits() >= 1100
    assert host.process.poll() is None
    assert host.stop() == 0


@pytest.fixture
def open_directory():
    """A directory in /tmp that any uid may use (pytest's tmp_path is root's alone)."""
    directory = tempfile.mkdtemp(prefix="aerie-test-", dir="/tmp")
    os.chmod(directory, 0o777)
    yield pathlib.Path(directory)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("delay", [
    "0.1",
    "0",
])
def test_fork_failure_backs_off(open_directory, start_host, examples_dir, delay):
    if os.geteuid() != 0:
        pytest.skip("needs root: the host runs as a fresh uid limited by RLIMIT_NPROC")
    setpriv, prlimit = shutil.which("setpriv"), shutil.which("prlimit")
    assert setpriv and prlimit, "setpriv and prlimit (util-linux) are needed"
    # uid 54321 has no other process: the host, its guard, the supervisor process and web.0
    # make 4, so forking web.1 fails with EAGAIN. The guard of a previous run is init's child:
    # it counts until init has reaped it.
    def uid_processes():
        found = []
        for pid in all_pids():
            try:
                if os.stat(f"/proc/{pid}").st_uid == 54321:
                    found.append(pid)
            except OSError:
                pass
        return found
    wait_for(lambda: not uid_processes(), message="no process of uid 54321")
    host = start_host(f"""
[service:web]
command = {worker_command(examples_dir)}
count = 2
ready = notify
restart_delay = {delay}
restart_delay_max = 0.4
""", directory=open_directory, wrapper=[
        setpriv, "--reuid=54321", "--regid=54321", "--clear-groups", prlimit, "--nproc=4"])
    host.wait_log("web.1: cannot start a worker; trying again in 1.0 s: "
                  "Resource temporarily unavailable")
    first = time.monotonic()
    host.wait_ready("web", 1)
    time.sleep(max(0.0, first + 1.0 - time.monotonic()))  # measuring: how often it retries
    attempts = sum(1 for m in messages(host) if m.startswith("web.1: cannot start a worker"))
    assert attempts <= 20, f"{attempts} fork attempts in about a second"
    assert "nan" not in host.log_text()
    assert host.process.poll() is None
    status = host.status()["services"]["web"]
    assert status["ready"] == 1
    assert [w["state"] for w in status["workers"] if w["index"] == 1] == ["backoff"]
    assert host.stop() == 0


# 13 ---------------------------------------------------------------------------------------

def test_idle_host_makes_no_syscalls(start_host, examples_dir, tmp_path):
    host = start_host(f"""
[service:web]
command = {worker_command(examples_dir)}
count = 5
ready = notify

[service:done]
command = {worker_command(examples_dir, "--exit-code", "0")}
ready = none
restart = on-failure

[service:slow]
command = {worker_command(examples_dir, "--no-ready")}
ready = notify
ready_timeout = 60
""")
    host.wait_ready("web", 5)
    host.wait_log("done.0: not restarted")
    host.wait_log("worker slow.0 not ready")
    host.wait_log("] worker web.0 ready")
    # wait_ready's status requests were connections: the host checks the supervisor process
    # once, CONTROL_PING_INTERVAL (5 s) after the first. Then neither has anything to do, for
    # longer than that interval.
    time.sleep(5.5)
    supervisor = supervisor_pid(host.pid)
    calls = idle_syscalls(host.pid, tmp_path / "strace.txt", seconds=6.0, also=(supervisor,))
    # At most the epoll_wait each was in when strace attached, and still is (the host's with
    # the ready_timeout of slow.0 as its timeout), and strace's lines about attaching.
    waits = [c for c in calls if "epoll_wait" in c]
    assert len(calls) <= 6 and len(waits) <= 2, "idle host made syscalls:\n" + "\n".join(calls)
    assert host.stop() == 0


# 14 ---------------------------------------------------------------------------------------

def test_valgrind_clean(start_host, examples_dir, aerie_plain_bin):
    valgrind = shutil.which("valgrind")
    assert valgrind, "valgrind is not installed"
    host = start_host(f"""
[service:web]
command = {worker_command(examples_dir)}
count = 2
ready = notify
""", binary=aerie_plain_bin, wrapper=[
        valgrind, "--leak-check=full", "--errors-for-leak-kinds=definite",
        "--error-exitcode=99", "--trace-children=no"])
    host.wait_ready("web", 2, timeout=60)
    status = host.status()
    assert status["services"]["web"]["ready"] == 2
    assert host.request({"please": "restart"}, timeout=60) == {"ok": True, "generation": 2}
    assert host.status()["host"]["generation"] == 2
    assert host.stop(timeout=60) == 0
    text = host.log_text()
    assert "ERROR SUMMARY: 0 errors" in text, text


def test_worker_starts_without_inherited_ignored_realtime_signals(aerie_bin, examples_dir, tmp_path):
    """An ignore of signal 32 (glibc's own, which its sigaction can't touch) inherited by the
    host must not reach workers: CI launchers have been seen to leave it set."""
    def ignore_signal_32():
        libc = ctypes.CDLL(None, use_errno=True)
        action = struct.pack("QQQQ", 1, 0, 0, 0)  # SIG_IGN, no flags, no restorer, no mask
        assert libc.syscall(13, 32, ctypes.c_char_p(action), None, 8) == 0  # rt_sigaction

    (tmp_path / "env.ini").write_text(
        f"[service:w]\ncommand = {examples_dir}/worker --print-env\nrestart = never\n")
    host = subprocess.Popen([aerie_bin, "host", "env.ini"], cwd=tmp_path,
                            stderr=subprocess.PIPE, preexec_fn=ignore_signal_32)
    lines = []
    try:
        for raw in host.stderr:
            lines.append(raw.decode())
            if "sigign=" in lines[-1]:
                break
    finally:
        host.terminate()
        host.communicate(timeout=15)
    sigign = [line for line in lines if "sigign=" in line]
    assert sigign and sigign[0].rstrip().endswith("sigign=0000000000000000"), lines
