"""The supervisor process's metrics reader (src/metrics/metrics_pool.c, metrics_cache.c): its
capture threads and the /proc fds it keeps between requests, which must give the values of a
fresh capture (ps's) whatever exited, exec'd or took a reused pid meanwhile, and which must be
gone, threads and fds, once nobody asks for metrics."""
import os
import re
import signal
import subprocess
import sys

from hostlib import config, descendants, read_cmdline, service, supervisor_pid, wait_for, \
    wait_gone, worker_command

IDLE_SECONDS = 30.0  # METRICS_IDLE_SECONDS
MAX_THREADS = 8  # METRICS_MAX_THREADS
PYTHON = sys.executable


def proc_fds(pid):
    """{fd: target} of pid's fds that point into /proc."""
    result = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            continue
        if target.startswith("/proc/"):
            result[int(fd)] = target
    return result


def kept_pids(pid):
    """The pids whose /proc files pid keeps open."""
    return {int(m.group(1)) for target in proc_fds(pid).values()
            if (m := re.match(r"/proc/(\d+)/", target))}


def threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def expected_threads(pid):
    return min(len(os.sched_getaffinity(pid)), MAX_THREADS)


def ps_fields(pids):
    """{pid: (ppid, pgid, vsz KiB, args)} from ps."""
    out = subprocess.run(["ps", "-ww", "-o", "pid=,ppid=,pgid=,vsz=,args=", "-p",
                          ",".join(map(str, pids))], capture_output=True, text=True).stdout
    result = {}
    for line in out.splitlines():
        pid, ppid, pgid, vsz, args = line.split(None, 4)
        result[int(pid)] = (int(ppid), int(pgid), int(vsz), args)
    return result


