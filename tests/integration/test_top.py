"""`aerie supervisor top`: the live view driven for real in tmux (new-session -d, send-keys,
capture-pane -p), its one-shot table when stdout is not a terminal, and the metrics field it
shows, processor_utilization_recent (CPU over the time since the previous capture)."""
import os
import re
import shlex
import shutil
import signal
import subprocess
import time

import pytest

from hostlib import (config, cpu_seconds, descendants, read_cmdline, service, wait_for, wait_gone,
                     worker_command)

INTERVAL = 0.5  # seconds between refreshes in these tests


def top_config(examples_dir, *extra):
    """web: 3 workers that say "serving"; clock: 1 worker; then the extra services."""
    return config(service("web", worker_command(examples_dir, "--status", "serving"), count=3,
                          ready="notify"),
                  service("clock", worker_command(examples_dir), ready="notify"), *extra)


@pytest.fixture
def host(start_host, examples_dir):
    running = start_host(top_config(examples_dir))
    running.wait_ready("web", 3)
    running.wait_ready("clock", 1)
    return running


def worker_pids(host):
    status = host.status()
    return {f"{name}.{w['index']}": w["pid"]
            for name, service in status["services"].items() for w in service["workers"]}


class Tmux:
    """One tmux server of its own (-S in the test's directory) running top in one pane."""

    def __init__(self, directory):
        self.socket = str(directory / "tmux.sock")

    def run(self, *args):
        return subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True,
                              text=True, timeout=10, check=True).stdout

    def start(self, command, width=120, height=40):
        # The shell prints a line before and after top: after it quits, the pane must show
        # the shell's screen again, with top's exit code.
        script = f"echo shell before top; {command}; echo top exited $?; sleep 600"
        self.run("new-session", "-d", "-x", str(width), "-y", str(height), script)

    def screen(self):
        return self.run("capture-pane", "-p")

    def lines(self):
        return self.screen().splitlines()

    def keys(self, *keys):
        self.run("send-keys", *keys)

    def flag(self, name):
        return self.run("display-message", "-p", f"#{{{name}}}").strip()

    def wait(self, predicate, timeout=10.0, message="screen"):
        try:
            return wait_for(lambda: predicate(self.screen()), timeout, 0.05, message)
        except AssertionError:
            raise AssertionError(f"timed out waiting for {message}; screen:\n{self.screen()}")

    def top_pid(self):
        shell = int(self.flag("pane_pid"))
        return next((pid for pid in descendants(shell)
                     if b"top" in read_cmdline(pid).split(b"\0")), None)

    def kill(self):
        # top goes first, on its own: a pane closed under a sanitized top makes the
        # terminal's SIGCONT race LeakSanitizer's ptrace stop at exit, which then spins.
        try:
            pid = self.top_pid()
        except subprocess.CalledProcessError:
            pid = None
        if pid:
            os.kill(pid, signal.SIGTERM)
            try:
                wait_gone([pid], 10, reaped=False, what="top")
            except AssertionError:
                os.kill(pid, signal.SIGKILL)
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True,
                       timeout=10)


@pytest.fixture
def tmux(tmp_path):
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed (make check installs it)")
    server = Tmux(tmp_path)
    yield server
    server.kill()


@pytest.fixture
def top_command(aerie_bin, host):
    return (f"{shlex.quote(aerie_bin)} supervisor -s {shlex.quote(str(host.socket))} top "
            f"--interval {INTERVAL}")


def assert_restored(tmux, code=0):
    """top is gone, the terminal is as the shell left it: main screen, cursor shown."""
    tmux.wait(lambda s: f"top exited {code}" in s, message=f"top to exit {code}")
    screen = tmux.screen()
    assert "shell before top" in screen, screen
    assert tmux.flag("alternate_on") == "0"
    assert tmux.flag("cursor_flag") == "1"
    assert tmux.flag("keypad_cursor_flag") == "0"


