"""A config file is bounded input: only a regular file is read, at most CONFIG_MAX_FILE bytes of
it and CONFIG_MAX_LINE characters a line, counted before anything grows, so that neither
`aerie host FILE` nor a reload (SIGHUP) can be made to block, or to grow without end, by what
the path names. A reload that fails so leaves the serving generation as it was."""
import os
import pathlib
import shutil
import signal
import socket
import subprocess

import pytest

from hostlib import HELLO, NOBODY, Client, free_port, process_alive, service, worker_command

MAX_FILE = 1024 * 1024  # CONFIG_MAX_FILE
SERVICE = "[service:web]\ncommand = /usr/bin/touch started\nrestart = never\n"
# The peak resident size allowed to the plain binary reading a hostile config. It needs about
# 2.5 MiB; reading a 10 MiB line whole needs more than 10.
SMALL_RSS_KIB = 8 * 1024
# An address-space limit under which the plain binary runs, so that a binary which would grow
# with its input fails in allocation instead of taking the machine's memory.
AS_LIMIT = 256 * 1024 * 1024


def run_host(aerie_bin, directory, *args, **kwargs):
    return subprocess.run([aerie_bin, "host", *args], cwd=directory, capture_output=True,
                          text=True, timeout=30, **kwargs)


@pytest.fixture(scope="module")
def gnu_time():
    path = shutil.which("time", path="/usr/bin")
    assert path, "GNU time is not installed: the set-up script installs it (apt-get install time)"
    return path


def run_measured(gnu_time, aerie_plain_bin, directory, config):
    """`aerie host config` (the plain binary, under AS_LIMIT); returns (exit code, stderr
    without GNU time's line, peak resident size in KiB). GNU time is the parent so that the
    peak is aerie's own: Linux carries the parent's peak across fork and exec."""
    report = pathlib.Path(directory) / "rss.txt"
    result = subprocess.run(
        [gnu_time, "-f", "%M", "-o", str(report), "prlimit", f"--as={AS_LIMIT}",
         aerie_plain_bin, "host", config], cwd=directory, capture_output=True, text=True,
        timeout=60)
    peak = int(report.read_text().split()[-1])
    report.unlink()
    return result.returncode, result.stderr, peak


def assert_nothing_started(directory):
    assert not (directory / "started").exists(), "a worker ran"
    assert not (directory / "supervisor.ipc").exists(), "the supervisor socket was made"


def test_dev_zero_is_refused_at_once(gnu_time, aerie_plain_bin, tmp_path):
    code, stderr, peak = run_measured(gnu_time, aerie_plain_bin, tmp_path, "/dev/zero")
    assert stderr == "aerie: /dev/zero: not a regular file (a character device)\n"
    assert code == 2
    assert peak < SMALL_RSS_KIB, f"peak RSS {peak} KiB"


def test_endless_zeros_in_a_regular_file(gnu_time, aerie_plain_bin, tmp_path):
    """What /dev/zero would give, as a regular (sparse) file of 6 GiB: refused at its first
    line, after 4097 bytes."""
    with open(tmp_path / "zeros.ini", "wb") as f:
        f.truncate(6 << 30)
    code, stderr, peak = run_measured(gnu_time, aerie_plain_bin, tmp_path, "zeros.ini")
    assert stderr == "aerie: zeros.ini:1: line is longer than 4096 characters\n"
    assert code == 2
    assert peak < SMALL_RSS_KIB, f"peak RSS {peak} KiB"


def test_a_ten_mib_line(gnu_time, aerie_plain_bin, tmp_path):
    (tmp_path / "long.ini").write_text(SERVICE + "env = A=" + "v" * (10 << 20) + "\n")
    code, stderr, peak = run_measured(gnu_time, aerie_plain_bin, tmp_path, "long.ini")
    assert stderr == "aerie: long.ini:4: line is longer than 4096 characters\n"
    assert code == 2
    assert peak < SMALL_RSS_KIB, f"peak RSS {peak} KiB: the line was read whole"
    assert_nothing_started(tmp_path)


