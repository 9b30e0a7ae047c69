"""aerie host against workers that would outlive it: a stop that ends whatever the tree does."""
import os
import signal
import uuid

from hostlib import (config, exists, process_alive, service, supervisor_pid, wait_for,
                     with_environment, worker_command)

# The host's bounds (src/lib/limits.h): orphans get SIGKILL this long after SIGTERM; everything
# left gets SIGKILL this long after the longest stop_timeout, and the host exits at most this
# long after that.
ORPHAN_STOP_TIMEOUT = 5.0
STOP_GRACE = ORPHAN_STOP_TIMEOUT + 1.0
STOP_KILL_WAIT = 5.0
SLACK = 10.0  # a loaded machine: what the bounds above can't promise

# A daemon that reparents late: its first process ignores SIGTERM and keeps a child that ignores
# it as well, so that each SIGKILL to the first one hands the host a new orphan.
DAEMON = """trap "" TERM
sh -c 'trap "" TERM; exec sleep 1000' &
exec sleep 1000
"""

# A worker that ignores SIGTERM and starts such a daemon, in a session of its own (out of the
# worker's process group, where the group's SIGKILL can't reach it), every 100 ms.
FORKING_WORKER = """trap "" TERM
while :; do
    setsid sh "$1" </dev/null >/dev/null 2>&1 &
    sleep 0.1
done
"""


def sleepers(mark):
    """The live `sleep 1000`s that carry mark in their environment."""
    return [pid for pid in with_environment(mark) if process_alive(pid)
            and open(f"/proc/{pid}/cmdline", "rb").read() == b"sleep\x001000\x00"]


def test_stop_ends_a_tree_that_keeps_forking(start_host, tmp_path):
    daemon = tmp_path / "daemon.sh"
    daemon.write_text(DAEMON)
    worker = tmp_path / "worker.sh"
    worker.write_text(FORKING_WORKER)
    mark = f"TRUST_MARK={uuid.uuid4().hex}"
    stop_timeout = 1
    host = start_host(config(service("web", f"sh {worker} {daemon}", ready="none",
                                     stop_timeout=stop_timeout, env=mark)))
    host.wait_log("web.0[")
    wait_for(lambda: len(sleepers(mark)) >= 6, 10, message="three daemons of two processes")
    tree = with_environment(mark)

    # Without a sweep after each reap, the children of the daemons killed by the one SIGKILL
    # sweep came to the host after it and were never signalled: the host waited for ever.
    bound = stop_timeout + STOP_GRACE + STOP_KILL_WAIT + SLACK
    assert host.stop(timeout=bound) == 0
    assert with_environment(mark) == []
    assert [pid for pid in tree if exists(pid)] == []
    assert "all workers stopped" in host.log_text()


def test_stop_ends_when_the_supervisor_process_hangs(start_host, examples_dir):
    stop_timeout = 1
    host = start_host(config(service("web", worker_command(examples_dir), ready="notify",
                                     stop_timeout=stop_timeout)))
    worker, = host.wait_ready("web", 1)
    supervisor = supervisor_pid(host.pid)
    os.kill(supervisor, signal.SIGSTOP)  # the host's SIGTERM stays pending: it never exits

    bound = stop_timeout + STOP_GRACE + STOP_KILL_WAIT + SLACK
    assert host.stop(timeout=bound) == 0
    assert "killing everything left" in host.log_text()
    assert not exists(supervisor) and not exists(worker)
