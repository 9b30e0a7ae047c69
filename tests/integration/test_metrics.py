"""test_metrics: `aerie metrics` on a real process tree, compared field by field with ps.

The tree (one session and process group, killed as a group at the end):

    python3 tree.py                                     root
     |- sh -c "sleep 30 & sleep 30 & wait" "an arg with spaces"
     |   |- sleep 30
     |   '- sleep 30
     |- python3 -c CODE "an arg with spaces" "" "tab<TAB>here"
     |   '- sh -c "sleep 30; :"
     |       '- sleep 30
     |- sleep 30                                        forked by a second thread of the root
     '- [python3] <defunct>                             exited, never reaped
"""
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest

from hostlib import NOBODY, proc_stat, read_cmdline, wait_for

PYTHON = sys.executable
PAGE = os.sysconf("SC_PAGE_SIZE")
WALKS = [pytest.param([], id="children"), pytest.param(["--scan-proc"], id="scan-proc")]
ARG = "an arg with spaces"

TREE = r"""
import os, subprocess, sys, threading, time
ARG = "an arg with spaces"
subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30 & wait", ARG])
subprocess.Popen([sys.executable, "-c",
                  "import os, time; os.spawnvp(os.P_NOWAIT, 'sh', ['sh', '-c', 'sleep 30; :']);"
                  " time.sleep(30)",
                  ARG, "", "tab\there"])
# A child hangs off the thread that forked it: the thread stays alive so that it remains there.
threading.Thread(target=lambda: (subprocess.Popen(["sleep", "30"]), time.sleep(30)),
                 daemon=True).start()
if os.fork() == 0:
    os._exit(0)  # a zombie: the root never waits for it
time.sleep(30)
"""

# Keeps a root busy with children that live a few milliseconds: Popen'd sleeps, and forks that
# exit at once and stay zombies until the next reaping round.
CHURN = r"""
import os, random, subprocess, sys, time
print("started", flush=True)
children = []
deadline = time.monotonic() + 30
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
"""


def proc_tree(root):
    """{pid: depth} for root and its descendants, from every /proc/PID/stat (not aerie's code)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(entry)
            if stat:
                children.setdefault(int(stat[1]), []).append(int(entry))
    depths = {}
    stack = [(root, 0)] if proc_stat(root) else []
    while stack:
        pid, depth = stack.pop()
        depths[pid] = depth
        stack.extend((child, depth + 1) for child in children.get(pid, []))
    return depths


def tree_settled(root, count):
    """The tree once it has count processes and every child has exec'd (or is a zombie)."""
    depths = proc_tree(root)
    if len(depths) != count:
        return None
    for pid in depths:
        stat = proc_stat(pid)
        if stat is None:
            return None
        if pid != root and stat[0] != "Z" and read_cmdline(pid) == read_cmdline(stat[1]):
            return None  # forked, not exec'd yet
    return depths


def ps(pids, user=None):
    """{pid: dict} from ps -ww for the given pids."""
    command = ["ps", "-ww", "-o", "pid=,ppid=,pgid=,vsz=,rss=,etimes=,times=,args=",
               "-p", ",".join(str(pid) for pid in pids)]
    out = subprocess.run((user or []) + command, capture_output=True, text=True, check=True).stdout
    result = {}
    for line in out.splitlines():
        pid, ppid, pgid, vsz, rss, etimes, times, args = line.split(None, 7)
        result[int(pid)] = {"ppid": int(ppid), "pgid": int(pgid), "vsz": int(vsz) * 1024,
                            "rss": int(rss) * 1024, "etimes": int(etimes), "times": int(times),
                            "args": args}
    return result


