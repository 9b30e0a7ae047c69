"""Shared fixtures: where the binaries under test are.

`make check` sets AERIE_BIN to the sanitized build, AERIE_PLAIN_BIN to the plain one (for
valgrind) and AERIE_EXAMPLES to the built example programs; run by hand they default to build/.
"""
import os
import pathlib
import shutil
import tempfile

import pytest

from hostlib import Host

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
