"""aerie host against workers that would outlive it: a stop that ends whatever the tree does, a
killed host that takes its workers along, file descriptor limits and running out of them."""
import os
import shutil
import signal
import uuid

from hostlib import (Client, config, exists, fd_count, free_port, group_members, limit,
                     process_alive, service, supervisor_pid, wait_for, wait_gone,
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


def test_killed_host_takes_its_workers_along(start_host, examples_dir, tmp_path):
    port = free_port()
    text = config(service("web", worker_command(examples_dir, program="http_worker"), count=2,
                          listen=f"tcp:127.0.0.1:{port}", ready="notify"))
    host = start_host(text)
    workers = host.wait_ready("web", 2)
    supervisor = supervisor_pid(host.pid)
    os.kill(host.pid, signal.SIGKILL)
    host.process.wait(10)

    # Nobody supervises them now: they must not keep serving, nor keep the port.
    try:
        wait_gone([*workers, supervisor], reaped=False, what="the workers of the killed host")
        assert [pid for worker in workers for pid in group_members(worker)] == []
    finally:
        for pid in [*workers, supervisor]:  # what a failure left, out of the next test's way
            if process_alive(pid):
                os.kill(pid, signal.SIGKILL)

    again = start_host(text, directory=tmp_path)
    again.wait_ready("web", 2)
    client = Client(port)
    status, _, body = client.get("/")
    client.close()
    assert status == 200 and body.startswith(b"hello from worker")
    assert again.stop() == 0


def test_nofile_raised_for_the_host_and_restored_for_workers(start_host, examples_dir):
    prlimit = shutil.which("prlimit")
    assert prlimit, "prlimit (util-linux) is needed"
    host = start_host(config(service("web", worker_command(examples_dir), ready="notify")),
                      wrapper=[prlimit, "--nofile=1000:4000"])
    worker, = host.wait_ready("web", 1)
    assert limit(host.pid) == (4000, 4000)  # as systemd raises its own
    assert limit(worker) == (1000, 4000)  # what the host was started with
    assert host.stop() == 0


def test_out_of_fds_at_spawn_is_logged_and_retried(start_host, examples_dir, tmp_path):
    prlimit = shutil.which("prlimit")
    assert prlimit, "prlimit (util-linux) is needed"
    # The worker is handed 8 sockets, which its child moves out of the way before putting them
    # at fd 3…: 8 fds more than the host holds, where the supervisor process needs fewer.
    text = config(service("web", worker_command(examples_dir), ready="notify") +
                  "".join(f"listen = unix:s{i}.sock\n" for i in range(8)))
    probe = start_host(text)
    probe.wait_ready("web", 1)
    used = fd_count(probe.pid)  # with the supervisor process and the worker's output pipe
    assert probe.stop() == 0

    # Room for the worker's output pipe and /dev/null, not for its sockets' moves. The hard
    # limit is as low, so that raising the soft one can't help.
    host = start_host(text, directory=tmp_path, wrapper=[prlimit, f"--nofile={used + 4}"])
    host.wait_log("web.0: cannot start a worker; trying again in 1.0 s: Too many open files",
                  count=2)
    assert host.process.poll() is None
    # No exit status 126 that says nothing (a pid may hold the digits: match the message).
    assert "status 126" not in host.log_text()
    assert host.workers("web")[0]["state"] == "backoff"
    assert host.stop() == 0
