"""The files a root host makes by path (its control socket, unix listen sockets, its log) cannot
be turned against another file by a user who can write where they are, and claiming a socket
path never hangs. The attacker is a real throwaway user (useradd -M) acting through setpriv."""
import os
import pathlib
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import uuid

import pytest

from hostlib import children, config, proc_stat, read_cmdline, service, supervisor_pid, \
    wait_for, worker_command

BIG_GID = 4294967294  # above INT_MAX: (gid_t)-2, the largest gid that is not "none"


def needs_root():
    if os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("useradd"):
        pytest.skip("needs root, setpriv and useradd: the attacker is a real user")


@pytest.fixture
def attacker(accounts):
    """A throwaway user (and its group), removed afterwards: (uid, gid)."""
    needs_root()
    user = accounts.user(own_group=True)
    return user.pw_uid, user.pw_gid


def as_user(ids, code, *args):
    """Runs Python code as the user ids (uid, gid) with args; returns its stdout."""
    uid, gid = ids
    result = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
                             sys.executable, "-c", code, *map(str, args)],
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def attacker_dir(attacker):
    """A directory the attacker owns (the config and the sockets go there)."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="aerie-atk-"))
    os.chown(path, *attacker)
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def shared_dir():
    """shared_dir(mode) → a root-owned directory in /tmp with that mode (0o1777: like /tmp)."""
    made = []

    def make(mode):
        path = pathlib.Path(tempfile.mkdtemp(prefix="aerie-shared-", dir="/tmp"))
        os.chmod(path, mode)
        made.append(path)
        return path

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


def victim_file(tmp_path):
    """A root-only file that nobody but root may touch; returns (path, its stat)."""
    victim = tmp_path / "victim"
    victim.write_text("root's own\n")
    os.chmod(victim, 0o600)
    os.chown(victim, 0, 0)
    return victim, os.stat(victim)


def assert_untouched(victim, before):
    after = os.stat(victim)
    assert (stat.S_IMODE(after.st_mode), after.st_uid, after.st_gid, after.st_size) == \
        (stat.S_IMODE(before.st_mode), before.st_uid, before.st_gid, before.st_size)
    assert victim.read_text() == "root's own\n"


def worker_config(examples_dir, *services, **host):
    return config(service("web", worker_command(examples_dir), ready="notify"), *services,
                  **host)


# The control socket and unix listen sockets ------------------------------------------------

SWAP_FOR_LINK = r"""
import os, stat, sys
path, target = sys.argv[1:]
try:
    if stat.S_ISSOCK(os.lstat(path).st_mode):
        os.symlink(target, path + ".link")
        os.rename(path + ".link", path)  # atomic: the socket's name is now a link
        print("swapped")
except FileNotFoundError:
    pass
"""


def test_control_socket_mode_and_group_never_reach_another_file(
        attacker, attacker_dir, start_host, aerie_plain_bin, examples_dir, tmp_path):
    """The host stops (strace injects SIGSTOP) after each bind; at each stop, and once the
    host is up, the attacker swaps a link to a root-only file in for the socket. Whatever the
    host does next by name must not chmod or chown that file."""
    if not shutil.which("strace"):
        pytest.skip("needs strace to stop the host after bind")
    victim, before = victim_file(tmp_path)
    trace = tmp_path / "bind.trace"
    socket_path = attacker_dir / "supervisor.ipc"
    host = start_host(worker_config(examples_dir, socket_mode="0666",
                                    socket_group=attacker[1]),
                      directory=attacker_dir, binary=aerie_plain_bin,  # LSan can't run traced
                      wrapper=("strace", "-o", str(trace), "-e", "trace=bind",
                               "-e", "inject=bind:signal=SIGSTOP"))
    real = wait_for(lambda: (children(host.pid) or [None])[0], message="strace's child")

    def stops():
        return trace.read_text().count("stopped by SIGSTOP") if trace.exists() else 0

    handled, swaps = 0, 0
    while "started: listening on" not in host.log_text():
        wait_for(lambda: stops() > handled and (proc_stat(real) or ["t"])[0] in "tT"
                 or "started: listening on" in host.log_text() or host.process.poll() is not None,
                 message="the host stopped after a bind, or up")
        assert host.process.poll() is None, host.log_text()
        if stops() > handled:
            handled = stops()
            swaps += "swapped" in as_user(attacker, SWAP_FOR_LINK, socket_path, victim)
            os.kill(real, signal.SIGCONT)
    swaps += "swapped" in as_user(attacker, SWAP_FOR_LINK, socket_path, victim)
    assert swaps >= 1
    assert_untouched(victim, before)
    os.kill(real, signal.SIGTERM)
    assert host.process.wait(20) == 0, host.log_text()
    assert_untouched(victim, before)
    assert socket_path.is_symlink()  # the attacker's link: not the host's to remove
    assert "is no longer the socket the host made: left alone" in host.log_text()


def test_sockets_are_removed_only_where_they_were_made(
        attacker, attacker_dir, start_host, examples_dir, tmp_path):
    """Once the host is up, the attacker replaces the directory the sockets are in with a link
    to a root-only directory holding files of the same names: the host's exit removes neither."""
    sub = attacker_dir / "sub"
    sub.mkdir()
    os.chown(sub, *attacker)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    precious_socket = elsewhere / "supervisor.ipc"
    with socket.socket(socket.AF_UNIX) as other:
        other.bind(str(precious_socket))  # another program's socket file
    (elsewhere / "web.sock").write_text("precious\n")
    host = start_host(config(service("web", worker_command(examples_dir), ready="notify",
                                     listen="unix:sub/web.sock"),
                             supervisor="sub/supervisor.ipc"), directory=attacker_dir)
    host.socket = sub / "supervisor.ipc"
    host.wait_ready("web", 1)
    assert stat.S_ISSOCK(os.lstat(sub / "web.sock").st_mode)
    as_user(attacker, "import os, sys; d, e = sys.argv[1:]; os.rename(d + '/sub', d + '/old');"
            " os.symlink(e, d + '/sub')", attacker_dir, elsewhere)
    assert host.stop() == 0
    assert stat.S_ISSOCK(os.lstat(precious_socket).st_mode)
    assert (elsewhere / "web.sock").read_text() == "precious\n"
    assert host.log_text().count("is no longer the socket the host made: left alone") == 2


