"""Drive a real `aerie host` from tests: write a config, start it, read its log, talk to its
supervisor socket, stop it; read what /proc says about its processes; talk HTTP to its workers.
Every wait polls a condition with a deadline; nothing sleeps blind.

In order: waiting, configs, the supervisor socket, /proc, HTTP, the Host class."""
import json
import os
import pathlib
import re
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time

NOBODY = ("--reuid=65534", "--regid=65534", "--clear-groups")  # setpriv's options for nobody


# Waiting -----------------------------------------------------------------------------------


def wait_for(condition, timeout=10.0, interval=0.02, message="condition"):
    """Polls condition() until it returns something truthy; returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def wait_gone(pids, timeout=5.0, reaped=True, what=None):
    """Waits until none of pids is left: not in /proc at all, or (reaped=False) not running,
    an unreaped zombie counting as gone."""
    gone = (lambda pid: not exists(pid)) if reaped else (lambda pid: not process_alive(pid))
    wait_for(lambda: all(gone(pid) for pid in pids), timeout,
             message=f"{what or f'pids {pids}'} to be gone")


def idle_syscalls(pid, trace, seconds=3.0, also=()):
    """The system calls pid's main thread (and those of the pids in also) make in seconds, as
    strace -tt writes them to the file trace: an idle host makes none but the epoll_wait it
    is in."""
    strace = shutil.which("strace")
    assert strace, "strace is not installed: the set-up script installs it (apt-get install strace)"
    traced = [arg for p in (pid, *also) for arg in ("-p", str(p))]
    tracer = subprocess.Popen([strace, "-tt", *traced, "-o", str(trace)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: pathlib.Path(trace).exists(), 5, message="strace to attach")
        time.sleep(seconds)  # measuring: an idle host does nothing
    finally:
        tracer.send_signal(signal.SIGINT)
        _, err = tracer.communicate(timeout=10)
    assert b"attached" in err, err
    return [l for l in pathlib.Path(trace).read_text().splitlines() if l.strip()]


# Configs -----------------------------------------------------------------------------------


def worker_command(examples_dir, *args, program="worker"):
    """The command line of an example program (build/examples/worker by default) with args."""
    return shlex.join([str(examples_dir / program), *args])


def service(name, command, **keys):
    """A [service:NAME] section: `command = command`, then a `key = value` line per keyword."""
    lines = [f"[service:{name}]", f"command = {command}"]
    lines += [f"{key} = {value}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


def config(*services, **host):
    """A config file's text: a [host] section of the keywords (if any), then the services."""
    head = ["[host]\n" + "".join(f"{key} = {value}\n" for key, value in host.items())] \
        if host else []
    return "\n".join(head + list(services))


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The supervisor socket ---------------------------------------------------------------------


def request(path, message, timeout=30.0):
    """One NUL-terminated JSON request on a fresh connection; returns the decoded reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        data = message if isinstance(message, bytes) else json.dumps(message).encode()
        s.sendall(data + b"\0")
        reply = b""
        while b"\0" not in reply:
            chunk = s.recv(1 << 16)
            if not chunk:
                raise ConnectionError(f"closed before a reply; got {reply!r}")
            reply += chunk
        return json.loads(reply[: reply.index(b"\0")])


# What /proc says ---------------------------------------------------------------------------


def proc_stat(pid):
    """The fields of /proc/PID/stat after the command (state first), or None if pid is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split() if ")" in text else None


def exists(pid):
    """True while pid is in /proc at all, zombies included."""
    return proc_stat(pid) is not None


def process_alive(pid):
    """True if pid exists and is not a zombie."""
    fields = proc_stat(pid)
    return bool(fields) and fields[0] != "Z"


def parent(pid):
    """The parent pid of pid, or None if pid is gone."""
    fields = proc_stat(pid)
    return int(fields[1]) if fields else None


