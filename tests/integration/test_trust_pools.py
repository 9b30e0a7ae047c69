"""The supervisor process's pools of clients as an attacker sees them: the Prometheus socket's
connections apart from the control socket's, slots kept for the operator, a cap per member of
socket_group, deadlines that bytes trickling in cannot renew, and a log that a loop of refused
connections cannot flood (src/lib/limits.h names every bound). Real users are made for the
attacker's side (useradd -M) and removed afterwards."""
import json
import select
import socket
import subprocess
import sys
import time

from hostlib import config, free_port, service, wait_for, worker_command

MAX_CLIENTS = 64  # PROTOCOL_MAX_CLIENTS
OPERATOR_RESERVED = 8  # SUPERVISOR_OPERATOR_RESERVED
MAX_PER_UID = 16  # SUPERVISOR_MAX_CLIENTS_PER_UID
HTTP_MAX_CLIENTS = 16  # SUPERVISOR_HTTP_MAX_CLIENTS
TRICKLE_LIMIT = 60.0  # seconds a trickling client may last before the test fails


# Helpers ----------------------------------------------------------------------------------


def as_user(user, script, *args, **popen):
    """Starts python running script as user (its uid, its groups); returns the Popen."""
    command = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups",
               sys.executable, "-c", script, *map(str, args)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd="/", **popen)


def web(examples_dir, **host):
    """A config of one ready = notify worker, under a [host] section of the host keywords."""
    return config(service("web", worker_command(examples_dir), count=1, ready="notify"), **host)


def read_to_eof(sock):
    """Everything sock receives until the server closes (EOF or reset)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def trickle(sock, head):
    """Sends head and then "x", one byte a second, never ending the request, until the server
    closes the connection: True then; False if it was still open after TRICKLE_LIMIT s."""
    started = time.monotonic()
    data = head
    while time.monotonic() - started < TRICKLE_LIMIT:
        byte, data = (data[:1], data[1:]) if data else (b"x", b"")
        try:
            sock.send(byte)
        except (BrokenPipeError, ConnectionResetError):
            return True
        # The pace of the attack, and the wait for the close: whichever comes first.
        if select.select([sock], [], [], 1.0)[0]:
            try:
                if not sock.recv(65536):
                    return True
            except ConnectionResetError:
                return True
    return False


def cli_status(aerie_bin, host):
    """`aerie supervisor -s SOCKET status --json` as the operator (root): the completed run."""
    return subprocess.run([aerie_bin, "supervisor", "-s", str(host.socket), "status", "--json"],
                          capture_output=True, text=True, timeout=30)


def scrape(port, request=b"GET /metrics HTTP/1.1\r\nHost: aerie\r\n\r\n"):
    """One HTTP exchange with the Prometheus socket: everything it answered, to its close."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        if request:
            sock.sendall(request)
        return read_to_eof(sock)


# The Prometheus socket beside the control socket ---------------------------------------------


def test_idle_prometheus_connections_leave_the_control_socket_to_the_operator(
        start_host, examples_dir, aerie_bin):
    port = free_port()
    host = start_host(web(examples_dir, prometheus=f"127.0.0.1:{port}"))
    host.wait_ready("web", 1)
    host.wait_log("serving Prometheus metrics")
    idle = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(100)]
    # Connections are accepted in order: once this one is answered, the hundred are placed.
    refused = scrape(port, request=None)

    result = cli_status(aerie_bin, host)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["host"]["pid"] == host.pid
    # The Prometheus socket's own pool is full: an HTTP answer, not the control socket's JSON.
    assert refused.startswith(b"HTTP/1.1 503 "), refused[:200]
    # The idle ones have a short deadline: the pool frees itself, scrapes work again.
    wait_for(lambda: scrape(port).startswith(b"HTTP/1.1 200 OK"), timeout=60, interval=0.5,
             message="a scrape answered while the idle connections stay open")
    answers = [read_to_eof(sock) for sock in idle]
    assert sum(a.startswith(b"HTTP/1.1 503 ") for a in answers) >= 100 - HTTP_MAX_CLIENTS
    assert host.status()["host"]["pid"] == host.pid


def test_http_head_that_trickles_in_is_dropped(start_host, examples_dir):
    port = free_port()
    host = start_host(web(examples_dir, prometheus=f"127.0.0.1:{port}"))
    host.wait_ready("web", 1)
    host.wait_log("serving Prometheus metrics")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        assert trickle(sock, b"GET /metrics HTTP/1.1\r\nX-Pad: "), \
            f"still open after {TRICKLE_LIMIT} s of a byte a second"
    assert scrape(port).startswith(b"HTTP/1.1 200 OK")


