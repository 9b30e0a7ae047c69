"""aerie host on a bad config: exit code 2, the exact message on stderr, and nothing started
(no child process, no socket file, no worker run)."""
import os
import pathlib
import re
import shutil
import subprocess

import pytest

from hostlib import wait_for

# A service whose worker would leave a file named "started" next to the config if it ran.
SERVICE = "[service:web]\ncommand = /usr/bin/touch started\n"
DIGITS_HINT = "expected KEY=VALUE, KEY made of letters, digits and _, not starting with a digit"

BAD_CONFIGS = {
    "unknown-key-suggestion": (
        SERVICE + "restat = always\n",
        'bad.ini:3: unknown key "restat" in [service:web] (did you mean "restart"?)'),
    "unknown-key": (
        SERVICE + "frobnicate = 1\n",
        'bad.ini:3: unknown key "frobnicate" in [service:web]'),
    "key-in-wrong-section": (
        "[host]\ncommand = ./w\n" + SERVICE,
        'bad.ini:2: unknown key "command" in [host] (it belongs in a [service:NAME] section)'),
    "key-outside-section": (
        "count = 1\n" + SERVICE,
        'bad.ini:1: key "count" is outside any section (put it under [host] or '
        "[service:NAME])"),
    "unknown-section-suggestion": (
        "[hots]\n" + SERVICE,
        "bad.ini:1: unknown section [hots] (did you mean [host]?)"),
    "unknown-section": (
        "[the host]\n" + SERVICE,
        "bad.ini:1: unknown section [the host] (expected [host] or [service:NAME])"),
    "services-typo": (
        "[services:web]\ncommand = x\n",
        "bad.ini:1: unknown section [services:web] (did you mean [service:web]?)"),
    "bad-service-name": (
        "[service:we.b]\ncommand = x\n",
        'bad.ini:1: invalid service name "we.b" (use letters, digits, _ and -)'),
    "duplicate-section": (
        SERVICE + "[service:db]\ncommand = x\n[service:web]\ncommand = y\n",
        "bad.ini:5: duplicate section [service:web] (first at line 1)"),
    "missing-command": (
        "[host]\n\n[service:web]\ncount = 2\n[service:db]\ncommand = /usr/bin/touch started\n",
        "bad.ini:3: missing command in [service:web]"),
    "bad-count": (
        SERVICE + "count = 0\n",
        'bad.ini:3: invalid count "0" in [service:web] (expected a whole number from 1 to '
        "10000)"),
    "count-not-a-number": (
        SERVICE + "count = 2x\n",
        'bad.ini:3: invalid count "2x" in [service:web] (expected a whole number from 1 to '
        "10000)"),
    "bad-restart": (
        SERVICE + "restart = sometimes\n",
        'bad.ini:3: invalid restart "sometimes" in [service:web] (expected always, on-failure '
        "or never)"),
    "bad-ready": (
        SERVICE + "ready = yes\n",
        'bad.ini:3: invalid ready "yes" in [service:web] (expected notify or none)'),
    "bad-signal": (
        SERVICE + "stop_signal = SIGFOO\n",
        'bad.ini:3: invalid stop_signal "SIGFOO" in [service:web] (expected a signal name '
        "such as TERM or INT, or its number)"),
    "bad-seconds": (
        SERVICE + "ready_timeout = 0\n",
        'bad.ini:3: invalid ready_timeout "0" in [service:web] (expected seconds, more than 0 '
        "and at most 31536000)"),
    "seconds-with-unit": (
        SERVICE + "restart_delay = 1.5s\n",
        'bad.ini:3: invalid restart_delay "1.5s" in [service:web] (expected seconds from 0 to '
        "31536000)"),
    "duplicate-key": (
        SERVICE + "count = 2\n\ncount = 3\n",
        'bad.ini:5: duplicate key "count" in [service:web] (first at line 3)'),
    "unterminated-quote": (
        "[service:web]\ncommand = sh -c 'echo\n",
        "bad.ini:2: invalid command \"sh -c 'echo\" in [service:web] (unterminated quote)"),
    "quote-cut-by-comment": (
        "[service:web]\ncommand = sh -c 'a ;b'\n",
        "bad.ini:2: invalid command \"sh -c 'a\" in [service:web] (unterminated quote; \" ;\" "
        "starts a comment, even in quotes)"),
    "empty-command": (
        "[service:web]\ncommand =\n",
        'bad.ini:2: invalid command "" in [service:web] (empty command)'),
    "bad-env-key": (
        SERVICE + "env = 1A=x\n",
        f'bad.ini:3: invalid env "1A=x" in [service:web] ({DIGITS_HINT})'),
    "env-without-value": (
        SERVICE + "env = NOVALUE\n",
        f'bad.ini:3: invalid env "NOVALUE" in [service:web] ({DIGITS_HINT})'),
    "duplicate-env": (
        SERVICE + "env = A=1\nenv = B=2\nenv = A=3\n",
        'bad.ini:5: duplicate env key "A" in [service:web]'),
    "delay-max-below-delay": (
        SERVICE + "restart_delay = 10\nrestart_delay_max = 5\n",
        "bad.ini:4: restart_delay_max (5) is less than restart_delay (10) in [service:web]"),
    "delay-above-default-max": (
        SERVICE + "restart_delay = 60\n",
        "bad.ini:3: restart_delay_max (30, the default) is less than restart_delay (60) in "
        "[service:web]"),
    "bad-listen": (
        SERVICE + "listen = udp:localhost:53\n",
        'bad.ini:3: invalid listen "udp:localhost:53" in [service:web] (expected '
        "tcp:HOST:PORT, tcp6:[ADDR]:PORT or unix:PATH)"),
    "bad-socket-mode": (
        "[host]\nsocket_mode = 0999\n" + SERVICE,
        'bad.ini:2: invalid socket_mode "0999" in [host] (expected an octal mode such as '
        "0660)"),
    "no-service": (
        "[host]\nsupervisor = x.ipc\n",
        "bad.ini: no [service:NAME] section (at least one is needed)"),
    "empty-file": (
        "",
        "bad.ini: no [service:NAME] section (at least one is needed)"),
    "junk-line": (
        SERVICE + "junk\n",
        'bad.ini:3: expected "KEY = VALUE", "[SECTION]" or a comment, not "junk"'),
    "indented-continuation": (
        SERVICE + "  --flag\n",
        'bad.ini:3: expected "KEY = VALUE", "[SECTION]" or a comment, not "--flag" (values do '
        "not continue on indented lines)"),
    "line-too-long": (
        SERVICE + "env = A=" + "x" * 5000 + "\n",
        "bad.ini:3: line is longer than 4096 characters"),
    "missing-bracket": (
        "[service:web\ncommand = x\n",
        'bad.ini:1: missing "]" at the end of the section header'),
    "first-error-wins": (
        SERVICE + "count = 0\nrestart = sometimes\n",
        'bad.ini:3: invalid count "0" in [service:web] (expected a whole number from 1 to '
        "10000)"),
}


