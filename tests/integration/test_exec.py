"""How workers run: user and group, umask, limit_NAME, nice, oom_score_adj,
no_new_privileges and cgroup, read back from /proc of real workers."""
import grp
import os
import pathlib
import pwd
import shutil
import subprocess
import sys
import textwrap
import urllib.request

import pytest

from hostlib import config, free_port, limit, service, wait_for, wait_gone

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")


def proc_status(pid):
    """/proc/PID/status as a dict of its lines."""
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def environment(pid):
    """/proc/PID/environ as a dict. The host's vfork returns in the middle of the child's
    execve, before the kernel has set up the new environment, which reads empty until then:
    waited for."""
    def read():
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read()
    entries = wait_for(read, timeout=10, message=f"the environment of {pid}").split(b"\0")
    return dict(e.decode().split("=", 1) for e in entries if b"=" in e)


def nice_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[16])  # field 19 of stat; the fields after ")" start at 3


def run_host(aerie_bin, directory, text):
    path = pathlib.Path(directory) / "bad.ini"
    path.write_text(text)
    return subprocess.run([aerie_bin, "host", path.name], capture_output=True, text=True,
                          cwd=directory, timeout=30)


def test_user_groups_umask_limits_nice_oom_and_no_new_privileges(accounts, start_host):
    extra = accounts.group()
    user = accounts.user(groups=[extra], own_group=True)
    host = start_host(config(service(
        "web", "/bin/sleep 1000", user=user.pw_name, directory="/", umask="027",
        limit_nofile="4096:8192", limit_nproc="300:400", limit_core="unlimited",
        limit_memlock="1M:2M", limit_stack="4M:infinity", limit_as="2G:4G",
        limit_cpu="3600", limit_fsize="10G:unlimited", nice=7, oom_score_adj=321,
        no_new_privileges="yes")))
    [pid] = host.wait_ready("web", 1)
    status = proc_status(pid)
    uids = {int(u) for u in status["Uid"].split()}
    gids = {int(g) for g in status["Gid"].split()}
    groups = {int(g) for g in status["Groups"].split()}
    assert uids == {user.pw_uid}
    assert gids == {user.pw_gid}
    # initgroups: the user's own groups, none of root's
    assert groups == {user.pw_gid, extra}
    assert status["Umask"] == "0027"
    assert status["NoNewPrivs"] == "1"
    assert limit(pid, "Max open files") == (4096, 8192)
    assert limit(pid, "Max processes") == (300, 400)
    assert limit(pid, "Max core file size") == (None, None)
    assert limit(pid, "Max locked memory") == (1 << 20, 2 << 20)
    assert limit(pid, "Max stack size") == (4 << 20, None)
    assert limit(pid, "Max address space") == (2 << 30, 4 << 30)
    assert limit(pid, "Max cpu time") == (3600, 3600)
    assert limit(pid, "Max file size") == (10 << 30, None)
    assert nice_of(pid) == 7
    assert pathlib.Path(f"/proc/{pid}/oom_score_adj").read_text().strip() == "321"
    env = environment(pid)
    assert (env["USER"], env["LOGNAME"], env["HOME"]) == (user.pw_name, user.pw_name,
                                                          user.pw_dir)


def test_group_overrides_the_primary_group_and_env_wins_over_home(accounts, start_host):
    other = accounts.group()
    user = accounts.user(own_group=True)
    name = grp.getgrgid(other).gr_name
    host = start_host(config(service("web", "/bin/sleep 1000", user=user.pw_name, group=name, directory="/",
                                     env="HOME=/srv/web")))
    [pid] = host.wait_ready("web", 1)
    status = proc_status(pid)
    assert {int(g) for g in status["Gid"].split()} == {other}
    assert {int(u) for u in status["Uid"].split()} == {user.pw_uid}
    assert 0 not in {int(g) for g in status["Groups"].split()}
    assert other in {int(g) for g in status["Groups"].split()}
    env = environment(pid)
    assert env["HOME"] == "/srv/web"
    assert env["USER"] == user.pw_name


