"""The supervisor process, which parses every byte a client sends, keeps only what it needs once
it has started: no new privileges, a seccomp allow-list whose default is to kill the process,
and of root's capabilities only CAP_SYS_PTRACE, which reading the smaps_rollup of the host's
tree takes. What /proc says about the running process, that metrics still see every worker's
memory, and what the filter does to a syscall outside the list (`supervisor-process
--check-sandbox=PROBE` applies the same sandbox, then tries PROBE)."""
import ctypes
import os
import platform
import signal
import subprocess

import pytest

from hostlib import NOBODY, config, service, supervisor_pid, wait_for, worker_command

CAP_SYS_PTRACE = 19
KEPT = 1 << CAP_SYS_PTRACE  # the capabilities the supervisor process keeps

# What --check-sandbox tries after the sandbox is in place; each must be refused.
PROBES = ["execve", "fork", "vfork", "socket", "open-write", "kill-other", "kill-signal", "ptrace",
          "setuid", "mount"]


def proc_status(pid):
    """/proc/PID/status as {key: value}."""
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def ready_host(start_host, examples_dir, *services):
    host = start_host(config(*services))
    for name, count in (("web", 1), ("other", 1)):
        if any(f"[service:{name}]" in text for text in services):
            host.wait_ready(name, count)
    return host


def test_supervisor_process_has_no_new_privileges_a_filter_and_one_capability(
        start_host, examples_dir):
    host = ready_host(start_host, examples_dir, service("web", worker_command(examples_dir)))
    pid = supervisor_pid(host.pid)
    # The sandbox is applied once the process has started: wait for it rather than race it.
    status = wait_for(lambda: (lambda s: s if s["Seccomp"] == "2" else None)(proc_status(pid)),
                      message="the supervisor process's filter")
    assert status["NoNewPrivs"] == "1", status
    assert int(status["Seccomp_filters"]) >= 1, status
    for key in ("CapEff", "CapPrm", "CapBnd"):
        assert int(status[key], 16) == KEPT, (key, status[key])
    for key in ("CapInh", "CapAmb"):
        assert int(status[key], 16) == 0, (key, status[key])
    # Its uids stay 0, so that the socket's gate and Falcon's signal to the host work as
    # before; the file system sees nobody (the fs ids, last), with no supplementary groups.
    assert status["Uid"].split() == ["0", "0", "0", "65534"], status["Uid"]
    assert status["Gid"].split() == ["0", "0", "0", "65534"], status["Gid"]
    assert status["Groups"].strip() == "", status["Groups"]
    # The host itself is not confined.
    host_status = proc_status(host.pid)
    assert host_status["Seccomp"] == "0" and host_status["NoNewPrivs"] == "0", host_status
    # And it still serves: a request it answers itself, one it passes to the host.
    assert str(host.pid) in host.request({"please": "metrics"})
    assert host.status()["host"]["pid"] == host.pid


def test_metrics_read_memory_of_root_and_other_users_workers(start_host, examples_dir):
    host = ready_host(
        start_host, examples_dir,
        service("web", worker_command(examples_dir)),
        service("other", f"setpriv {' '.join(NOBODY)} {worker_command(examples_dir)}",
                ready="none"))
    pid = supervisor_pid(host.pid)
    wait_for(lambda: proc_status(pid)["Seccomp"] == "2", message="the supervisor's filter")
    root_worker = host.workers("web", "ready")[0]["pid"]
    other_worker = host.workers("other")[0]["pid"]
    wait_for(lambda: proc_status(other_worker)["Uid"].split()[0] == "65534",
             message="the other worker to run as nobody")
    metrics = host.request({"please": "metrics"})
    for who in (host.pid, root_worker, other_worker):
        process = metrics[str(who)]
        assert process["memory"] is not None, (who, process)
        assert process["memory"]["proportional_size"] > 0, (who, process)
        assert process["memory"]["unique_size"] > 0, (who, process)


