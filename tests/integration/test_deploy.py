"""Deploy safety against the real host: min_uptime gating rolling restarts under HTTP load, a
crash loop that ends in `failed` (status, --check, Prometheus, the log), `done` for a finished
job, kill_mode = main against group, env names the host owns, and what status shows of workers
that do not run, that drain, and of the descendants of workers."""
import json
import os
import re
import signal
import subprocess
import sys
import time

from hostlib import (config, free_port, process_alive, service, wait_for, wait_gone,
                     worker_command)
from test_rolling_restart import Load, http_config, wait_restart_logged


def cli(aerie_bin, socket, *args):
    return subprocess.run([aerie_bin, "supervisor", "-s", str(socket), *args],
                          capture_output=True, text=True, timeout=30)


def prometheus(host):
    """The samples of a Prometheus scrape: {(name, labels): value}."""
    text = host.request({"please": "metrics", "format": "prometheus"})
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            name, _, labels = series.partition("{")
            samples[(name, labels.rstrip("}"))] = float(value)
    return samples


# 1. A deploy whose workers say READY=1 and die 0.3 s later -----------------------------------


def test_ready_then_exit_fails_the_roll_under_load(start_host, examples_dir):
    port = free_port()
    good = http_config(examples_dir, port)
    host = start_host(good)
    old = sorted(host.wait_ready("web", 2))
    # READY=1, then exit 0 0.3 s later without ever accepting: gunicorn's arbiter sending
    # READY=1 before the app's import fails. min_uptime is the default (1 s).
    broken = http_config(examples_dir, port,
                         command=worker_command(examples_dir, "--exit-after", "0.3"))
    with Load(port, keepalive=4, fresh=2, sleepers=2) as load:
        load.wait_warm()
        host.config.write_text(broken)
        host.send_signal(signal.SIGHUP)
        line = wait_restart_logged(host, 1)
        # SIGHUP is a reload: its roll of web failed.
        assert "reload failed" in line and "before it was ready for min_uptime" in line, line
        host.wait_log("generation 1 keeps serving")
        assert host.wait_generation("web", 1, 2) == old
        assert all(process_alive(pid) for pid in old)
        status = host.status()
        # The header shows the generation that serves, not the one that failed.
        assert status["host"]["generation"] == 1, status
        assert status["services"]["web"]["ready"] == 2

        # A plain restart rolls the config that serves (the good one), not the one that failed.
        reply = host.request({"please": "restart"})
        assert reply.get("ok") is True, reply
        generation = reply["generation"]
        new = host.wait_generation("web", generation, 2)
        assert not set(new) & set(old)
        wait_gone(old, reaped=False, what="the old workers")
        wait_for(lambda: any(r.generation == generation for r in load.snapshot()),
                 message=f"a response from generation {generation}")
        assert host.status()["host"]["generation"] == generation
    load.assert_clean("READY=1 then exit during a restart")
    served = {r.generation for r in load.results}
    assert served == {1, generation}, served


def test_min_uptime_zero_lets_early_readiness_through(start_host, examples_dir):
    """The gate is what fails the roll: without it the same workers pass it and then die."""
    host = start_host(config(service("web", worker_command(examples_dir, "--exit-after", "0.3"),
                                     ready="notify", min_uptime=0, restart_delay=5)))
    host.wait_log("ready after")
    host.wait_log("exited with status 0 after")
    wait_for(host.socket.exists, message="the supervisor socket")
    status = host.status()["services"]["web"]
    assert status["workers"][0]["state"] == "backoff", status


# 2. A crash loop, and a job that finished ----------------------------------------------------


