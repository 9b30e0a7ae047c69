"""The client trusts only a real host: `aerie supervisor` and `top` refuse a socket served by
another user (unless --owner names it), print no control character a worker or a server chose,
and give up on a socket whose host accepts nobody within --timeout. The other side is real: a
fake server run as a throwaway user, a host whose worker sends escape sequences, a socket whose
backlog is full."""
import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from hostlib import config, service

# A server that is not aerie: answers each NUL-terminated request on a connection with the
# reply its argv gives for that request's "please" (a JSON text), until the client closes.
FAKE_SERVER = r"""
import json, socket, sys
path, replies = sys.argv[1], json.loads(sys.argv[2])
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(8)
print("listening", flush=True)
while True:
    conn, _ = server.accept()
    data = b""
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
        while b"\0" in data:
            request, data = data.split(b"\0", 1)
            please = json.loads(request).get("please")
            conn.sendall(replies.get(please, replies["default"]).encode() + b"\0")
    conn.close()
"""

FAKE_STATUS = {"host": {"pid": 1, "uptime": 5.0, "generation": 7},
               "services": {"FAKEWEB": {"count": 1, "ready": 1, "restarts": 0, "workers": [
                   {"pid": 4242, "index": 0, "generation": 7, "state": "ready", "since": 0,
                    "restarts": 0, "status": "FAKE-STATUS"}]}}}
FAKE_REPLIES = {"status": json.dumps(FAKE_STATUS),
                "default": json.dumps({"error": {"code": "internal",
                                                 "message": "FAKE-ERROR"}})}


@pytest.fixture
def stranger(accounts):
    """A throwaway user (useradd -M): the pwd entry; removed afterwards."""
    if not shutil.which("setpriv"):
        pytest.skip("needs setpriv to act as another user")
    return accounts.user()


def as_user(user):
    """setpriv's prefix that runs a command as user (its uid, its group, no others)."""
    return ("setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups")


@pytest.fixture
def fake_server(world_dir):
    """fake_server(user=None, replies=FAKE_REPLIES) → the path of a FAKE_SERVER listening in
    a directory of its own that user owns, run as user (None: as root)."""
    servers = []

    def start(user=None, replies=FAKE_REPLIES):
        directory = world_dir / f"server{len(servers)}"
        directory.mkdir()
        prefix = ()
        if user:
            os.chown(directory, user.pw_uid, user.pw_gid)
            prefix = as_user(user)
        path = directory / "supervisor.ipc"
        process = subprocess.Popen([*prefix, sys.executable, "-c", FAKE_SERVER, str(path),
                                    json.dumps(replies)], stdout=subprocess.PIPE, text=True)
        servers.append(process)
        assert process.stdout.readline() == "listening\n", "the fake server did not start"
        os.chmod(path, 0o666)  # anyone may connect: what counts is who serves it
        return path

    yield start
    for process in servers:
        process.kill()
        process.wait()


def client(aerie_bin, *args, user=(), timeout=30):
    """`aerie supervisor ARGS` with its output as bytes, stdin not a terminal."""
    return subprocess.run([*user, aerie_bin, "supervisor", *map(str, args)],
                          capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)


# 1. Only a socket served by root, by the client's own user or by --owner is trusted ---------


@pytest.mark.parametrize("command", [["status"], ["status", "--json"], ["metrics"], ["top"]])
def test_socket_of_another_user_is_refused(aerie_bin, stranger, fake_server, command):
    path = fake_server(stranger)
    result = client(aerie_bin, "-s", path, *command)
    output = result.stdout + result.stderr
    assert b"FAKE" not in output, output
    assert result.returncode == 3, output
    stderr = result.stderr.decode()
    assert f"{path} is served by user {stranger.pw_name} (uid {stranger.pw_uid})" in stderr
    assert f"--owner {stranger.pw_name}" in stderr


def test_owner_option_accepts_that_user(aerie_bin, stranger, fake_server):
    path = fake_server(stranger)
    for owner in (stranger.pw_name, str(stranger.pw_uid)):
        result = client(aerie_bin, "-s", path, "--owner", owner, "status")
        assert result.returncode == 0, result.stderr
        assert b"FAKEWEB.0" in result.stdout and b"FAKE-STATUS" in result.stdout
    # top too; the fake server's metrics are an error, which top reports.
    result = client(aerie_bin, "-s", path, "--owner", stranger.pw_name, "top")
    assert result.returncode == 1 and b"no metrics: FAKE-ERROR" in result.stderr, result.stderr


def test_own_user_and_root_are_trusted(aerie_bin, stranger, fake_server):
    # The stranger's client trusts the stranger's server and root's, not only root's.
    for path in (fake_server(stranger), fake_server()):
        result = client(aerie_bin, "-s", path, "status", user=as_user(stranger))
        assert result.returncode == 0, result.stderr
        assert b"FAKEWEB.0" in result.stdout


def test_owner_must_be_a_user(aerie_bin, tmp_path):
    result = client(aerie_bin, "-s", tmp_path / "none.ipc", "--owner", "no-such-user-x", "status")
    assert result.returncode == 2
    assert b"--owner: no user 'no-such-user-x'" in result.stderr


# 2. No control character a worker or a server chose reaches the terminal --------------------

