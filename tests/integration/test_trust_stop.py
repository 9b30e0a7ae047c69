"""aerie host against workers that would outlive it: a stop that ends whatever the tree does, a
killed host that takes its workers along (and what they started: the guard process), file
descriptor limits and running out of them."""
import os
import shlex
import shutil
import signal
import socket
import uuid

from hostlib import (Client, config, descendants, exists, fd_count, free_port, group_members,
                     limit, process_alive, process_group, service, session_members,
                     supervisor_pid, wait_for, wait_gone, with_environment, worker_command)

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
    host.wait_log("web.0: cannot start a worker: passing the listening sockets failed before "
                  "exec; trying again in 1.0 s: Too many open files", count=2)
    assert host.process.poll() is None
    # No exit status 126 that says nothing (a pid may hold the digits: match the message).
    assert "status 126" not in host.log_text()
    assert host.workers("web")[0]["state"] == "backoff"
    assert host.stop() == 0


# The guard process --------------------------------------------------------------------------


def pool_service(examples_dir, port, mark, stubborn=False, **keys):
    """A server pool as nginx runs one: the worker's child shares its listening socket (fd 3)
    and serves beside it, here a `sleep 1000` carrying mark. Stubborn: both ignore SIGTERM."""
    worker = worker_command(examples_dir, *(["--ignore-stop"] if stubborn else []))
    command = ('trap "" TERM; ' if stubborn else "") + f"sleep 1000 & exec {worker}"
    return service("web", f"sh -c {shlex.quote(command)}", listen=f"tcp:127.0.0.1:{port}",
                   ready="notify", env=mark, **keys)


def port_free(port):
    """True if nothing listens on 127.0.0.1:port (a bind with SO_REUSEADDR fails only then)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def command_name(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().rstrip("\n")
    except OSError:
        return None


def guard_of(host):
    """The host's guard process: in the host's session (Host starts one), not in its tree."""
    def find():
        tree = {host.pid, *descendants(host.pid)}
        found = [pid for pid in session_members(host.pid)
                 if pid not in tree and command_name(pid) == "aerie-guard"]
        return found[0] if len(found) == 1 else None
    return wait_for(find, 5, message="the host's guard process")


def start_pool(start_host, examples_dir, **keys):
    """A host running pool_service; returns (host, port, mark, worker, its child)."""
    port = free_port()
    mark = f"TRUST_MARK={uuid.uuid4().hex}"
    host = start_host(config(pool_service(examples_dir, port, mark, **keys)))
    worker, = host.wait_ready("web", 1)
    child, = wait_for(lambda: sleepers(mark), message="the worker's child")
    assert os.readlink(f"/proc/{child}/fd/3").startswith("socket:")  # it holds the port
    return host, port, mark, worker, child


def kill_host_and_check(host, port, mark, worker, child):
    """kill -9 of the host: the worker, its child and the guard go (nothing is left of the
    host's session), and the port is free."""
    os.kill(host.pid, signal.SIGKILL)
    host.process.wait(10)
    try:
        # PR_SET_PDEATHSIG alone killed the worker; its child went to init and kept serving.
        wait_gone([worker, child], reaped=False, what="the worker and its child")
        assert group_members(worker) == []
        assert port_free(port)
        wait_for(lambda: session_members(host.pid) == [], 5,
                 message="nothing left of the host's session, the guard included")
    finally:
        for pid in [worker, *sleepers(mark)]:  # what a failure left, out of the next test's way
            if process_alive(pid):
                os.kill(pid, signal.SIGKILL)
    host.wait_log("died without stopping its workers: killed")


def test_killed_host_takes_what_its_workers_started_along(start_host, examples_dir):
    host, port, mark, worker, child = start_pool(start_host, examples_dir)
    kill_host_and_check(host, port, mark, worker, child)


def test_guard_outlives_ctrl_c_and_operators_signals(start_host, examples_dir):
    # A stop under way (the worker and its child ignore SIGTERM for a minute), started by a
    # terminal's Ctrl-C (SIGINT to the host's process group); meanwhile the guard gets what an
    # operator or a service manager sends to every process (systemd's KillMode=control-group).
    # It must still be there to act when the host is killed.
    host, port, mark, worker, child = start_pool(start_host, examples_dir, stubborn=True,
                                                 stop_timeout=60)
    guard = guard_of(host)
    os.killpg(host.pid, signal.SIGINT)  # Host runs it in a session and group of its own
    host.wait_log("received SIGINT: stopping gracefully")
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                   signal.SIGUSR1, signal.SIGTSTP, signal.SIGPIPE):
        os.kill(guard, signum)
    os.killpg(process_group(guard), signal.SIGTERM)
    assert process_alive(child)
    kill_host_and_check(host, port, mark, worker, child)


def test_guard_holds_only_its_pipe_and_goes_at_a_clean_stop(start_host, examples_dir):
    host, port, mark, worker, child = start_pool(start_host, examples_dir)
    guard = guard_of(host)
    fds = {fd: os.readlink(f"/proc/{guard}/fd/{fd}") for fd in os.listdir(f"/proc/{guard}/fd")}
    # Its pipe, and stderr (a pipe to this test) for its one line: no listening socket, no
    # file of the host's.
    assert len(fds) <= 2 and all(target.startswith("pipe:") for target in fds.values()), fds
    assert process_group(guard) != process_group(host.pid)
    assert host.stop() == 0
    wait_gone([guard, worker, child], reaped=False, what="the guard and the workers")
    assert session_members(host.pid) == []
    assert "died without stopping" not in host.log_text()


def test_ctrl_c_stops_cleanly_and_leaves_nothing(start_host, examples_dir):
    host, port, mark, worker, child = start_pool(start_host, examples_dir)
    guard = guard_of(host)
    os.killpg(host.pid, signal.SIGINT)
    assert host.process.wait(15) == 0
    wait_gone([guard, worker, child], reaped=False, what="the guard and the workers")
    assert session_members(host.pid) == []
    assert port_free(port)
    text = host.log_text()
    assert "all workers stopped" in text and "died without stopping" not in text


def test_guard_killed_early_is_logged_and_the_host_goes_on(start_host, examples_dir):
    host, port, mark, worker, child = start_pool(start_host, examples_dir)
    guard = guard_of(host)
    os.kill(guard, signal.SIGKILL)
    host.wait_log("the guard process is gone")
    assert host.wait_ready("web", 1) == [worker]
    assert host.stop() == 0
    assert not process_alive(child)