def test_crash_loop_reaches_failed(aerie_bin, start_host, examples_dir):
    host = start_host(config(
        service("crash", worker_command(examples_dir, "--exit-after", "0", "--exit-code", "3"),
                restart_delay=0),
        service("web", worker_command(examples_dir), ready="notify")))
    host.wait_ready("web", 1)
    failed = wait_for(lambda: host.workers("crash", "failed"), message="a failed worker")
    assert failed[0]["pid"] is None and failed[0]["last_exit"] == {"code": 3}, failed
    host.wait_log("crash.0: failed: 5 starts within 10 s ended before min_uptime")
    started = [line for line in host.log() if re.search(r"crash\.0\[\d+\] started", line)]
    assert len(started) == 5, started  # then nothing more
    service_status = host.status()["services"]["crash"]
    assert (service_status["failed"], service_status["failures"]) == (1, 5), service_status

    check = cli(aerie_bin, host.socket, "status", "--check")
    assert check.returncode == 1, check
    assert check.stderr == "aerie supervisor: not ready: crash 0/1 (failed) ready\n", check

    table = cli(aerie_bin, host.socket, "status")
    assert table.returncode == 0, table
    row = next(line for line in table.stdout.splitlines() if line.startswith("crash.0"))
    assert re.match(r"crash\.0\s+-\s+1\s+failed\s", row), row
    assert "last exit: status 3" in row and "start limit reached" in row, row
    assert "crash: 0/1 ready, 4 restarts, 0 health kills, 0 memory replacements, 1 FAILED" \
        in table.stdout, table.stdout

    samples = prometheus(host)
    assert samples[("aerie_service_failed_workers", 'service="crash"')] == 1
    assert samples[("aerie_service_failed_workers", 'service="web"')] == 0
    assert samples[("aerie_service_failures_total", 'service="crash"')] == 5
    assert samples[("aerie_worker_restarts_total", 'service="crash"')] == 4
    assert not [k for k in samples if k[0] == "aerie_worker_restarts_total" and "pid=" in k[1]]


def test_restart_never_exit_0_is_done(aerie_bin, start_host, examples_dir):
    host = start_host(config(
        service("job", worker_command(examples_dir, "--exit-after", "0"), restart="never"),
        service("web", worker_command(examples_dir), ready="notify")))
    host.wait_ready("web", 1)
    done = wait_for(lambda: host.workers("job", "done"), message="a done worker")
    assert done[0]["pid"] is None and done[0]["last_exit"] == {"code": 0}, done
    assert host.status()["services"]["job"]["done"] == 1
    check = cli(aerie_bin, host.socket, "status", "--check")
    assert (check.returncode, check.stdout) == (0, "ready: job 1/1, web 1/1\n"), check


def test_restart_never_failing_job_fails_the_check(aerie_bin, start_host, examples_dir):
    host = start_host(config(service("job", worker_command(examples_dir, "--exit-after", "0",
                                                           "--exit-code", "1"),
                                     restart="never")))
    wait_for(host.socket.exists, message="the supervisor socket")
    wait_for(lambda: host.workers("job", "exited"), message="an exited worker")
    check = cli(aerie_bin, host.socket, "status", "--check")
    assert check.returncode == 1, check


# 3. kill_mode ---------------------------------------------------------------------------------

TREE = r"""
import os, signal, sys, time
log = sys.argv[1]
def note(text):
    with open(log, "a") as f:
        f.write(f"{text} {os.getpid()}\n")
if os.fork() == 0:
    signal.signal(signal.SIGTERM, lambda *a: (note("child got TERM"), os._exit(0)))
    note("child up")
    while True:
        time.sleep(1)
signal.signal(signal.SIGTERM, lambda *a: (note("main got TERM"), time.sleep(0.5), os._exit(0)))
while True:
    time.sleep(1)
"""


def run_tree(start_host, tmp_path, kill_mode):
    script = tmp_path / "tree.py"
    script.write_text(TREE)
    log = tmp_path / "tree.log"
    host = start_host(config(service("tree", f"{sys.executable} {script} {log}",
                                     kill_mode=kill_mode, min_uptime=0.2)))
    wait_for(lambda: log.exists() and "child up" in log.read_text(), message="the child")
    first = host.wait_ready("tree", 1)
    reply = host.request({"please": "restart"})
    assert reply.get("ok") is True, reply
    wait_gone(first, reaped=False, what="the old main process")
    wait_for(lambda: log.read_text().count("child up") == 2, message="the new child")
    old_child = int(log.read_text().split("child up ")[1].split()[0])
    wait_gone([old_child], reaped=False, what="the old child")
    return host, log.read_text(), first[0], old_child


def test_kill_mode_group_signals_the_child(start_host, tmp_path):
    host, text, main, child = run_tree(start_host, tmp_path, "group")
    assert f"main got TERM {main}" in text and f"child got TERM {child}" in text, text


def test_kill_mode_main_signals_only_the_main_process(start_host, tmp_path):
    host, text, main, child = run_tree(start_host, tmp_path, "main")
    assert f"main got TERM {main}" in text, text
    assert f"child got TERM {child}" not in text, text  # SIGKILL after main's exit, no TERM


# 4. env names the host sets -------------------------------------------------------------------