# ESC sequences (set the title, clear the screen), BEL, DEL, U+009B (CSI as UTF-8), a raw 0x9b
# byte (CSI for a terminal in an 8-bit mode; not UTF-8), and a character that is fine (é).
EVIL = b"\x1b]0;owned\x07\x1b[2J\x1b[31mred\xc2\x9b2J\x9bx\x7f caf\xc3\xa9 end"

# A worker in Python: it runs itself again with EVIL in its command line, then sends EVIL as
# its STATUS= text with READY=1.
EVIL_WORKER = r"""
import os, signal, socket, sys
EVIL = bytes.fromhex(sys.argv[1])
if len(sys.argv) == 2:
    os.execv(sys.executable, [sys.executable.encode(), __file__.encode(), sys.argv[1].encode(),
                              EVIL])
address = os.environ["NOTIFY_SOCKET"]
address = "\0" + address[1:] if address.startswith("@") else address  # abstract, as systemd's
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.sendto(b"READY=1\nSTATUS=" + EVIL, address)
while True:
    signal.pause()
"""


def assert_terminal_safe(data, what):
    """data is UTF-8 with no C0 control but newline, no DEL and no C1 control."""
    text = data.decode("utf-8")  # not UTF-8 raises: a stray 0x9b is a C1 in 8-bit terminals
    bad = sorted({f"U+{ord(c):04X}" for c in text
                  if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f})
    assert not bad, f"{what} passes {bad} to the terminal: {data!r}"


@pytest.fixture
def evil_host(start_host, tmp_path):
    script = tmp_path / "evil_worker.py"
    script.write_text(EVIL_WORKER)
    host = start_host(config(service("evil", f"{sys.executable} {script} {EVIL.hex()}",
                                     ready="notify")))
    host.wait_ready("evil", 1)
    return host


def test_worker_text_is_escaped(aerie_bin, evil_host):
    for command in (["status"], ["metrics"], ["top"]):
        result = client(aerie_bin, "-s", evil_host.socket, *command)
        assert result.returncode == 0, (command, result.stderr)
        assert_terminal_safe(result.stdout, command)
        assert b"red" in result.stdout and "café".encode() in result.stdout, result.stdout
    pid = evil_host.workers("evil")[0]["pid"]
    for json_flag in ((), ("--json",)):  # a capture of its own: the raw 0x9b too
        result = subprocess.run([aerie_bin, "metrics", "--pid", str(pid), *json_flag],
                                capture_output=True, timeout=30)
        assert result.returncode == 0, result.stderr
        assert_terminal_safe(result.stdout, ["aerie metrics", *json_flag])
        if json_flag:
            assert "?[31mred\u009b2J" in json.loads(result.stdout)[str(pid)]["command"]


def test_json_output_stays_json(aerie_bin, evil_host):
    status = evil_host.status()
    for command in (["status", "--json"], ["metrics", "--json"]):
        result = client(aerie_bin, "-s", evil_host.socket, *command)
        assert result.returncode == 0, (command, result.stderr)
        assert_terminal_safe(result.stdout, command)
        parsed = json.loads(result.stdout)
        if command[0] == "status":  # the same text, escaped only in its JSON spelling
            assert parsed["services"]["evil"]["workers"][0]["status"] == \
                status["services"]["evil"]["workers"][0]["status"]
            assert "\x1b[31mred\u009b2J" in parsed["services"]["evil"]["workers"][0]["status"]


def test_server_text_is_escaped(aerie_bin, fake_server):
    evil = EVIL.replace(b"\x9bx", b"x").decode()  # JSON carries only UTF-8
    replies = {"status": json.dumps({"host": {"pid": 1, "uptime": 1, "generation": 1},
                                     "services": {f"web{evil}": {"count": 1, "ready": 1,
                                                  "workers": [{"pid": 2, "index": 0,
                                                               "state": evil, "status": evil,
                                                               "last_exit": {}}]}}}),
               "restart": json.dumps({"ok": True, "signal": evil}),
               "default": json.dumps({"error": {"code": evil, "message": f"boom {evil}"}})}
    path = fake_server(replies=replies)  # root's: trusted, and still escaped
    for command, code in ((["status"], 0), (["status", "--check"], 0), (["metrics"], 1),
                          (["restart", "--signal", "HUP"], 0), (["top"], 1)):
        result = client(aerie_bin, "-s", path, *command)
        assert result.returncode == code, (command, result.stderr)
        assert_terminal_safe(result.stdout, command)
        assert_terminal_safe(result.stderr, command)
        assert b"red" in result.stdout + result.stderr, (command, result.stdout)


# 3. --timeout covers connect(): a host that accepts nobody is given up on -------------------


@pytest.fixture
def full_backlog(tmp_path):
    """A listening socket nobody accepts on, its backlog full: the next connect() waits."""
    path = tmp_path / "full.ipc"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(0)
    queued = []
    while True:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.setblocking(False)
        try:
            conn.connect(str(path))
        except BlockingIOError:
            conn.close()
            break
        queued.append(conn)
    yield path
    for conn in queued:
        conn.close()
    server.close()


@pytest.mark.parametrize("command", [["status"], ["top"]])
def test_timeout_covers_connect(aerie_bin, full_backlog, command):
    try:
        result = client(aerie_bin, "-s", full_backlog, "--timeout", "1", *command, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("the client hangs in connect() on a socket whose backlog is full")
    assert result.returncode == 3, result.stderr
    stderr = result.stderr.decode()
    assert f"{full_backlog}: cannot connect within 1 s" in stderr, stderr
    assert result.stdout == b""