def test_unix_listen_socket_keeps_its_name(start_host, examples_dir, tmp_path):
    """A unix listen socket is bound at its path itself: a worker checking which socket it got
    (getsockname, as systemd's sd_is_socket_unix does) sees the configured path."""
    host = start_host(config(service("web", worker_command(examples_dir), ready="notify",
                                     listen="unix:web.sock")))
    host.wait_ready("web", 1)
    pid = host.workers("web")[0]["pid"]
    fd3 = os.readlink(f"/proc/{pid}/fd/3")
    inode = fd3.removeprefix("socket:[").removesuffix("]")
    with open("/proc/net/unix") as table:
        paths = [line.split()[-1] for line in table if line.split()[6] == inode]
    assert paths == [str(tmp_path / "web.sock")]
    assert host.stop() == 0
    assert not (tmp_path / "web.sock").exists()


def wchan(pid):
    """The kernel function pid sleeps in ("" if gone)."""
    try:
        with open(f"/proc/{pid}/wchan") as f:
            return f.read()
    except OSError:
        return ""


def test_second_host_on_a_full_socket_queue_ends(start_host, examples_dir, tmp_path):
    """A live socket whose queue is full (a listener that accepts nobody): the host must not
    wait for room with its signals blocked; it gives up at once, and SIGTERM ends it anyway."""
    path = tmp_path / "supervisor.ipc"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(0)
    queued = []
    while True:
        client = socket.socket(socket.AF_UNIX)
        client.setblocking(False)
        try:
            client.connect(str(path))
        except BlockingIOError:
            client.close()
            break
        queued.append(client)
    host = start_host(worker_config(examples_dir))
    wait_for(lambda: host.process.poll() is not None or
             wchan(host.pid) == "unix_wait_for_peer", 10,
             message="the host to give up, or to wait on the full socket")
    if host.process.poll() is None:
        host.send_signal(signal.SIGTERM)
    try:
        code = host.process.wait(10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the host waits on the full socket and SIGTERM does not end it:\n"
                    f"{host.log_text()}")
    assert code == 1
    line = host.wait_log("another process is answering on this socket")[0]
    assert str(path) in line and "queue full" in line
    assert stat.S_ISSOCK(os.lstat(path).st_mode)  # the live socket is left alone
    for client in queued:
        client.close()
    listener.close()


# socket_group above INT_MAX ------------------------------------------------------------------