def cpu_seconds(pid):
    """User and system CPU time pid has used, in seconds."""
    fields = proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_seconds(pid):
    """Seconds pid has been runnable: on a CPU or waiting in a run queue (/proc/PID/schedstat).
    A process that spins is runnable all the time however loaded the machine is."""
    with open(f"/proc/{pid}/schedstat") as f:
        running, waiting = f.read().split()[:2]
    return (int(running) + int(waiting)) / 1e9


def read_cmdline(pid):
    """The raw /proc/PID/cmdline (NUL-terminated arguments), b"" if pid is gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def ignored_signals(pid):
    """The mask of signals pid ignores (SigIgn in /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1], 16) for line in f if line.startswith("SigIgn:"))


def rss(pid):
    """The resident set size of pid in bytes (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def fd_count(pid):
    """How many file descriptors pid has open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_count_but_proc(pid):
    """How many file descriptors pid has open on anything but /proc: the supervisor process
    keeps its tree's /proc files open between metrics requests (a bounded cache, closed when
    idle), which says nothing of what it holds for its clients."""
    count = 0
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            if not os.readlink(f"/proc/{pid}/fd/{name}").startswith("/proc/"):
                count += 1
        except FileNotFoundError:
            pass
    return count


def children(pid):
    """The pids of pid's children (of its main thread), [] if pid is gone."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def descendants(root):
    """Pids of every descendant of root, from /proc."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = proc_stat(entry)
            if fields:
                parents[int(entry)] = int(fields[1])
    found, frontier = [], [root]
    while frontier:
        parent_pid = frontier.pop()
        kids = [pid for pid, ppid in parents.items() if ppid == parent_pid]
        found += kids
        frontier += kids
    return found


def process_group(pid):
    """The process group of pid, or None if pid is gone."""
    fields = proc_stat(pid)
    return int(fields[2]) if fields else None


def session(pid):
    """The session of pid, or None if pid is gone."""
    fields = proc_stat(pid)
    return int(fields[3]) if fields else None


def all_pids():
    """Every pid in /proc right now."""
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def group_members(pgid):
    """The live (not zombie) processes of process group pgid."""
    return [pid for pid in all_pids() if process_group(pid) == pgid and process_alive(pid)]


def session_members(sid):
    """The live (not zombie) processes of session sid."""
    return [pid for pid in all_pids() if session(pid) == sid and process_alive(pid)]


def with_environment(entry):
    """The pids whose environment holds entry ("KEY=VALUE"): a mark that a test's processes
    and all they start inherit. Zombies have no environment left to read: not found."""
    wanted = entry.encode()
    found = []
    for pid in all_pids():
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                variables = f.read().split(b"\0")
        except OSError:
            continue
        if wanted in variables:
            found.append(pid)
    return found


def limit(pid, name="Max open files"):
    """(soft, hard) of one limit of pid from /proc/PID/limits; "unlimited" is None."""
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith(name):
                soft, hard = line[len(name):].split()[:2]
                return tuple(None if v == "unlimited" else int(v) for v in (soft, hard))
    raise AssertionError(f"no {name!r} in /proc/{pid}/limits")


def zombies_of(pid):
    """The children of pid that are zombies it has not reaped."""
    return [child for child in children(pid) if (proc_stat(child) or ["?"])[0] == "Z"]


def find_process(root, cmdline):
    """The descendant of root whose command line is cmdline (a list), or None."""
    wanted = b"".join(arg.encode() + b"\0" for arg in cmdline)
    return next((pid for pid in descendants(root) if read_cmdline(pid) == wanted), None)


def supervisor_pid(host_pid, exclude=(), timeout=10.0):
    """Waits for the host's running supervisor process (its child running supervisor-process,
    other than the pids in exclude); returns its pid."""
    def find():
        return next((pid for pid in children(host_pid) if pid not in exclude
                     and b"supervisor-process" in read_cmdline(pid) and process_alive(pid)),
                    None)
    return wait_for(find, timeout, message="the supervisor process")


# HTTP to the example http_worker ------------------------------------------------------------

HELLO = re.compile(rb"^hello from worker (\d+) pid (\d+) generation (\d+)\n$")  # its body
CLIENT_TIMEOUT = 10.0  # seconds: a request slower than this is a timeout, hence a failure


