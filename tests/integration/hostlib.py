"""Drive a real `aerie host` from tests: write a config, start it, read its log, talk to its
supervisor socket, stop it. Every wait polls a condition with a deadline; nothing sleeps blind."""
import json
import os
import pathlib
import signal
import socket
import subprocess
import threading
import time


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


def process_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def descendants(root):
    """Pids of every descendant of root, from /proc."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


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
        return self.process.pid

    def log(self):
        with self._lock:
            return list(self.lines)

    def log_text(self):
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
        return request(self.socket, message, timeout)

    def status(self):
        return self.request({"please": "status"})

    def workers(self, service, state=None):
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

    def send_signal(self, signum):
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