def test_group_alone_drops_roots_groups(accounts, start_host):
    other = accounts.group()
    host = start_host(config(service("web", "/bin/sleep 1000",
                                     group=grp.getgrgid(other).gr_name)))
    [pid] = host.wait_ready("web", 1)
    status = proc_status(pid)
    assert {int(g) for g in status["Gid"].split()} == {other}
    assert status["Groups"].split() == [str(other)]
    assert {int(u) for u in status["Uid"].split()} == {0}


def test_without_the_keys_a_worker_gets_the_hosts_soft_limit_back(start_host):
    soft, hard = limit(os.getpid(), "Max open files")
    host = start_host(config(service("web", "/bin/sleep 1000")))
    [pid] = host.wait_ready("web", 1)
    assert limit(pid, "Max open files") == (soft, hard)
    if soft is not None and hard is not None and soft < hard:
        # the host itself runs with its soft limit raised to the hard one
        assert limit(host.pid, "Max open files") == (hard, hard)
    mask = os.umask(0o022)
    os.umask(mask)
    assert proc_status(pid)["Umask"] == "%04o" % mask  # the host's, as without aerie


HTTP_WORKER = textwrap.dedent("""\
    import http.server, os, socket, sys
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"uid={os.getuid()} gid={os.getgid()}\\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    assert os.environ["LISTEN_FDS"] == "1" and os.environ["LISTEN_PID"] == str(os.getpid())
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = socket.socket(fileno=3)
    server.serve_forever()
""")


def test_a_socket_activated_worker_as_nobody_serves_on_the_hosts_port(start_host, world_dir):
    script = world_dir / "http_worker.py"
    script.write_text(HTTP_WORKER)
    script.chmod(0o644)
    nobody = pwd.getpwnam("nobody")
    port = free_port()
    host = start_host(config(service("web", f"{sys.executable} {script}", user="nobody", directory="/",
                                     listen=f"tcp:127.0.0.1:{port}")))
    [pid] = host.wait_ready("web", 1)
    assert {int(u) for u in proc_status(pid)["Uid"].split()} == {nobody.pw_uid}

    def get():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as reply:
                return reply.status, reply.read().decode()
        except OSError:
            return None
    status, body = wait_for(get, timeout=20, message="an HTTP reply from the worker")
    assert status == 200
    assert body == f"uid={nobody.pw_uid} gid={nobody.pw_gid}\n"
    # the port is the host's: bound by root before the worker dropped to nobody
    assert port < 65536 and host.process.poll() is None


