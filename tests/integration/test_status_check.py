"""`aerie supervisor status --check`: a readiness probe (Kubernetes exec probe, Nomad check,
systemd ExecStartPost): exit 0 only when every service has as many ready workers as its count,
else 1 and one line saying what is missing."""
import subprocess

from hostlib import config, service, worker_command


def check(aerie_bin, socket, *extra):
    return subprocess.run([aerie_bin, "supervisor", "-s", str(socket), "status", "--check",
                           *extra], capture_output=True, text=True, timeout=30)


def test_ready_and_not_ready(aerie_bin, start_host, examples_dir):
    host = start_host(config(
        service("web", worker_command(examples_dir), count=2, ready="notify"),
        service("slow", worker_command(examples_dir, "--no-ready"), ready="notify",
                ready_timeout=60)))
    host.wait_ready("web", 2)
    done = check(aerie_bin, host.socket)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == "aerie supervisor: not ready: slow 0/1 ready\n"


def test_every_service_ready(aerie_bin, start_host, examples_dir):
    host = start_host(config(service("web", worker_command(examples_dir), count=2, ready="notify"),
                             service("clock", worker_command(examples_dir))))
    host.wait_ready("web", 2)
    host.wait_ready("clock", 1)
    done = check(aerie_bin, host.socket)
    assert (done.returncode, done.stdout, done.stderr) == (0, "ready: web 2/2, clock 1/1\n", "")


def test_usage_and_unreachable(aerie_bin, tmp_path):
    assert check(aerie_bin, tmp_path / "none.ipc").returncode == 3
    assert check(aerie_bin, tmp_path / "none.ipc", "--json").returncode == 2
    done = subprocess.run([aerie_bin, "supervisor", "-s", str(tmp_path / "none.ipc"), "metrics",
                           "--check"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "--check goes with status" in done.stderr