@pytest.fixture(scope="module")
def strace():
    path = shutil.which("strace")
    assert path, "strace is not installed: the set-up script installs it (apt-get install strace)"
    return path


def run_host(aerie_bin, directory, *args, env=None):
    return subprocess.run([aerie_bin, "host", *args], cwd=directory, capture_output=True,
                          text=True, timeout=30, env=env)


def forks(strace, aerie_bin, directory, *args):
    """The fork-like system calls `aerie host ARGS` makes, and its exit code, under strace.
    LeakSanitizer can't run under ptrace: leaks are the plain run's to find."""
    trace = pathlib.Path(directory) / "forks.strace"
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    result = subprocess.run(
        [strace, "-f", "-qq", "-e", "trace=fork,vfork,clone,clone3", "-o", str(trace),
         aerie_bin, "host", *args], cwd=directory, capture_output=True, text=True, timeout=30,
        env=env)
    calls = [line for line in trace.read_text().splitlines() if line.strip()]
    trace.unlink()
    return calls, result.returncode


def assert_nothing_started(directory):
    assert not (directory / "started").exists(), "a worker ran"
    assert not (directory / "supervisor.ipc").exists(), "the supervisor socket was made"
    assert not (directory / "x.ipc").exists(), "the supervisor socket was made"


@pytest.mark.parametrize("name", list(BAD_CONFIGS))
def test_bad_config(aerie_bin, strace, tmp_path, name):
    text, message = BAD_CONFIGS[name]
    (tmp_path / "bad.ini").write_text(text)
    result = run_host(aerie_bin, tmp_path, "bad.ini")
    assert result.stderr == f"aerie: {message}\n"
    assert result.returncode == 2
    assert result.stdout == ""
    assert_nothing_started(tmp_path)
    calls, code = forks(strace, aerie_bin, tmp_path, "bad.ini")
    assert calls == [] and code == 2, calls
    assert_nothing_started(tmp_path)