BAD = {
    "no-such-user": ("user = aerie-nobody-at-all\n",
                     'bad.ini:3: invalid user "aerie-nobody-at-all" in [service:web] '
                     "(no such user)"),
    "no-such-group": ("group = aerie-no-group-at-all\n",
                      'bad.ini:3: invalid group "aerie-no-group-at-all" in [service:web] '
                      "(no such group)"),
    "empty-user": ("user =\n", 'bad.ini:3: invalid user "" in [service:web] (expected a user '
                   "name)"),
    "limit-soft-above-hard": ("limit_nofile = 2048:1024\n",
                              'bad.ini:3: invalid limit_nofile "2048:1024" in [service:web] '
                              "(the soft limit is above the hard one)"),
    "limit-not-a-number": ("limit_nproc = lots\n",
                           'bad.ini:3: invalid limit_nproc "lots" in [service:web] (expected '
                           "SOFT[:HARD], each a whole number or unlimited)"),
    "limit-size-unit-on-a-count": ("limit_nofile = 64K\n",
                                   'bad.ini:3: invalid limit_nofile "64K" in [service:web] '
                                   "(expected SOFT[:HARD], each a whole number or unlimited)"),
    "limit-bad-size": ("limit_as = 2X\n",
                       'bad.ini:3: invalid limit_as "2X" in [service:web] (expected '
                       "SOFT[:HARD], each a size such as 65536, 512M or unlimited)"),
    "limit-empty-hard": ("limit_core = 0:\n",
                         'bad.ini:3: invalid limit_core "0:" in [service:web] (expected '
                         "SOFT[:HARD], each a size such as 65536, 512M or unlimited)"),
    "umask-not-octal": ("umask = 0999\n", 'bad.ini:3: invalid umask "0999" in [service:web] '
                        "(expected an octal mask such as 022)"),
    "nice-out-of-range": ("nice = 20\n", 'bad.ini:3: invalid nice "20" in [service:web] '
                          "(expected a number from -20 to 19)"),
    "oom-out-of-range": ("oom_score_adj = -1001\n",
                         'bad.ini:3: invalid oom_score_adj "-1001" in [service:web] '
                         "(expected a number from -1000 to 1000)"),
    "no-new-privileges-word": ("no_new_privileges = maybe\n",
                               'bad.ini:3: invalid no_new_privileges "maybe" in [service:web] '
                               "(expected yes or no)"),
    "cgroup-word": ("cgroup = sometimes\n", 'bad.ini:3: invalid cgroup "sometimes" in '
                    "[service:web] (expected auto, yes or no)"),
    "cpu-weight-zero": ("cpu_weight = 0\n", 'bad.ini:3: invalid cpu_weight "0" in '
                        "[service:web] (expected a number from 1 to 10000)"),
    "memory-max-word": ("memory_max = lots\n", 'bad.ini:3: invalid memory_max "lots" in '
                        "[service:web] (expected a size such as 512M or 2G)"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_exec_keys_are_config_errors(aerie_bin, tmp_path, name):
    line, message = BAD[name]
    result = run_host(aerie_bin, tmp_path,
                      "[service:web]\ncommand = /usr/bin/touch started\n" + line)
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"aerie: {message}\n"
    assert not (tmp_path / "started").exists()


def as_nobody(aerie_bin, directory, text):
    """aerie host run as nobody on text, in directory, which nobody may write."""
    nobody = pwd.getpwnam("nobody")
    os.chown(directory, nobody.pw_uid, nobody.pw_gid)
    path = directory / "aerie.ini"
    path.write_text(text)
    path.chmod(0o644)
    return subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                             aerie_bin, "host", str(path)], cwd=directory,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def refused_as_nobody(aerie_bin, directory, line):
    """The stderr of a host run as nobody on a service with line, which must refuse to start
    (exit 1) and start nothing."""
    host = as_nobody(aerie_bin, directory, f"[host]\nsupervisor = {directory}/s.ipc\n"
                     f"[service:web]\ncommand = /usr/bin/touch started\n{line}\n")
    _, stderr = host.communicate(timeout=30)
    assert host.returncode == 1, stderr
    assert not (directory / "started").exists()
    return stderr


def test_a_host_that_is_not_root_refuses_another_user(aerie_bin, world_dir):
    stderr = refused_as_nobody(aerie_bin, world_dir, "user = root")
    assert stderr == (f"aerie: {world_dir}/aerie.ini:5: user = root in [service:web] needs a "
                      f"host running as root (this one runs as uid "
                      f"{pwd.getpwnam('nobody').pw_uid})\n")
    assert not (world_dir / "started").exists()


def test_a_host_that_is_not_root_runs_its_own_user(aerie_bin, world_dir):
    nobody = pwd.getpwnam("nobody")
    host = as_nobody(aerie_bin, world_dir, f"[host]\nsupervisor = {world_dir}/s.ipc\n"
                     f"[service:web]\ncommand = /bin/sleep 1000\nuser = nobody\n"
                     "cgroup = no\n")
    try:
        def worker():
            found = [p for p in os.listdir("/proc") if p.isdigit() and
                     _parent(int(p)) == host.pid]
            return [int(p) for p in found if _comm(int(p)) == "sleep"] or None
        [pid] = wait_for(worker, timeout=20, message="the worker of the host run as nobody")
        assert {int(u) for u in proc_status(pid)["Uid"].split()} == {nobody.pw_uid}
        assert environment(pid)["USER"] == "nobody"
    finally:
        host.terminate()
        _, stderr = host.communicate(timeout=30)
        print(stderr)


def _parent(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _comm(pid):
    try:
        return pathlib.Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def test_a_failed_step_before_exec_is_named(start_host):
    nr_open = int(pathlib.Path("/proc/sys/fs/nr_open").read_text())
    host = start_host(config(service("web", "/usr/bin/touch started",
                                     limit_nofile=str(nr_open + 1))))
    line = host.wait_log("web.0: cannot start a worker: setrlimit nofile failed before "
                         "exec")[0]
    assert "Operation not permitted" in line
    assert not (host.directory / "started").exists()


# cgroup v2 ------------------------------------------------------------------------------


def cgroup_of(pid):
    """The v2 path of pid ("0::PATH")."""
    for line in pathlib.Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:]
    return None


def cgroup_mount():
    for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines():
        if " - cgroup2 " in line:
            return line.split()[4]
    return None


def service_cgroup_or_skip(host, service):
    """The directory of service's cgroup, from the host's log; a skip that prints the host's
    reason where it has none."""
    line = host.wait_log("cgroup", timeout=10)[0]
    if "run without a cgroup" in line:
        pytest.skip(f"no writable cgroup v2 here: {line}")
    [made] = host.wait_log(f"{service}: cgroup /")
    return pathlib.Path(made.split(f"{service}: cgroup ", 1)[1])


ESCAPER = ("/bin/sh -c 'setsid /bin/sh -c \"trap \\\"\\\" TERM; echo \\$\\$ > escaped.pid; "
           "exec sleep 1000\" & exec sleep 1000'")


def escaper_started(host, directory):
    """(worker, escaped grandchild) of the ESCAPER service web whose cgroup is directory; a
    skip where the kernel has no cgroup.kill."""
    if not (directory / "cgroup.kill").exists():
        pytest.skip(f"this kernel has no cgroup.kill (Linux 5.14+) in {directory}")
    [pid] = host.wait_ready("web", 1)
    pid_file = host.directory / "escaped.pid"
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=10,
             message="the escaped grandchild's pid")
    return pid, int(pid_file.read_text())