@pytest.mark.parametrize("probe", PROBES)
def test_a_syscall_outside_the_list_kills_the_process(aerie_bin, probe):
    result = subprocess.run([aerie_bin, "supervisor-process", f"--check-sandbox={probe}"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == -signal.SIGSYS, (result.returncode, result.stderr)


def test_the_check_runs_the_syscalls_the_process_needs(aerie_bin):
    # With no probe, the check reads its own /proc status under the sandbox and prints the
    # lines that show it: what the test above kills is the filter's doing, not a broken one.
    result = subprocess.run([aerie_bin, "supervisor-process", "--check-sandbox=none"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(":\t", 1) for line in result.stdout.splitlines() if ":\t" in line)
    assert lines.get("Seccomp") == "2" and lines.get("NoNewPrivs") == "1", result.stdout
    assert int(lines["CapEff"], 16) == KEPT, result.stdout
    assert lines["Uid"].split() == ["0", "0", "0", "65534"], result.stdout
    # A thread started under the sandbox, as metrics' capture threads are, holds the same:
    # the filter, the one capability and nobody's file system ids are per thread in Linux.
    thread = dict(line[len("thread "):].split(":\t", 1) for line in result.stdout.splitlines()
                  if line.startswith("thread ") and ":\t" in line)
    assert thread.get("Seccomp") == "2" and thread.get("NoNewPrivs") == "1", result.stdout
    assert int(thread["CapEff"], 16) == KEPT and int(thread["CapBnd"], 16) == KEPT, result.stdout
    assert thread["Uid"].split() == ["0", "0", "0", "65534"], result.stdout


def test_files_only_their_owner_may_read_are_refused(aerie_bin, world_dir):
    # uid 0 without capabilities would still own root's files; the file system ids don't.
    secret = world_dir / "secret"
    secret.write_text("root only\n")
    secret.chmod(0o600)
    public = world_dir / "public"
    public.write_text("anyone\n")
    public.chmod(0o644)

    def check(path):
        return subprocess.run([aerie_bin, "supervisor-process", "--check-sandbox=read",
                               str(path)], capture_output=True, text=True, timeout=60)
    refused = check(secret)
    assert refused.returncode == 0 and "Permission denied" in refused.stderr, refused
    allowed = check(public)
    assert allowed.returncode == 1 and "not refused" in allowed.stderr, allowed


def inject_syscall(pid, number):
    """Makes pid's next syscall be number instead: ptrace stops it at a syscall's entry and
    rewrites the number, as a debugger would; the kernel checks seccomp after that stop
    (Linux 4.8 on). x86-64 only: orig_rax is the 16th register of user_regs_struct."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    seize, interrupt, syscall, getregs, setregs, detach = 0x4206, 0x4207, 24, 12, 13, 17
    wall = 0x40000000

    def ptrace(request, data=None):
        if libc.ptrace(request, pid, None, data) < 0:
            raise OSError(ctypes.get_errno(), f"ptrace {request:#x}")
    regs = (ctypes.c_ulong * 27)()
    ptrace(seize)
    ptrace(interrupt)
    os.waitpid(pid, wall)  # stopped
    ptrace(syscall)
    os.waitpid(pid, wall)  # at the entry of its next syscall (the loop's wait)
    ptrace(getregs, ctypes.addressof(regs))
    regs[15] = number
    ptrace(setregs, ctypes.addressof(regs))
    ptrace(detach)


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the registers are x86-64's")
def test_supervisor_killed_by_the_filter_is_restarted_confined(start_host, examples_dir):
    host = ready_host(start_host, examples_dir, service("web", worker_command(examples_dir)))
    first = supervisor_pid(host.pid)
    wait_for(lambda: proc_status(first)["Seccomp"] == "2", message="the supervisor's filter")
    # socket(2), which it never calls: what code that took it over would do to dial out.
    inject_syscall(first, 41)
    host.wait_log(f"supervisor[{first}] killed by signal {int(signal.SIGSYS)}")
    second = supervisor_pid(host.pid, exclude=(first,), timeout=20)
    wait_for(lambda: proc_status(second)["Seccomp"] == "2", message="the new one's filter")
    assert host.status()["host"]["pid"] == host.pid