def test_screen_lists_workers_and_follows_a_restart(host, tmux, top_command):
    pids = worker_pids(host)
    tmux.start(top_command)
    tmux.wait(lambda s: all(re.search(rf"^\s*{pid} {re.escape(label)} +ready ", s, re.M)
                            for label, pid in pids.items()),
              message="every worker's row")
    screen = tmux.screen()
    assert re.search(rf"^aerie top: host {host.pid}, up \S+, generation 1, 4/4 ready", screen,
                     re.M), screen
    assert re.search(r"^\s*PID NAME +STATE +GEN RESTARTS +%CPU +RSS +PSS +USS +UPTIME +COMMAND",
                     screen, re.M), screen
    assert re.search(rf"^\s*{host.pid} host ", screen, re.M), screen
    assert re.search(r"^\s*\d+ supervisor .* \\_ /", screen, re.M), screen
    assert "web: 3/3 ready, generation 1, 0 restarts" in screen

    victim = pids["web.1"]
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    # Within two refreshes (and the 0.1 s restart delay): the new pid, and the exit reported.
    new_pid = tmux.wait(
        lambda s: (m := re.search(r"^\s*(\d+) web\.1 ", s, re.M)) and int(m[1]) != victim
        and int(m[1]), timeout=2 * INTERVAL + 2, message="web.1's new pid")
    assert time.monotonic() - killed < 2 * INTERVAL + 1.0
    assert new_pid == worker_pids(host)["web.1"]
    tmux.wait(lambda s: f"web.1 [{victim}] exited (signal KILL), restarted as {new_pid}"
              in s.splitlines()[-2], timeout=2 * INTERVAL + 1, message="the event line")
    tmux.wait(lambda s: "web: 3/3 ready, generation 1, 1 restart" in s, message="ready again")

    tmux.keys("q")
    assert_restored(tmux)


def test_keys_sort_and_rolling_restart(host, tmux, top_command):
    tmux.start(top_command)
    tmux.wait(lambda s: "sorted by cpu" in s, message="first screen")
    tmux.keys("s")
    tmux.wait(lambda s: "sorted by memory" in s, message="sort by memory")
    tmux.keys("s")
    tmux.wait(lambda s: "sorted by pid" in s, message="sort by pid")
    rows = [int(m[1]) for m in re.finditer(r"^\s*(\d+) web\.\d ", tmux.screen(), re.M)]
    assert rows == sorted(rows) and len(rows) == 3

    tmux.keys("r")
    tmux.wait(lambda s: "(y/n)" in s.splitlines()[-1], message="the confirmation")
    tmux.keys("n")
    tmux.wait(lambda s: "rolling restart cancelled" in s, message="cancelled")
    assert host.status()["host"]["generation"] == 1

    old = set(worker_pids(host).values())
    tmux.keys("r")
    tmux.wait(lambda s: "(y/n)" in s, message="the confirmation")
    tmux.keys("y")
    tmux.wait(lambda s: "rolling restart done: generation 2 is serving" in s, timeout=15,
              message="the restart's answer")
    new = worker_pids(host)
    assert not old & set(new.values())
    tmux.wait(lambda s: ", generation 2, 4/4 ready" in s
              and all(re.search(rf"^\s*{pid} {re.escape(label)} +ready +2 ", s, re.M)
                      for label, pid in new.items()), message="generation 2's rows")
    tmux.wait(lambda s: "web: rolling restart to generation 2 done" in s, message="event")

    # Scrolling keys in a window too small for every row: 3 rows between the header (3
    # lines) and the event and key lines.
    tmux.run("resize-window", "-x", "120", "-y", "8")
    tmux.keys("g")  # any key puts the key help back in place of the restart's outcome
    count = int(tmux.wait(lambda s: (m := re.search(r"rows 1-3 of (\d+)", s)) and m[1],
                          message="a short window"))
    assert count >= 8
    tmux.keys("PageDown")  # a page less one row, for context
    tmux.wait(lambda s: "rows 3-5 of" in s, message="page down")
    tmux.keys(*["Down"] * count)
    tmux.wait(lambda s: f"rows {count - 2}-{count} of {count}" in s, message="the end")
    tmux.keys("PageUp", "Up", "Up", "Up", "Up")
    tmux.wait(lambda s: "rows 1-3 of" in s, message="back at the top")
    tmux.keys("q")
    assert_restored(tmux)