def test_a_setsid_grandchild_is_killed_by_stop_through_cgroup_kill(start_host):
    host = start_host(config(service("web", ESCAPER, stop_timeout=30)))
    directory = service_cgroup_or_skip(host, "web")
    pid, escaped = escaper_started(host, directory)
    # In a session of its own, ignoring SIGTERM: no signal to the worker's group reaches it.
    assert os.getsid(escaped) == escaped != os.getsid(pid)
    assert "SigIgn" in proc_status(escaped) and int(proc_status(escaped)["SigIgn"], 16) & 1 << 14
    mount = cgroup_mount()
    assert cgroup_of(pid) == cgroup_of(escaped) == "/" + str(directory.relative_to(mount))
    assert host.stop() == 0
    host.wait_log("web: killed what was left in its cgroup (cgroup.kill)")
    wait_gone([escaped], reaped=False, what="the escaped grandchild")
    assert not directory.exists()  # removed once empty


def test_a_killed_hosts_guard_empties_and_removes_the_service_cgroups(start_host):
    """kill -9 of the host: its guard kills the workers' process groups, then what escaped them
    through cgroup.kill, and removes the services' cgroups once empty."""
    host = start_host(config(service("web", ESCAPER, stop_timeout=30),
                             service("other", "/bin/sleep 1000")))
    web = service_cgroup_or_skip(host, "web")
    other = service_cgroup_or_skip(host, "other")
    pid, escaped = escaper_started(host, web)
    assert os.getsid(escaped) != os.getsid(pid)
    host.process.kill()
    host.process.wait()
    wait_gone([pid, escaped], reaped=False, what="the worker and its escaped grandchild")
    wait_for(lambda: not web.exists() and not other.exists(), timeout=10,
             message="the services' cgroups removed")


def test_cgroup_no_keeps_the_worker_in_the_hosts_cgroup(start_host):
    host = start_host(config(service("web", "/bin/sleep 1000", cgroup="no")))
    [pid] = host.wait_ready("web", 1)
    assert cgroup_of(pid) == cgroup_of(host.pid)
    assert not [line for line in host.log() if "web: cgroup" in line]