class Incomplete(Exception):
    """The server closed the connection before a complete response."""


class Client:
    """One HTTP/1.1 connection; get() sends one request and reads exactly one response."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def _more(self, what):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise Incomplete(f"EOF {what}; had {self.buffer[:120]!r}")
        self.buffer += chunk

    def get(self, path):
        """Returns (status, headers with lower-case names, body)."""
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: aerie\r\n\r\n".encode())
        while b"\r\n\r\n" not in self.buffer:
            self._more("before the response head")
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers["content-length"])
        while len(self.buffer) < length:
            self._more(f"in a body of {length} bytes")
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, body

    def close(self):
        self.sock.close()


# The host ----------------------------------------------------------------------------------


class Host:
    """A running `aerie host` on a config written into directory."""

    def __init__(self, binary, directory, config, args=(), wrapper=()):
        self.directory = pathlib.Path(directory)
        self.config = self.directory / "aerie.ini"
        self.config.write_text(config)
        self.socket = self.directory / "supervisor.ipc"
        self.lines = []
        self._lock = threading.Lock()
        self.process = subprocess.Popen(
            [*wrapper, binary, "host", *args, str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.directory,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.process.stderr:
            with self._lock:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    @property
    def pid(self):
        """The host's pid."""
        return self.process.pid

    def log(self):
        """The lines the host has written to stderr so far: all of them once it has exited (the
        reader thread may still be taking the last ones when wait() returns)."""
        if self.process.poll() is not None:
            self._reader.join(timeout=5)
        with self._lock:
            return list(self.lines)

    def log_text(self):
        """The log as one string."""
        return "\n".join(self.log())

    def wait_log(self, text, timeout=10.0, count=1):
        """Waits until text appears in count log lines; returns those lines."""
        def found():
            hits = [line for line in self.log() if text in line]
            return hits if len(hits) >= count else None
        try:
            return wait_for(found, timeout, message=f"log line {text!r}")
        except AssertionError:
            raise AssertionError(f"no log line {text!r} (x{count}) in:\n{self.log_text()}")

    def request(self, message, timeout=30.0):
        """One request on the host's supervisor socket; returns the decoded reply."""
        return request(self.socket, message, timeout)

    def status(self):
        """The reply to a status request."""
        return self.request({"please": "status"})

    def workers(self, service, state=None):
        """The workers that status lists for service (only those in state, if given)."""
        workers = self.status()["services"][service]["workers"]
        return [w for w in workers if state is None or w["state"] == state]

    def wait_ready(self, service, count, timeout=10.0):
        """Waits until service has count ready workers; returns their pids."""
        def ready():
            try:
                pids = [w["pid"] for w in self.workers(service, "ready")]
            except (OSError, ConnectionError, KeyError, ValueError):
                return None
            return pids if len(pids) == count else None
        return wait_for(ready, timeout, message=f"{count} ready workers of {service}")

    def wait_generation(self, service, generation, count, timeout=15.0):
        """Waits until service lists exactly count workers, all ready and of generation;
        returns their pids, sorted."""
        def settled():
            workers = self.workers(service)
            if len(workers) == count and all(w["state"] == "ready" and w["generation"] ==
                                             generation for w in workers):
                return sorted(w["pid"] for w in workers)
            return None
        return wait_for(settled, timeout, message=f"{count} workers of {service}, all ready, "
                        f"of generation {generation} only")

    def send_signal(self, signum):
        """Sends signum to the host."""
        os.kill(self.process.pid, signum)

    def stop(self, timeout=15.0, signum=signal.SIGTERM):
        """Graceful stop; returns the exit code."""
        if self.process.poll() is None:
            self.send_signal(signum)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"host did not stop within {timeout} s:\n{self.log_text()}")
        self._reader.join(5)
        return code

    def kill(self):
        """Last resort for a test that failed: the host and every descendant go."""
        for pid in [self.process.pid, *descendants(self.process.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(10)