def test_narrow_window(host, tmux, top_command):
    pids = worker_pids(host)
    tmux.start(top_command, width=40, height=15)
    tmux.wait(lambda s: all(re.search(rf"^\s*{pid} {re.escape(label)} ", s, re.M)
                            for label, pid in pids.items()), message="rows at 40 columns")
    lines = tmux.lines()
    assert lines[0].startswith("aerie top: host")
    assert re.match(r"^\s*PID NAME +%CPU +COMMAND", lines[2]), lines
    # Every row is a whole row: a pid, a name and a CPU figure, none wrapped onto the next.
    for line in lines[3:-2]:
        assert len(line) <= 40
        assert re.match(r"^(\s*\d+ \S* +\d+\.\d  .*|\w+: \d+/\d+ ready.*|)$", line), lines
    # Wider again: every column comes back.
    tmux.run("resize-window", "-x", "130", "-y", "30")
    tmux.wait(lambda s: re.search(r"RESTARTS +%CPU +RSS +PSS +USS +UPTIME +COMMAND", s),
              message="the columns after growing")
    tmux.run("resize-window", "-x", "12", "-y", "3")
    time.sleep(2 * INTERVAL)  # a few refreshes at a size where almost nothing fits
    assert tmux.top_pid() is not None
    tmux.run("resize-window", "-x", "80", "-y", "24")
    tmux.keys("q")
    assert_restored(tmux)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_restores_terminal(host, tmux, top_command, signum):
    tmux.start(top_command)
    tmux.wait(lambda s: "web: 3/3 ready" in s, message="first screen")
    assert tmux.flag("alternate_on") == "1"
    os.kill(tmux.top_pid(), signum)
    assert_restored(tmux)


def test_lost_connection_is_shown_and_retried(host, tmux, top_command):
    tmux.start(top_command)
    supervisor = int(tmux.wait(
        lambda s: (m := re.search(r"^\s*(\d+) supervisor ", s, re.M)) and m[1],
        message="the supervisor's row"))
    os.kill(supervisor, signal.SIGKILL)
    tmux.wait(lambda s: "connection lost: the supervisor closed it" in s,
              message="the lost connection")
    # The host starts another supervisor process; top reconnects to it on its own.
    tmux.wait(lambda s: (m := re.search(r"^\s*(\d+) supervisor ", s, re.M))
              and int(m[1]) != supervisor and f"connected to {host.socket}" in s,
              timeout=10, message="the new supervisor")
    tmux.keys("q")
    assert_restored(tmux)


def test_snapshot_when_not_a_terminal(aerie_bin, host):
    pids = worker_pids(host)
    done = subprocess.run([aerie_bin, "supervisor", "-s", str(host.socket), "top"],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"aerie top: host {host.pid}, up ")
    assert lines[0].endswith("generation 1, 4/4 ready")
    assert re.match(r"^CPU \d+\.\d%  RSS .*  PSS .*  USS .*  6 processes  sorted by cpu$",
                    lines[1]), lines[1]
    assert re.match(r"^\s*PID NAME +STATE +GEN RESTARTS +%CPU +RSS +PSS +USS +UPTIME +COMMAND$",
                    lines[2])
    for label, pid in pids.items():
        row = next(line for line in lines if re.match(rf"^\s*{pid} ", line))
        assert re.match(rf"^\s*{pid} {re.escape(label)} +ready +1 +0 +\d+\.\d ", row), row
        assert row.endswith("worker --status serving" if label.startswith("web")
                            else "examples/worker")
    assert "web: 3/3 ready, generation 1, 0 restarts" in lines
    assert "clock: 1/1 ready, generation 1, 0 restarts" in lines