def test_memory_max_cpu_weight_and_memory_current_where_the_controllers_are(start_host):
    host = start_host(config(service("web", "/bin/sleep 1000", memory_max="100M",
                                     cpu_weight=50)))
    directory = service_cgroup_or_skip(host, "web")
    [pid] = host.wait_ready("web", 1)
    assert cgroup_of(pid).endswith("/service.web")
    web = host.status()["services"]["web"]
    if (directory / "memory.max").exists():
        assert (directory / "memory.max").read_text().strip() == str(100 << 20)
        assert web["memory_current"] > 0
    else:
        host.wait_log("web: memory.max not set: that controller is not enabled in its cgroup")
        assert "memory_current" not in web
        print(f"no memory controller in {directory}: memory_max and memory_current untested")
    if (directory / "cpu.weight").exists():
        assert (directory / "cpu.weight").read_text().strip() == "50"
    else:
        host.wait_log("web: cpu.weight not set: that controller is not enabled in its cgroup")
        print(f"no cpu controller in {directory}: cpu_weight untested")


def test_cgroup_yes_without_a_writable_cgroup_is_a_start_error(aerie_bin, world_dir):
    stderr = refused_as_nobody(aerie_bin, world_dir, "cgroup = yes")
    assert f"aerie: {world_dir}/aerie.ini: cgroup = yes in [service:web], but " in stderr


def test_a_worker_as_nobody_reports_ready_on_the_hosts_notify_socket(start_host, examples_dir,
                                                                      world_dir):
    # NOTIFY_SOCKET is the root host's: the unprivileged worker must still reach it.
    program = world_dir / "worker"
    shutil.copy(examples_dir / "worker", program)
    program.chmod(0o755)
    host = start_host(config(service("web", str(program), user="nobody", directory="/",
                                     ready="notify", count=2)))
    pids = host.wait_ready("web", 2, timeout=20)
    nobody = pwd.getpwnam("nobody").pw_uid
    for pid in pids:
        assert {int(u) for u in proc_status(pid)["Uid"].split()} == {nobody}


@pytest.fixture
def own_cgroup():
    """A new cgroup v2 directory of the test's (as systemd's Delegate=yes gives a unit), removed
    at the end with what the host made in it."""
    mount = cgroup_mount()
    own = cgroup_of(os.getpid())
    if not mount or own is None:
        pytest.skip("no cgroup v2 here")
    parent = pathlib.Path(mount + (own if own != "/" else ""))
    if not os.access(parent / "cgroup.procs", os.W_OK):
        pytest.skip(f"{parent} is not writable here")
    directory = parent / f"aerie-test-{os.getpid()}"
    directory.mkdir()
    yield directory

    def removed(path):
        # EBUSY until the last process in it (the host's guard, a moment after the host) is gone
        try:
            path.rmdir()
            return True
        except OSError:
            return False
    for child in sorted(directory.iterdir()):
        if child.is_dir():
            wait_for(lambda: removed(child), timeout=10, message=f"{child} to be empty")
    wait_for(lambda: removed(directory), timeout=10, message=f"{directory} to be empty")


def test_a_host_in_a_cgroup_of_its_own_moves_into_a_leaf(start_host, own_cgroup):
    # The host starts in own_cgroup, which then holds a process (the host's): it moves itself
    # into own_cgroup/host, so that own_cgroup may have children with controllers.
    join = f'echo $$ > {own_cgroup}/cgroup.procs && exec "$@"'
    host = start_host(config(service("web", "/bin/sleep 1000")),
                      wrapper=["/bin/sh", "-c", join, "sh"])
    [pid] = host.wait_ready("web", 1)
    relative = "/" + str(own_cgroup.relative_to(cgroup_mount()))
    assert cgroup_of(host.pid) == relative + "/host"
    assert cgroup_of(pid) == relative + "/service.web"
    assert (own_cgroup / "cgroup.procs").read_text() == ""  # no process left beside them
    host.wait_log(f"cgroup: each service gets its own under {own_cgroup}")
    assert host.stop() == 0
    assert not (own_cgroup / "service.web").exists()