def start_group(script, tmp_path, name):
    path = tmp_path / name
    path.write_text(script)
    return subprocess.Popen([PYTHON, str(path)], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def kill_group(process):
    """SIGKILLs the whole process group and waits until none of it is left."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
    process.stdout.close()

    def group_gone():
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                stat = proc_stat(entry)
                if stat and int(stat[2]) == process.pid and stat[0] != "Z":
                    return False
        return True

    wait_for(group_gone, message=f"process group {process.pid} to exit")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    process = start_group(TREE, tmp_path_factory.mktemp("tree"), "tree.py")
    try:
        depths = wait_for(lambda: tree_settled(process.pid, 9), message="the tree to start")
        yield process.pid, depths, process.args[1]
    finally:
        kill_group(process)


@pytest.fixture
def churn(tmp_path):
    process = start_group(CHURN, tmp_path, "churn.py")
    try:
        assert process.stdout.readline() == "started\n"
        yield process.pid
    finally:
        kill_group(process)


def run_aerie(aerie_bin, *args, user=None):
    return subprocess.run((user or []) + [aerie_bin, "metrics", *args], capture_output=True,
                          text=True, timeout=10)


def capture_json(aerie_bin, root, walk, user=None):
    """aerie's capture and ps' view of the same pids, taken right after it."""
    started = time.monotonic()
    result = run_aerie(aerie_bin, "--pid", str(root), "--json", *walk, user=user)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    captured = json.loads(result.stdout)
    expected = ps(proc_tree(root))
    gap = time.monotonic() - started
    return {int(pid): process for pid, process in captured.items()}, expected, gap


def check_against_ps(captured, expected, gap, expect_memory):
    assert set(captured) == set(expected)
    for pid, process in captured.items():
        want = expected[pid]
        where = f"pid {pid} ({want['args']})"
        assert process["process_id"] == pid
        assert process["parent_process_id"] == want["ppid"], where
        assert process["process_group_id"] == want["pgid"], where
        assert process["command"] == want["args"], where
        assert abs(process["virtual_size"] - want["vsz"]) <= PAGE, where
        assert abs(process["resident_size"] - want["rss"]) <= PAGE, (
            f"{where}: resident_size {process['resident_size']} vs ps rss {want['rss']}")
        # ps truncates both to whole seconds, and ran up to `gap` seconds after aerie.
        assert -1 - 0.05 <= want["etimes"] - process["elapsed_time"] <= gap + 0.05, where
        assert -1 - 0.05 <= want["times"] - process["processor_time"] <= 0.05, where
        assert process["elapsed_time"] >= process["processor_time"] - 0.02, where
        if process["elapsed_time"] > 0:
            # The JSON rounds utilization to 0.01 and elapsed_time to 1 ms.
            utilization = process["processor_time"] / process["elapsed_time"] * 100
            rounding = 0.005 + utilization * 0.0005 / process["elapsed_time"] + 1e-9
            assert process["processor_utilization"] == pytest.approx(utilization, abs=rounding)
        memory = process["memory"]
        if want["args"].endswith("<defunct>"):
            assert memory is None, where
            assert process["virtual_size"] == process["resident_size"] == 0, where
        elif not expect_memory:
            assert memory is None, where
        else:
            assert memory is not None, where
            assert memory["resident_size"] == process["resident_size"], where
            assert abs(memory["resident_size"] - want["rss"]) <= PAGE, where
            assert 0 < memory["proportional_size"] <= memory["resident_size"], where
            assert memory["unique_size"] == (memory["private_clean_size"] +
                                             memory["private_dirty_size"]), where
            assert memory["unique_size"] <= memory["resident_size"], where
            assert memory["minor_faults"] > 0, where


@pytest.mark.parametrize("walk", WALKS)
def test_json_matches_ps(aerie_bin, tree, walk):
    root, depths, script = tree
    captured, expected, gap = capture_json(aerie_bin, root, walk)
    assert set(captured) == set(depths)
    check_against_ps(captured, expected, gap, expect_memory=True)
    # The shapes ps shows for odd argv and zombies, spelled out once.
    commands = sorted(process["command"] for process in captured.values())
    assert commands == sorted([
        f"{PYTHON} {script}",
        f"sh -c sleep 30 & sleep 30 & wait {ARG}",
        "sleep 30", "sleep 30", "sleep 30", "sleep 30",
        f"{PYTHON} -c import os, time; os.spawnvp(os.P_NOWAIT, 'sh', ['sh', '-c', 'sleep 30; :']);"
        f" time.sleep(30) {ARG}  tab?here",
        "sh -c sleep 30; :",
        f"[{pathlib.Path(f'/proc/{root}/comm').read_text().strip()}] <defunct>",
    ])
    assert captured[root]["parent_process_id"] == os.getpid()
    assert {process["process_group_id"] for process in captured.values()} == {root}


@pytest.mark.parametrize("walk", WALKS)
def test_table(aerie_bin, tree, walk):
    root, depths, _ = tree
    result = run_aerie(aerie_bin, "--pid", str(root), *walk)
    assert result.returncode == 0, result.stderr
    expected = ps(depths)
    header, *rows, total = result.stdout.splitlines()
    assert header.split() == ["PID", "PPID", "PGID", "%CPU", "VSZ", "RSS", "PSS", "USS",
                              "TIME", "ELAPSED", "COMMAND"]
    assert len(rows) == len(depths)
    # Columns are right-aligned under their labels (sizes hold a space: "2.92 MiB").
    ends = [match.end() for match in re.finditer(r"\S+", header)]
    column = header.index("COMMAND")
    seen = []
    for row in rows:
        cells = [row[start:end].strip() for start, end in zip([0] + ends[:-2], ends[:-1])]
        pid, ppid, pgid = (int(cell) for cell in cells[:3])
        depth = depths[pid]
        assert ppid == expected[pid]["ppid"] and pgid == root
        # Indented like `ps f`: a child's row comes after its parent's, under it.
        indent = "" if depth == 0 else "    " * (depth - 1) + " \\_ "
        assert row[column:] == indent + expected[pid]["args"], row
        if depth:
            parent = next(p for p in reversed(seen) if depths[p] == depth - 1)
            assert parent == ppid, row
        if expected[pid]["args"].endswith("<defunct>"):
            assert cells[4:8] == ["0 B", "0 B", "-", "-"], row  # no memory for a zombie
        else:
            assert all(re.fullmatch(r"\d+(\.\d+)? [KMG]iB", cell) for cell in cells[4:8]), row
        seen.append(pid)
    assert sorted(seen) == sorted(depths)
    assert rows[0].split()[0] == str(root)
    assert re.fullmatch(r"total: 9 processes, RSS \d+(\.\d+)? [KMG]iB, "
                        r"PSS \d+(\.\d+)? [KMG]iB, USS \d+(\.\d+)? [KMG]iB", total), total


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the capture as nobody")
@pytest.mark.parametrize("walk", WALKS)
def test_unprivileged_capture_has_no_memory(aerie_bin, tree, walk):
    """As nobody over root's processes: smaps_rollup is EACCES, the rest is world-readable."""
    root, depths, _ = tree
    captured, expected, gap = capture_json(aerie_bin, root, walk, user=["setpriv", *NOBODY])
    assert set(captured) == set(depths)
    assert all(process["memory"] is None for process in captured.values())
    # Everything else still agrees with ps, resident_size included (from the kernel's
    # counters, since smaps_rollup can't be read).
    check_against_ps(captured, expected, gap, expect_memory=False)


@pytest.mark.parametrize("walk", WALKS)
def test_capture_while_children_come_and_go(aerie_bin, churn, walk):
    sizes = set()
    for _ in range(30):
        result = run_aerie(aerie_bin, "--pid", str(churn), "--json", *walk)
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        captured = {int(pid): process for pid, process in json.loads(result.stdout).items()}
        assert churn in captured
        for pid, process in captured.items():
            assert process["process_id"] == pid
            if pid != churn:
                assert process["parent_process_id"] == churn, process
                # Between fork and exec a child shows its parent's argv; one that exits
                # between aerie's reads of stat and cmdline shows as [comm] (ps would too).
                assert re.fullmatch(r"\[(python3|sleep)\]( <defunct>)?", process["command"]) \
                    or process["command"].startswith(("sleep 0.0", PYTHON)), process
        sizes.add(len(captured))
    assert max(sizes) > 1, "the churn never showed up in a capture"


def test_missing_pid(aerie_bin):
    pid_max = int(pathlib.Path("/proc/sys/kernel/pid_max").read_text())
    for walk in ([], ["--scan-proc"]):
        result = run_aerie(aerie_bin, "--pid", str(pid_max), *walk)
        assert result.returncode == 1
        assert result.stdout == ""
        assert f"no process {pid_max}" in result.stderr


@pytest.mark.parametrize("args", [["--pid", "abc"], ["--pid", "0"], ["--pid", "-5"],
                                  ["--pid", "12x"], ["--pid", "99999999999"], ["--pid"],
                                  ["--bogus"], ["extra"]])
def test_usage_errors(aerie_bin, args):
    result = run_aerie(aerie_bin, *args)
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert result.stderr != ""
    if args[:1] == ["--pid"] and len(args) == 2:
        assert f"'{args[1]}' is not a process id" in result.stderr


def test_help(aerie_bin):
    result = run_aerie(aerie_bin, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: aerie metrics")
    assert "--scan-proc" in result.stdout
    assert result.stderr == ""