def test_snapshot_errors(aerie_bin, tmp_path):
    done = subprocess.run([aerie_bin, "supervisor", "-s", str(tmp_path / "none.ipc"), "top"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 3
    assert "no socket at" in done.stderr and "is the host running?" in done.stderr
    for args in (["top", "--interval", "0"], ["top", "--interval", "x"], ["top", "--json"],
                 ["status", "--interval", "1"]):
        done = subprocess.run([aerie_bin, "supervisor", "-s", str(tmp_path / "none.ipc"),
                               *args], capture_output=True, text=True, timeout=30)
        assert done.returncode == 2, (args, done.stderr)


def test_processor_utilization_recent(start_host, examples_dir):
    # burst: a second of busy loop, then asleep; busy: a busy loop all the time.
    burst = ('python3 -c "import time; t = time.time(); '
             '[0 for _ in iter(lambda: time.time() - t < 1, False)]; '
             'open(\'burst.done\', \'w\').close(); time.sleep(600)"')
    running = start_host(top_config(examples_dir, service("burst", burst),
                                    service("busy", 'python3 -c "while True: pass"')))
    running.wait_ready("web", 3)
    pid = {name: running.workers(name)[0]["pid"] for name in ("burst", "busy")}

    # This machine may be loaded: what busy gets is compared with what the test itself reads
    # from /proc over (nearly) the same window, not with 100 %.
    wait_for((running.directory / "burst.done").exists, 15, message="the burst to be over")
    running.request({"please": "metrics"})  # the previous capture
    before = (cpu_seconds(pid["busy"]), time.monotonic())
    time.sleep(1.0)  # measuring: the window that processor_utilization_recent covers
    metrics = running.request({"please": "metrics"})
    after = (cpu_seconds(pid["busy"]), time.monotonic())
    for process in metrics.values():
        assert isinstance(process["processor_utilization_recent"], float)
        assert process["processor_utilization_recent"] >= 0
    burst_process, busy_process = (metrics[str(pid["burst"])], metrics[str(pid["busy"])])
    # The burst used CPU over its life but none lately (it sleeps: not one tick).
    assert burst_process["processor_utilization"] > 1, burst_process
    assert burst_process["processor_utilization_recent"] == 0
    measured = (after[0] - before[0]) / (after[1] - before[1]) * 100
    assert abs(busy_process["processor_utilization_recent"] - measured) < 20, \
        (busy_process, measured)
    assert busy_process["processor_utilization_recent"] > 0, busy_process


def test_key_l_shows_the_selected_workers_last_lines(start_host, aerie_bin, tmux):
    """l: a pane of the last lines of the worker in the first row shown, control characters
    shown as '?', stderr marked; scrolling selects another row."""
    host = start_host(config(service(
        "talk", "/bin/sh -c 'echo said hello; echo oops >&2; printf \"esc\\033[2Jx\\n\"; "
        "exec sleep 1000'", ready="none")))
    [pid] = host.wait_ready("talk", 1)
    wait_for(lambda: len(host.request({"please": "logs"})["lines"]) == 3)
    tmux.start(f"{shlex.quote(aerie_bin)} supervisor -s {shlex.quote(str(host.socket))} top "
               f"--interval {INTERVAL}")
    tmux.wait(lambda s: re.search(rf"^\s*{pid} talk\.0 ", s, re.M), message="the worker's row")
    tmux.keys("l")
    tmux.wait(lambda s: "logs (l to hide)" in s or "logs of " in s, message="the pane")
    for _ in range(10):  # down to the worker's row
        if f"logs of talk.0[{pid}]" in tmux.screen():
            break
        tmux.keys("j")
        time.sleep(INTERVAL)
    screen = tmux.wait(lambda s: "said hello" in s and "stderr: oops" in s and "esc?[2Jx" in s
                       and s, message="the worker's lines in the pane")
    assert f"logs of talk.0[{pid}]" in screen
    assert "\x1b" not in screen
    tmux.keys("l")
    tmux.wait(lambda s: "said hello" not in s, message="the pane hidden")
    tmux.keys("q")
    assert_restored(tmux)