# The control socket ------------------------------------------------------------------------


def test_control_request_that_trickles_in_is_dropped(start_host, examples_dir):
    host = start_host(web(examples_dir))
    host.wait_ready("web", 1)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(host.socket))
        # A complete request first: between requests the client may stay; only the
        # unfinished one has a deadline.
        sock.sendall(b'{"please":"status"}\0')
        reply = b""
        while not reply.endswith(b"\0"):
            reply += sock.recv(65536)
        assert json.loads(reply[:-1])["host"]["pid"] == host.pid
        assert trickle(sock, b'{"please":"status","pad":"'), \
            f"still open after {TRICKLE_LIMIT} s of a byte a second"
    assert host.status()["host"]["pid"] == host.pid


MEMBER = r"""
import json, socket, sys
path, count = sys.argv[1], int(sys.argv[2])
held, refused = [], []
for _ in range(count):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(path)
    try:
        s.sendall(b'{"please":"status"}\0')
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused at once: the refusal is there to read
    data = b""
    try:
        while b"\0" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    reply = json.loads(data[: data.index(b"\0")])
    if "error" in reply:
        refused.append(reply["error"]["code"])
        s.close()
    else:
        held.append(s)
print(json.dumps({"held": len(held), "refused": refused}), flush=True)
sys.stdin.read()  # holds its connections until the test closes stdin
"""


def test_socket_group_members_cannot_fill_the_control_socket(world_dir, accounts, start_host,
                                                             examples_dir, aerie_bin):
    group = accounts.group()
    host = start_host(web(examples_dir, socket_mode="0660", socket_group=group),
                      directory=world_dir)
    host.wait_ready("web", 1)
    members, results = [], []
    try:
        for _ in range(4):
            member = as_user(accounts.user(groups=[group]), MEMBER, host.socket, 20,
                             stdin=subprocess.PIPE)
            members.append(member)
            line = member.stdout.readline()
            assert line, member.stderr.read()
            results.append(json.loads(line))
        # Each member holds at most its share; together they leave the operator's slots.
        shared = MAX_CLIENTS - OPERATOR_RESERVED
        assert [r["held"] for r in results] == [MAX_PER_UID] * 3 + [shared - 3 * MAX_PER_UID]
        assert all(code == "too_many_clients" for r in results for code in r["refused"])
        result = cli_status(aerie_bin, host)
        assert result.returncode == 0, result.stdout + result.stderr
        assert json.loads(result.stdout)["host"]["pid"] == host.pid
    finally:
        for member in members:
            member.stdin.close()
            member.wait(20)


LOOP = r"""
import socket, sys, time
path, seconds = sys.argv[1], float(sys.argv[2])
refused, end = 0, time.monotonic() + seconds
while time.monotonic() < end:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    data = b""
    try:
        while chunk := s.recv(4096):
            data += chunk
    except ConnectionResetError:
        pass
    s.close()
    refused += b"permission_denied" in data
print(refused)
"""


def test_refused_user_in_a_loop_is_logged_a_bounded_number_of_times(world_dir, accounts,
                                                                     start_host, examples_dir):
    host = start_host(web(examples_dir, socket_mode="0666"), directory=world_dir)
    host.wait_ready("web", 1)
    attacker = accounts.user()
    loop = as_user(attacker, LOOP, host.socket, 3)
    out, err = loop.communicate(timeout=60)
    assert loop.returncode == 0, err
    refused = int(out)
    assert refused > 10, "the loop hardly ran"

    def lines():
        return [line for line in host.log() if f"uid {attacker.pw_uid} " in line]
    # The first refusal in full, then at most a count per interval (10 s; the loop took 3).
    assert len(lines()) <= 2, "\n".join(lines()[:5]) + f"\n… {len(lines())} lines"
    assert sum("client uid" in line and "refused:" in line for line in lines()) == 1
    summary = host.wait_log(f"more refused connections from uid {attacker.pw_uid} in the last",
                            timeout=30)
    more = sum(int(line.split(" more refused")[0].split()[-1]) for line in summary)
    assert 1 + more == refused
    assert len(lines()) <= 3
    assert host.status()["host"]["pid"] == host.pid