def test_message_names_the_file_as_given(aerie_bin, tmp_path):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "web.ini").write_text(SERVICE + "restat = always\n")
    result = run_host(aerie_bin, tmp_path, "./conf.d/web.ini")
    assert result.stderr == ('aerie: ./conf.d/web.ini:3: unknown key "restat" in [service:web] '
                             '(did you mean "restart"?)\n')
    assert result.returncode == 2
    result = run_host(aerie_bin, tmp_path / "conf.d", str(tmp_path / "conf.d" / "web.ini"))
    assert result.stderr.startswith(f"aerie: {tmp_path}/conf.d/web.ini:3: unknown key")
    assert result.returncode == 2
    assert_nothing_started(tmp_path / "conf.d")


def test_missing_file(aerie_bin, strace, tmp_path):
    result = run_host(aerie_bin, tmp_path, "nothere.ini")
    assert result.stderr == "aerie: nothere.ini: No such file or directory\n"
    assert result.returncode == 2
    calls, code = forks(strace, aerie_bin, tmp_path, "nothere.ini")
    assert calls == [] and code == 2, calls
    assert list(tmp_path.iterdir()) == []


def test_config_is_a_directory(aerie_bin, tmp_path):
    (tmp_path / "aerie.d").mkdir()
    result = run_host(aerie_bin, tmp_path, "aerie.d")
    assert result.stderr == "aerie: aerie.d: Is a directory\n"
    assert result.returncode == 2
    assert_nothing_started(tmp_path)


def test_nul_byte(aerie_bin, tmp_path):
    (tmp_path / "bad.ini").write_bytes(b"[service:web]\ncommand = a\0b\n")
    result = run_host(aerie_bin, tmp_path, "bad.ini")
    assert result.stderr == "aerie: bad.ini:2: the line contains a NUL byte\n"
    assert result.returncode == 2
    assert_nothing_started(tmp_path)


def test_supervisor_path_too_long(aerie_bin, tmp_path):
    name = "s" * 120 + ".ipc"
    (tmp_path / "bad.ini").write_text(f"[host]\nsupervisor = {name}\n" + SERVICE)
    result = run_host(aerie_bin, tmp_path, "bad.ini")
    path = f"{tmp_path}/{name}"
    assert result.stderr == (f'aerie: bad.ini:2: supervisor path "{path}" is too long for a '
                             f"unix socket ({len(path)} bytes, at most 107)\n")
    assert result.returncode == 2
    assert_nothing_started(tmp_path)


def test_unknown_socket_group(aerie_bin, tmp_path):
    (tmp_path / "bad.ini").write_text("[host]\nsocket_group = nosuchgroup\n" + SERVICE)
    result = run_host(aerie_bin, tmp_path, "bad.ini")
    assert_nothing_started(tmp_path)
    assert re.match(r'^aerie: bad\.ini:2: .*socket_group.*"nosuchgroup"', result.stderr), \
        result.stderr
    assert result.returncode == 2


def test_good_config_does_start(aerie_bin, tmp_path):
    """The other side of assert_nothing_started: with a good config the worker does run."""
    (tmp_path / "good.ini").write_text(SERVICE + "restart = never\n")
    process = subprocess.Popen([aerie_bin, "host", "good.ini"], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: (tmp_path / "started").exists(), 10, message="the worker to run")
        assert (tmp_path / "supervisor.ipc").exists()
    finally:
        process.terminate()
        _, err = process.communicate(timeout=15)
    assert process.returncode == 0, err


# Start-up failures that are not in the file: exit 1, nothing started, nothing clobbered.

def test_supervisor_path_is_not_a_socket(aerie_bin, tmp_path):
    (tmp_path / "bad.ini").write_text("[host]\nsupervisor = x.ipc\n" + SERVICE)
    (tmp_path / "x.ipc").write_text("precious\n")
    result = run_host(aerie_bin, tmp_path, "bad.ini")
    assert result.returncode == 1, result.stderr
    assert f"{tmp_path}/x.ipc exists and is not a socket" in result.stderr
    assert (tmp_path / "x.ipc").read_text() == "precious\n"
    assert not (tmp_path / "started").exists()


def test_usage(aerie_bin, tmp_path):
    result = run_host(aerie_bin, tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("aerie host: missing CONFIG\n\nUsage: aerie host ")
    assert result.stdout == ""

    result = run_host(aerie_bin, tmp_path, "a.ini", "b.ini")
    assert result.returncode == 2
    assert result.stderr.startswith("aerie host: too many arguments\n\nUsage: aerie host ")

    result = run_host(aerie_bin, tmp_path, "--frobnicate", "a.ini")
    assert result.returncode == 2
    assert "Usage: aerie host " in result.stderr

    result = run_host(aerie_bin, tmp_path, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: aerie host ")
    assert "Exit codes:" in result.stdout
    assert result.stderr == ""
    assert list(tmp_path.iterdir()) == []
