"""Shared fixtures: where the binaries under test are.

`make check` sets AERIE_BIN to the sanitized build, AERIE_PLAIN_BIN to the plain one (for
valgrind) and AERIE_EXAMPLES to the built example programs; run by hand they default to build/.
"""
import os
import pathlib
import pwd
import shutil
import subprocess
import tempfile
import uuid

import pytest

from hostlib import Host, wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _path(variable, default):
    return pathlib.Path(os.environ.get(variable, ROOT / default))


@pytest.fixture(scope="session")
def aerie_bin():
    path = _path("AERIE_BIN", "build/aerie")
    assert path.exists(), f"{path} is missing: run make first"
    return str(path)


@pytest.fixture(scope="session")
def aerie_plain_bin():
    path = _path("AERIE_PLAIN_BIN", "build/aerie")
    assert path.exists(), f"{path} is missing: run make first"
    return str(path)


@pytest.fixture(scope="session")
def examples_dir():
    path = _path("AERIE_EXAMPLES", "build/examples")
    assert path.is_dir(), f"{path} is missing: run make first"
    return path


@pytest.fixture
def start_host(aerie_bin, tmp_path):
    """start_host(config_text, args=(), wrapper=()) → a running Host in tmp_path; every host
    still running at the end of the test is stopped (and killed if it won't stop), and its log
    printed (pytest shows it when the test failed)."""
    hosts = []

    def start(config, args=(), wrapper=(), binary=None, directory=None):
        host = Host(binary or aerie_bin, directory or tmp_path, config, args, wrapper)
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        if host.process.poll() is None:
            try:
                host.stop(timeout=20)
            except AssertionError:
                host.kill()
        print(f"--- log of host {host.pid} ---\n{host.log_text()}")


@pytest.fixture
def world_dir():
    """A directory any user may enter (pytest's tmp_path is private to its owner), for tests
    that run a client as another user."""
    if os.getuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run a client as another user")
    path = tempfile.mkdtemp(prefix="aerie-peer-")
    os.chmod(path, 0o755)
    yield pathlib.Path(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def accounts():
    """accounts.user(groups=(), own_group=False) → the pwd entry of a new throwaway user
    (useradd -M; with own_group, a group of its name is its primary one), in those groups;
    accounts.group() → the gid of a new group. All are removed at the end of the test. The
    attacker's or the worker's side of a test is a real user, never a pretend one."""
    if os.geteuid() != 0 or not shutil.which("useradd"):
        pytest.skip("needs root and useradd to make a user for the other side")
    made = {"users": [], "groups": []}

    def run(*command):
        # useradd and groupadd fail while another process holds /etc/passwd's lock: retry.
        wait_for(lambda: subprocess.run(command, capture_output=True).returncode == 0,
                 timeout=30, interval=0.1, message=" ".join(command))

    class Accounts:
        @staticmethod
        def group():
            name = f"aerie-g{uuid.uuid4().hex[:8]}"
            run("groupadd", name)
            made["groups"].append(name)
            return int(subprocess.run(["getent", "group", name], check=True,
                                      capture_output=True, text=True).stdout.split(":")[2])

        @staticmethod
        def user(groups=(), own_group=False):
            name = f"aerie-u{uuid.uuid4().hex[:8]}"
            extra = ["-G", ",".join(str(g) for g in groups)] if groups else []
            run("useradd", "-M", "-s", "/usr/sbin/nologin", *(["-U"] if own_group else []),
                *extra, name)
            made["users"].append(name)
            if own_group:
                made["groups"].append(name)
            return pwd.getpwnam(name)

    yield Accounts
    for name in made["users"]:
        wait_for(lambda: subprocess.run(["userdel", name], capture_output=True).returncode
                 in (0, 6), timeout=30, interval=0.1, message=f"userdel {name}")
    for name in made["groups"]:
        subprocess.run(["groupdel", name], capture_output=True)