def test_env_cannot_set_what_the_host_sets(aerie_bin, tmp_path, examples_dir):
    for name in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "AERIE_WORKER", "WATCHDOG_USEC"):
        (tmp_path / "aerie.ini").write_text(config(service(
            "web", worker_command(examples_dir), ready="notify", env=f"{name}=x")))
        done = subprocess.run([aerie_bin, "host", "aerie.ini"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 2, done
        assert done.stderr.startswith(f"aerie: aerie.ini:4: env cannot set {name} in [service:web]"), \
            done.stderr


def test_env_may_set_other_names(start_host, examples_dir):
    host = start_host(config(service("web", worker_command(examples_dir, "--print-env",
                                                           "--env-key", "NGINX"),
                                     env="NGINX=3;")))
    host.wait_ready("web", 1)
    host.wait_log("NGINX=3;")


# 5. Status rows -------------------------------------------------------------------------------


def test_backoff_row_shows_last_exit_and_next_retry(aerie_bin, start_host, examples_dir):
    host = start_host(config(service("web", worker_command(examples_dir, "--exit-after", "0",
                                                           "--exit-code", "4"),
                                     ready="notify", restart_delay=20, restart_delay_max=20)))
    host.wait_log("restarting in")
    wait_for(host.socket.exists, message="the supervisor socket")
    worker = host.workers("web")[0]
    assert worker["state"] == "backoff" and worker["pid"] is None, worker
    assert worker["last_exit"] == {"code": 4} and "status" not in worker, worker
    assert worker["retry_at"] > time.time() + 5, worker
    table = cli(aerie_bin, host.socket, "status")
    row = next(line for line in table.stdout.splitlines() if line.startswith("web.0"))
    assert re.match(r"web\.0\s+-\s+1\s+backoff\s", row), row
    assert re.search(r"last exit: status 4, retry in \d+", row), row


def test_serving_workers_listed_before_draining_ones(aerie_bin, start_host, examples_dir):
    host = start_host(config(service("web", worker_command(examples_dir, "--stop-delay", "3"),
                                     ready="notify", count=2, min_uptime=0.1)))
    old = host.wait_ready("web", 2)
    reply = host.request({"please": "restart"})
    assert reply.get("ok") is True, reply
    workers = host.workers("web")
    states = [w["state"] for w in workers]
    assert states == ["ready", "ready", "stopping", "stopping"], workers
    assert sorted(w["pid"] for w in workers[2:]) == sorted(old)
    table = cli(aerie_bin, host.socket, "status")
    header = table.stdout.splitlines()[1].split()
    assert header[:8] == ["WORKER", "PID", "GEN", "STATE", "RESTARTS", "HKILLS", "MEMREP",
                          "UPTIME"], header


def test_json_floats_have_at_most_six_decimals(aerie_bin, start_host, examples_dir):
    host = start_host(config(service("web", worker_command(examples_dir), ready="notify")))
    host.wait_ready("web", 1)
    for args in (("status", "--json"), ("metrics", "--json")):
        done = cli(aerie_bin, host.socket, *args)
        assert done.returncode == 0, done
        json.loads(done.stdout)
        numbers = re.findall(r"(?<![\w\".])-?\d+\.(\d+)(?:[eE][-+]?\d+)?(?=[,\s\]}])",
                             done.stdout)
        assert numbers, done.stdout[:500]
        assert all(len(fraction) <= 6 for fraction in numbers), \
            [n for n in numbers if len(n) > 6]


GRANDCHILDREN = r"""
import os, time
if os.fork() == 0:
    if os.fork() == 0:
        while True:
            time.sleep(1)
    while True:
        time.sleep(1)
while True:
    time.sleep(1)
"""


def test_prometheus_labels_every_descendant_with_its_worker(start_host, tmp_path):
    script = tmp_path / "tree.py"
    script.write_text(GRANDCHILDREN)
    host = start_host(config(service("tree", f"{sys.executable} {script}", count=2)))
    pids = host.wait_ready("tree", 2)
    index = {w["pid"]: w["index"] for w in host.workers("tree")}

    def tree_of(pid):
        found, todo = [], [pid]
        while todo:
            parent = todo.pop()
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        with open(f"/proc/{entry}/stat") as f:
                            ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                    except OSError:
                        continue
                    if ppid == parent:
                        found.append(int(entry))
                        todo.append(int(entry))
        return found

    below = {pid: wait_for(lambda: len(tree_of(pid)) == 2 and tree_of(pid),
                           message="a child and a grandchild") for pid in pids}
    samples = prometheus(host)
    for worker, descendants in below.items():
        for pid in descendants:
            series = [k[1] for k in samples if k[0] == "aerie_process_resident_bytes"
                      and f'pid="{pid}"' in k[1]]
            assert series == [f'pid="{pid}",role="descendant",service="tree",'
                              f'worker="{index[worker]}"'], (pid, series)