def matches_ps(metrics):
    """The reply's tree against ps: the same processes, parents, groups, sizes, commands."""
    expected = ps_fields(int(pid) for pid in metrics)
    captured = {int(pid): (p["parent_process_id"], p["process_group_id"],
                           p["virtual_size"] // 1024, p["command"])
                for pid, p in metrics.items()}
    # vsz moves in a process that maps memory (the host's log, the supervisor's reply):
    # compare it for the workers only, which sleep.
    return expected.keys() == captured.keys() and all(
        captured[pid][:2] == expected[pid][:2] and captured[pid][3] == expected[pid][3]
        for pid in captured)


def test_warm_requests_keep_fds_of_the_tree_only_and_idle_lets_go(start_host, examples_dir):
    command = worker_command(examples_dir, "--status", "serving")
    host = start_host(config(service("web", command, count=3, ready="notify")))
    workers = host.wait_ready("web", 3)
    supervisor = supervisor_pid(host.pid)
    # Nobody has asked: no capture thread, no /proc fd.
    assert threads(supervisor) == 1
    assert proc_fds(supervisor) == {}

    first = host.request({"please": "metrics"})
    tree = {host.pid, *descendants(host.pid)}
    assert {int(pid) for pid in first} == tree
    assert threads(supervisor) == expected_threads(supervisor)
    # stat and smaps_rollup of every process of the tree, and the children list of its
    # single-threaded ones; nothing else.
    assert kept_pids(supervisor) == tree
    kept = sorted(proc_fds(supervisor).values())
    expected = [f"/proc/{pid}/{name}" for pid in tree for name in ("stat", "smaps_rollup")]
    expected += [f"/proc/{pid}/task/{pid}/children" for pid in tree if threads(pid) == 1]
    assert kept == sorted(expected)

    # Warm: the same fds, the same tree, the values of ps.
    fds = proc_fds(supervisor)
    second = host.request({"please": "metrics"})
    assert proc_fds(supervisor) == fds
    assert matches_ps(second)
    for pid in workers:
        assert second[str(pid)]["command"] == command
        assert second[str(pid)]["memory"]["resident_size"] > 0

    # A worker gone: its successor is read afresh and the gone one's fds are closed.
    victim = workers[0]
    os.kill(victim, signal.SIGKILL)
    wait_gone([victim])
    successors = wait_for(lambda: (lambda w: w if len(w) == 3 and victim not in w else None)(
        host.wait_ready("web", 3)), timeout=20, message="a successor")
    third = host.request({"please": "metrics"})
    assert str(victim) not in third
    assert {int(pid) for pid in third} == {host.pid, *descendants(host.pid)}
    assert victim not in kept_pids(supervisor)
    assert kept_pids(supervisor) == {int(pid) for pid in third}
    assert matches_ps(third)
    for pid in successors:
        assert third[str(pid)]["command"] == command

    # Nobody asks any more: the threads end and every fd closes (the timer goes with them).
    wait_for(lambda: threads(supervisor) == 1 and proc_fds(supervisor) == {},
             timeout=IDLE_SECONDS + 15, interval=0.5, message="the reader to go idle")
    # And it starts again on the next request, with the same answer as ps.
    assert matches_ps(host.request({"please": "metrics"}))
    assert threads(supervisor) == expected_threads(supervisor)


def test_an_exec_under_a_kept_pid_shows_the_new_program(start_host, tmp_path):
    """An exec keeps the pid and the start time: what was kept (cmdline, smaps_rollup of the
    old memory) must not be shown for the new program."""
    trigger = tmp_path / "exec-now"
    script = (f"while [ ! -e {trigger} ]; do sleep 0.05; done; "
              f"exec {PYTHON} -c 'import time; time.sleep(300)' after-exec")
    host = start_host(config(service("swap", f"sh -c \"{script}\"", count=1)))
    worker = host.wait_ready("swap", 1)[0]
    wait_for(lambda: read_cmdline(worker).startswith(b"sh"), message="sh running")
    before = host.request({"please": "metrics"})[str(worker)]
    assert before["command"].startswith("sh -c ")
    trigger.touch()
    wait_for(lambda: read_cmdline(worker).startswith(PYTHON.encode()), message="the exec")
    after = host.request({"please": "metrics"})
    process = after[str(worker)]
    assert process["command"] == f"{PYTHON} -c import time; time.sleep(300) after-exec"
    assert matches_ps(after)
    # The new program's memory, not sh's: python maps far more than sh.
    assert process["memory"]["resident_size"] > before["memory"]["resident_size"]


RETITLE = r"""
import pathlib, sys, time
trigger = pathlib.Path(sys.argv[1])
while not trigger.exists():
    time.sleep(0.02)
# What setproctitle does on Linux: the argv area rewritten in place (here through
# /proc/self/mem), which changes neither the pid, the start time, the program nor comm.
fields = pathlib.Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end
with open("/proc/self/mem", "r+b", buffering=0) as mem:
    mem.seek(start)
    mem.write(b"retitled worker".ljust(end - start, b"\0"))
time.sleep(300)
"""


def test_a_rewritten_argv_shows_within_the_cmdline_max_age(start_host, tmp_path):
    """A command kept between captures is read again once METRICS_CMDLINE_MAX_AGE (1 s) old:
    a worker that retitles itself after the first request shows its new title, as ps does."""
    script = tmp_path / "retitle.py"
    script.write_text(RETITLE)
    trigger = tmp_path / "retitle-now"
    host = start_host(config(service("titled", f"{PYTHON} {script} {trigger}", count=1)))
    worker = host.wait_ready("titled", 1)[0]
    before = host.request({"please": "metrics"})[str(worker)]
    assert before["command"] == f"{PYTHON} {script} {trigger}"
    trigger.touch()
    wait_for(lambda: read_cmdline(worker).startswith(b"retitled"), message="the new title")
    wait_for(lambda: host.request({"please": "metrics"})[str(worker)]["command"].startswith(
        "retitled worker"), timeout=5, message="the new title in metrics")
    assert matches_ps(host.request({"please": "metrics"}))


CHURN = r"""
import os, pathlib, random, subprocess, sys, time
children = []
deadline = time.monotonic() + float(sys.argv[1])
while time.monotonic() < deadline:
    children.append(subprocess.Popen(["sleep", "0.0%d" % random.randint(1, 5)]))
    if os.fork() == 0:
        os._exit(0)
    children = [c for c in children if c.poll() is None]
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass
    time.sleep(0.002)
for c in children:
    c.wait()
try:
    while os.waitpid(-1, 0)[0] > 0:
        pass
except ChildProcessError:
    pass
pathlib.Path(sys.argv[2]).touch()
time.sleep(300)
"""


def test_requests_while_processes_come_and_go(start_host, tmp_path):
    """Children that live milliseconds (their pids soon reused by others), zombies, forks
    not yet exec'd: every reply is a consistent tree, and once it settles, ps's values."""
    script = tmp_path / "churn.py"
    script.write_text(CHURN)
    done = tmp_path / "done"
    command = f"{PYTHON} {script} 4 {done}"
    host = start_host(config(service("churn", command, count=1)))
    root = host.wait_ready("churn", 1)[0]
    sizes = []
    while not done.exists():
        metrics = host.request({"please": "metrics"})
        for pid, process in metrics.items():
            assert process["process_id"] == int(pid)
            parent = process["parent_process_id"]
            assert int(pid) == host.pid or str(parent) in metrics, process
            if parent == root:
                assert re.fullmatch(r"\[(python3?[.\d]*|sleep)\]( <defunct>)?",
                                    process["command"]) \
                    or process["command"].startswith(("sleep 0.0", PYTHON)), process
        # The churn's own line stays its own; never a child's (a reused pid's).
        assert metrics[str(root)]["command"] == command
        sizes.append(len(metrics))
    print(f"{len(sizes)} replies during the churn, of {min(sizes)} to {max(sizes)} processes")
    assert max(sizes) > 3, "the churn never showed up in a reply"
    # Settled (every child reaped): the reply is ps's, nothing stale kept, and the fds kept
    # are those of the tree left.
    assert descendants(root) == []
    metrics = host.request({"please": "metrics"})
    assert matches_ps(metrics)
    assert kept_pids(supervisor_pid(host.pid)) == {int(pid) for pid in metrics}