def test_a_file_of_two_mib_of_comments(aerie_bin, tmp_path):
    """Every line is valid: only the size is wrong."""
    comments = ("# " + "c" * 97 + "\n") * (2 * MAX_FILE // 100)
    (tmp_path / "big.ini").write_text(SERVICE + comments)
    result = run_host(aerie_bin, tmp_path, "big.ini")
    assert result.stderr == "aerie: big.ini: file is larger than 1048576 bytes\n"
    assert result.returncode == 2
    assert_nothing_started(tmp_path)


def test_a_file_of_exactly_the_bound_is_read_to_its_end(aerie_bin, tmp_path):
    """Its last line, an error, is the one reported."""
    padding = MAX_FILE - len(SERVICE) - len("junk\n")
    lines, rest = divmod(padding, 100)
    text = SERVICE + ("#" * 99 + "\n") * lines + ("#" * (rest - 1) + "\n" if rest else "") + \
        "junk\n"
    assert len(text) == MAX_FILE
    (tmp_path / "full.ini").write_text(text)
    result = run_host(aerie_bin, tmp_path, "full.ini")
    lines = text.count("\n")
    assert result.stderr == (f'aerie: full.ini:{lines}: expected "KEY = VALUE", "[SECTION]" or '
                             'a comment, not "junk"\n')
    assert result.returncode == 2


def test_a_fifo_is_refused_without_waiting_for_a_writer(aerie_bin, tmp_path):
    os.mkfifo(tmp_path / "fifo.ini")
    result = run_host(aerie_bin, tmp_path, "fifo.ini")
    assert result.stderr == "aerie: fifo.ini: not a regular file (a FIFO)\n"
    assert result.returncode == 2
    assert_nothing_started(tmp_path)


def test_stdin_is_read_only_when_it_is_a_file(aerie_bin, tmp_path):
    """/dev/stdin names whatever stdin is: a pipe is refused, a regular file is read."""
    text = SERVICE + "restat = always\n"
    result = run_host(aerie_bin, tmp_path, "/dev/stdin", input=text)
    assert result.stderr == "aerie: /dev/stdin: not a regular file (a FIFO)\n"
    assert result.returncode == 2
    (tmp_path / "bad.ini").write_text(text)
    with open(tmp_path / "bad.ini") as stdin:
        result = run_host(aerie_bin, tmp_path, "/dev/stdin", stdin=stdin)
    assert result.stderr.startswith('aerie: /dev/stdin:4: unknown key "restat"'), result.stderr
    assert result.returncode == 2
    assert_nothing_started(tmp_path)


def test_directory_socket_and_unreadable_file_say_what_they_said(aerie_bin, world_dir):
    (world_dir / "aerie.d").mkdir()
    result = run_host(aerie_bin, world_dir, "aerie.d")
    assert result.stderr == "aerie: aerie.d: Is a directory\n"
    assert result.returncode == 2

    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(world_dir / "sock.ini"))
        result = run_host(aerie_bin, world_dir, "sock.ini")
    assert result.stderr == "aerie: sock.ini: No such device or address\n"
    assert result.returncode == 2

    secret = world_dir / "secret.ini"
    secret.write_text(SERVICE)
    secret.chmod(0o600)
    result = subprocess.run(["setpriv", *NOBODY, aerie_bin, "host", str(secret)],
                            cwd=world_dir, capture_output=True, text=True, timeout=30)
    assert result.stderr == f"aerie: {secret}: Permission denied\n"
    assert result.returncode == 2
    assert_nothing_started(world_dir)


# Reloads -------------------------------------------------------------------------------------


def replace_with_fifo(path):
    fifo = path.with_name("next.ini")
    os.mkfifo(fifo)
    os.replace(fifo, path)


def replace_with_big_file(path):
    text = path.read_text()
    next_path = path.with_name("next.ini")
    next_path.write_text(text + ("#" * 99 + "\n") * (2 * MAX_FILE // 100))
    os.replace(next_path, path)


def replace_with_long_line(path):
    next_path = path.with_name("next.ini")
    next_path.write_text(path.read_text() + "env = A=" + "v" * (10 << 20) + "\n")
    os.replace(next_path, path)


# What replaces the config, and what the failed reload says after the file's name.
RELOADS = {
    "fifo": (replace_with_fifo, ": not a regular file (a FIFO)"),
    "two-mib": (replace_with_big_file, ": file is larger than 1048576 bytes"),
    "long-line": (replace_with_long_line, ":6: line is longer than 4096 characters"),
}


@pytest.mark.parametrize("name", list(RELOADS))
def test_reload_of_a_hostile_file_keeps_serving(start_host, aerie_bin, examples_dir, name):
    replace, message = RELOADS[name]
    port = free_port()
    good = service("web", worker_command(examples_dir, program="http_worker"), count=2,
                   listen=f"tcp:127.0.0.1:{port}", ready="notify")
    host = start_host(good)
    old = sorted(host.wait_ready("web", 2))

    replace(host.config)
    host.send_signal(signal.SIGHUP)
    line = host.wait_log("reload failed:")[0]
    assert f'"code":"config","message":"{host.config}{message}"' in line, line

    # The host's loop is free: the client answers (it would wait for the host's reply
    # forever, past this timeout, if the host were stuck in the read) ...
    result = subprocess.run([aerie_bin, "supervisor", "-s", str(host.socket), "status"],
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stderr
    # ... and the old generation serves on.
    assert sorted(host.wait_generation("web", 1, 2)) == old
    assert all(process_alive(pid) for pid in old)
    client = Client(port)
    status, _, body = client.get("/")
    client.close()
    assert status == 200 and int(HELLO.match(body).group(2)) in old

    # A good file again reloads as ever.
    host.config.unlink()
    host.config.write_text(good.replace("count = 2", "count = 3"))
    host.send_signal(signal.SIGHUP)
    assert '"scaled":["web"]' in host.wait_log("reload done:")[0]
    assert set(old) <= set(host.wait_ready("web", 3))