STATUS_CLIENT = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(b'{"please":"status"}\0')
data = b""
while b"\0" not in data:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print(data.split(b"\0")[0].decode())
"""


@pytest.fixture
def big_group():
    """A group whose gid is above INT_MAX."""
    needs_root()
    name = f"aerie-big-{uuid.uuid4().hex[:8]}"
    subprocess.run(["groupadd", "-g", str(BIG_GID), name], check=True)
    yield BIG_GID
    subprocess.run(["groupdel", name], check=False)


def test_socket_group_above_int_max_reaches_the_supervisor(big_group, world_dir, start_host,
                                                           examples_dir):
    host = start_host(worker_config(examples_dir, socket_mode="0660", socket_group=big_group),
                      directory=world_dir)
    host.wait_ready("web", 1)
    assert os.stat(host.socket).st_gid == big_group
    supervisor = supervisor_pid(host.pid)
    assert f"\0--socket-gid\0{big_group}\0".encode() in read_cmdline(supervisor)
    result = subprocess.run(["setpriv", "--reuid=65533", "--regid=65533",
                             f"--groups={big_group}", sys.executable, "-c", STATUS_CLIENT,
                             str(host.socket)], capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stderr
    assert f'"pid":{host.pid}' in result.stdout.replace(" ", ""), result.stdout
    assert host.stop() == 0


# The log file -------------------------------------------------------------------------------


def log_host(start_host, examples_dir, log_path):
    return start_host(worker_config(examples_dir, log=log_path))


def test_planted_log_link_is_not_followed(attacker, shared_dir, start_host, examples_dir,
                                          tmp_path):
    """In a sticky shared directory (like /tmp) the attacker names the log file first, as a
    link to a root-only file."""
    victim, before = victim_file(tmp_path)
    directory = shared_dir(0o1777)
    as_user(attacker, "import os, sys; os.symlink(sys.argv[1], sys.argv[2])", victim,
            directory / "aerie.log")
    host = log_host(start_host, examples_dir, directory / "aerie.log")
    assert host.process.wait(10) == 1
    host.wait_log(f"log: {directory}/aerie.log is a symbolic link: not followed")
    assert_untouched(victim, before)


def test_log_reopened_on_usr1_never_follows_a_link(attacker, shared_dir, start_host,
                                                   examples_dir, tmp_path):
    """After a rotation the name is free: the attacker plants a link there before SIGUSR1."""
    victim, before = victim_file(tmp_path)
    directory = shared_dir(0o1777)
    log = directory / "aerie.log"
    host = log_host(start_host, examples_dir, log)
    host.wait_ready("web", 1)
    os.rename(log, directory / "aerie.log.1")
    as_user(attacker, "import os, sys; os.symlink(sys.argv[1], sys.argv[2])", victim, log)
    host.send_signal(signal.SIGUSR1)
    wait_for(lambda: "cannot reopen" in (directory / "aerie.log.1").read_text(),
             message="the refusal in the old log")
    assert "is a symbolic link" in (directory / "aerie.log.1").read_text()
    assert host.process.poll() is None
    assert_untouched(victim, before)
    assert host.stop() == 0
    assert_untouched(victim, before)


def test_planted_log_fifo_is_refused_without_waiting(attacker, shared_dir, start_host,
                                                     examples_dir):
    """A FIFO nobody reads would hold a plain open forever."""
    directory = shared_dir(0o1777)
    as_user(attacker, "import os, sys; os.mkfifo(sys.argv[1])", directory / "aerie.log")
    host = log_host(start_host, examples_dir, directory / "aerie.log")
    try:
        assert host.process.wait(10) == 1
    except subprocess.TimeoutExpired:
        pytest.fail("the host waits on the FIFO")
    host.wait_log(f"log: {directory}/aerie.log is not a regular file")


def test_log_in_a_directory_others_may_write_is_refused(shared_dir, start_host, examples_dir):
    directory = shared_dir(0o777)
    host = log_host(start_host, examples_dir, directory / "aerie.log")
    assert host.process.wait(10) == 1
    line = host.wait_log("is writable by other users")[0]
    assert f"its directory {directory} is writable by other users (mode 0777) and not sticky" \
        in line and "chmod go-w" in line and "chmod +t" in line
    assert not (directory / "aerie.log").exists()


def test_log_in_another_users_directory_is_refused(attacker, attacker_dir, start_host,
                                                   examples_dir, tmp_path):
    host = log_host(start_host, examples_dir, attacker_dir / "aerie.log")
    assert host.process.wait(10) == 1
    host.wait_log(f"its directory {attacker_dir} belongs to uid {attacker[0]}")
    assert not (attacker_dir / "aerie.log").exists()


def test_log_that_is_a_hard_link_is_refused(shared_dir, start_host, examples_dir, tmp_path):
    """A second name for another file (made here by root: fs.protected_hardlinks stops a user
    linking a file that is not theirs, but not every system has it on)."""
    directory = shared_dir(0o700)
    victim, before = victim_file(directory)
    os.link(victim, directory / "aerie.log")
    host = log_host(start_host, examples_dir, directory / "aerie.log")
    assert host.process.wait(10) == 1
    host.wait_log("has 2 names (hard links)")
    assert_untouched(victim, before)
