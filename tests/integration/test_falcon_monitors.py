"""What Falcon's newest supervisor does, done by aerie for any language: utilization counters
(UtilizationMonitor), memory_total_limit and leak detection (MemoryMonitor), the tree's metrics
in the log (ProcessMonitor); and none of their timers when none of their keys is set."""
import os
import pathlib
import re
import shutil
import signal
import stat
import subprocess
import sys
import time

from hostlib import idle_syscalls, service, wait_for, worker_command

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"

# A worker in Python that uses examples/utilization.py: worker N counts N+1 requests served,
# N+1 in flight, 10*(N+1) connections, 2 open; then sleeps.
UTILIZATION_WORKER = f"""
import os, sys, time
sys.path.insert(0, {str(EXAMPLES)!r})
from utilization import Utilization
u = Utilization()
n = int(os.environ["AERIE_WORKER"]) + 1
u.add("requests_total", n)
u.add("requests_active", n)
u.add("connections_total", 10 * n)
u.add("connections_active", 2)
print("counted", os.environ["AERIE_UTILIZATION"], flush=True)
time.sleep(3600)
"""


def prometheus(host):
    reply = host.request({"please": "metrics", "format": "prometheus"})
    return reply if isinstance(reply, str) else reply["text"]


def sample(text, name, **labels):
    """The value of the sample name{labels...} (labels matched as a subset)."""
    for line in text.splitlines():
        match = re.match(r"([a-z_]+)\{(.*)\} (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
        if all(found.get(k) == str(v) for k, v in labels.items()):
            return float(match.group(3))
    raise AssertionError(f"no sample {name}{labels} in:\n{text}")


def test_utilization_per_worker_and_per_service(start_host, tmp_path):
    script = tmp_path / "counting.py"
    script.write_text(UTILIZATION_WORKER)
    host = start_host(service("web", f"{sys.executable} {script}", count=3, utilization="yes")
                      + service("plain", f"{sys.executable} -c 'import time; time.sleep(3600)'"))
    host.wait_log("counted", count=3)
    web = host.status()["services"]["web"]
    by_index = {w["index"]: w for w in web["workers"]}
    for index, worker in by_index.items():
        n = index + 1
        assert worker["utilization"] == {"connections_active": 2, "connections_total": 10 * n,
                                         "requests_active": n, "requests_total": n}
    assert web["utilization"] == {"connections_active": 6, "connections_total": 60,
                                  "requests_active": 6, "requests_total": 6, "workers": 3}
    plain = host.status()["services"]["plain"]
    assert "utilization" not in plain and "utilization" not in plain["workers"][0]

    # The segments: one per worker, in a file only the host's user may read or write.
    lines = host.wait_log("counted", count=3)
    values = sorted(line.split("counted ")[1] for line in lines)
    path = values[0].rsplit(":", 1)[0]
    assert all(v.rsplit(":", 1)[0] == path for v in values)
    assert sorted(int(v.rsplit(":", 1)[1]) for v in values) == [0, 64, 128]
    assert pathlib.Path(path).parent == host.socket.parent
    mode = os.lstat(path)
    assert stat.S_ISREG(mode.st_mode) and stat.S_IMODE(mode.st_mode) == 0o600

    text = prometheus(host)
    assert "# TYPE aerie_service_requests_active gauge" in text
    assert "# TYPE aerie_service_requests_total counter" in text
    assert sample(text, "aerie_service_requests_active", service="web") == 6
    assert sample(text, "aerie_service_connections_total", service="web") == 60
    assert sample(text, "aerie_worker_requests_total", service="web", worker=2) == 3
    assert sample(text, "aerie_worker_connections_active", service="web", worker=1) == 2
    assert 'aerie_service_requests_total{service="plain"}' not in text

    # A worker that dies: its respawn starts from a zeroed segment, and the service's totals
    # keep what it had counted (a counter does not go back).
    old = by_index[2]["pid"]
    os.kill(old, signal.SIGKILL)
    host.wait_log("counted", count=4)
    web = host.status()["services"]["web"]
    again = next(w for w in web["workers"] if w["index"] == 2)
    assert again["pid"] != old
    assert again["utilization"]["requests_total"] == 3
    assert web["utilization"]["requests_total"] == 6 + 3
    assert web["utilization"]["requests_active"] == 6
    assert host.stop() == 0
    assert not os.path.exists(path)  # removed with the host


def test_utilization_from_ruby(start_host, tmp_path):
    ruby = shutil.which("ruby")
    assert ruby, "ruby is not installed: the set-up script installs it (apt-get install ruby)"
    script = tmp_path / "counting.rb"
    script.write_text(f"""
$LOAD_PATH.unshift {str(EXAMPLES)!r}
require "utilization"
u = Utilization.new
n = ENV["AERIE_WORKER"].to_i + 1
u.add(:requests_total, n)
u.add(:requests_active, n)
u.add(:connections_total, 10 * n)
u.add(:connections_active, 2)
puts "counted"
STDOUT.flush
sleep 3600
""")
    host = start_host(service("rb", f"{ruby} {script}", count=2, utilization="yes"))
    host.wait_log("counted", count=2)
    rb = host.status()["services"]["rb"]
    for worker in rb["workers"]:
        n = worker["index"] + 1
        assert worker["utilization"] == {"connections_active": 2, "connections_total": 10 * n,
                                         "requests_active": n, "requests_total": n}
    assert rb["utilization"] == {"connections_active": 4, "connections_total": 30,
                                 "requests_active": 3, "requests_total": 3, "workers": 2}
    assert host.stop() == 0


# Three workers of about 40 MiB private each (the C example worker, whose own footprint is
# a few hundred KiB): index 0 42 MiB, 1 46 MiB, 2 40 MiB on their first start, allocated before
# READY=1, nothing extra after (a marker file says it has started before).
def sized_workers(examples_dir, tmp_path, sizes=(42, 46, 40), always=False):
    worker = examples_dir / "worker"
    marker = "" if always else (f'[ -e {tmp_path}/started.$AERIE_WORKER ] && exec {worker}; '
                                f'touch {tmp_path}/started.$AERIE_WORKER; ')
    script = tmp_path / "sized.sh"
    script.write_text(f'set -- {" ".join(map(str, sizes))}; shift $AERIE_WORKER; '
                      f'{marker}exec {worker} --allocate-first --allocate $1\n')
    return f"sh {script}"


def replaced(host):
    """The workers the budget replaced, in order: (index, private MiB) from the log."""
    return [(int(m.group(1)), float(m.group(2))) for m in
            (re.search(r"replacing web\.(\d)\[\d+\], the largest \(([\d.]+) MiB private\)", line)
             for line in host.log()) if m]


def test_memory_total_limit_replaces_largest_first_until_under(start_host, examples_dir,
                                                                tmp_path):
    host = start_host(service("web", sized_workers(examples_dir, tmp_path), count=3,
                              ready="notify", memory_total_limit="100M",
                              memory_check_interval=0.2))
    host.wait_ready("web", 3)
    line = host.wait_log("over memory_total_limit 100.0 MiB")[0]
    total = float(re.search(r"web uses ([\d.]+) MiB", line).group(1))
    assert total > 128, line  # 42 + 46 + 40 MiB and the workers' own
    host.wait_log("ready in place of web.1[")
    host.wait_generation("web", 1, 3)
    # Measured again for a while (15 checks): under the budget, nothing more is replaced.
    time.sleep(3)
    assert replaced(host) == [(1, replaced(host)[0][1])]
    assert 46 <= replaced(host)[0][1] < 47
    web = host.status()["services"]["web"]
    assert web["memory_replacements_by_cause"] == {"total_limit": 1, "free_minimum": 0, "leak": 0}
    assert web["memory_replacements"] == 1  # of every cause
    assert sorted(w["memory_replacements"] for w in web["workers"]) == [0, 0, 1]
    text = prometheus(host)
    assert sample(text, "aerie_service_memory_replacements_by_cause_total", service="web",
                  cause="total_limit") == 1
    assert sample(text, "aerie_service_memory_replacements_total", service="web") == 1
    assert host.stop() == 0


def test_memory_total_limit_two_needed(start_host, examples_dir, tmp_path):
    host = start_host(service("web", sized_workers(examples_dir, tmp_path), count=3,
                              ready="notify", memory_total_limit="60M",
                              memory_check_interval=0.2))
    host.wait_ready("web", 3)
    wait_for(lambda: len(replaced(host)) == 2, 15, message="two replacements")
    host.wait_generation("web", 1, 3)
    time.sleep(3)  # measuring: 36 and two small workers are under 60 MiB, nothing more
    assert [index for index, _ in replaced(host)] == [1, 0]  # 46 MiB, then 42 MiB
    log = host.log_text()
    # One at a time: the second is decided after the first replacement's old worker is gone.
    first_gone = re.search(r"web\.1\[\d+\] stopped", log).start()
    assert first_gone < log.index("replacing web.0")
    assert host.status()["services"]["web"]["memory_replacements_by_cause"]["total_limit"] == 2
    assert host.stop() == 0


def test_memory_total_limit_out_of_reach_backs_off(start_host, examples_dir, tmp_path):
    # Every start allocates 40 MiB again: replacing cannot help, and the waits double.
    host = start_host(service("web", sized_workers(examples_dir, tmp_path, (40, 40, 40),
                                                   always=True),
                              count=3, ready="notify", memory_total_limit="100M",
                              memory_check_interval=0.2))
    host.wait_log("looks out of reach; waiting 1 checks")
    host.wait_log("looks out of reach; waiting 2 checks", timeout=20)
    host.wait_log("looks out of reach; waiting 4 checks", timeout=30)
    log = host.log_text()
    # Each wait follows exactly one replacement.
    decisions = [l for l in host.log() if "over memory_total_limit" in l or "out of reach" in l]
    kinds = ["replace" if "over memory_total_limit" in l else "wait" for l in decisions]
    assert kinds[:6] == ["replace", "wait", "replace", "wait", "replace", "wait"], log
    assert host.stop() == 0


def test_memory_free_minimum_replaces_the_largest_of_all_services(start_host, examples_dir,
                                                                  tmp_path):
    # No machine has this much available: the check (every 10 s) always finds too little, so
    # it replaces the largest worker of any service, once; the fake cgroup and meminfo files
    # of test_host_memory.c test how available memory is read.
    host = start_host("[host]\nmemory_free_minimum = 100000G\n\n" +
                      service("web", sized_workers(examples_dir, tmp_path, (20, 30)),
                              count=2, ready="notify") +
                      service("big", worker_command(examples_dir, "--allocate-first",
                                                    "--allocate", "36"), ready="notify"))
    host.wait_ready("web", 2)
    big = host.wait_ready("big", 1)[0]
    line = host.wait_log("under memory_free_minimum 102400000.0 MiB", timeout=20)[0]
    assert f"replacing big.0[{big}], the largest worker" in line, line
    assert re.search(r"\(cgroup v[12] .*\)|\(MemAvailable\)", line), line
    host.wait_log("ready in place of big.0[")
    services = host.status()["services"]
    assert services["big"]["memory_replacements_by_cause"]["free_minimum"] == 1
    assert services["web"]["memory_replacements_by_cause"]["free_minimum"] == 0
    assert host.stop() == 0


def test_leaking_worker_is_flagged_and_replaced(start_host, tmp_path):
    # Grows by 12 MiB every 0.3 s on its first run only; its replacement stays small.
    script = tmp_path / "leaky.py"
    script.write_text(f"""
import os, socket, time
first = not os.path.exists({str(tmp_path / 'leaked')!r})
open({str(tmp_path / 'leaked')!r}, "w").close()
address = os.environ["NOTIFY_SOCKET"].replace("@", "\\0", 1)
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"READY=1", address)
kept = []
while True:
    if first and len(kept) < 8:
        kept.append(b"x" * (12 << 20))
        print("grew", len(kept) * 12, flush=True)
    time.sleep(0.3)
""")
    host = start_host(service("web", f"{sys.executable} {script}", ready="notify",
                              memory_leak_increases=3, memory_check_interval=0.2,
                              memory_metric="rss"))
    first = host.wait_ready("web", 1)[0]
    flagged = host.wait_log("leaks: it grew more than 10.0 MiB above its largest size 3 times",
                            timeout=20)[0]
    assert f"web.0[{first}]" in flagged
    increases = [l for l in host.log() if f"web.0[{first}] grew to" in l]
    assert [re.search(r"increase (\d) of 3", l).group(1) for l in increases] == ["1", "2", "3"]
    host.wait_log("ready in place of web.0[")
    second = host.wait_generation("web", 1, 1)
    assert second != [first]
    web = host.status()["services"]["web"]
    assert web["memory_replacements_by_cause"] == {"total_limit": 0, "free_minimum": 0, "leak": 1}
    time.sleep(1.5)  # measuring: the replacement does not grow and stays
    assert host.wait_generation("web", 1, 1) == second
    assert host.stop() == 0


def test_metrics_logged_every_interval(start_host, examples_dir):
    host = start_host("[host]\nmetrics_log_interval = 0.3\n\n" +
                      service("web", worker_command(examples_dir), count=2, ready="notify"))
    pids = host.wait_ready("web", 2)
    host.wait_log("metrics: 4 processes", count=2)  # the host, its supervisor, two workers
    log = host.log_text()
    for pid in [host.pid, *pids]:
        assert re.search(rf"metrics: pid {pid} \(parent \d+\) cpu [\d.]+ s .*total_size", log)
    assert host.stop() == 0


def test_config_errors_of_the_new_keys(aerie_bin, tmp_path):
    cases = [
        ("[service:web]\ncommand = true\nutilization = maybe\n",
         'bad.ini:3: invalid utilization "maybe" in [service:web] (expected yes or no)'),
        ("[service:web]\ncommand = true\nmemory_total_limit = lots\n",
         'bad.ini:3: invalid memory_total_limit "lots" in [service:web] '
         "(expected a size such as 512M, 2G or none)"),
        ("[service:web]\ncommand = true\nmemory_leak_increases = -1\n",
         'bad.ini:3: invalid memory_leak_increases "-1" in [service:web] '
         "(expected a number of increases, 0 (off) to 1000000)"),
        ("[service:web]\ncommand = true\nmemory_leak_threshold = 10Q\n",
         'bad.ini:3: invalid memory_leak_threshold "10Q" in [service:web] '
         "(expected a size such as 10M)"),
        ("[host]\nmemory_free_minimum = some\n[service:web]\ncommand = true\n",
         'bad.ini:2: invalid memory_free_minimum "some" in [host] '
         "(expected a size such as 512M, 2G or none)"),
        ("[host]\nmetrics_log_interval = soon\n[service:web]\ncommand = true\n",
         'bad.ini:2: invalid metrics_log_interval "soon" in [host] '
         "(expected seconds from 0 to 31536000)"),
    ]
    for text, message in cases:
        (tmp_path / "bad.ini").write_text(text)
        result = subprocess.run([aerie_bin, "host", "bad.ini"], cwd=tmp_path,
                                capture_output=True, text=True, timeout=10)
        assert (result.returncode, result.stderr) == (2, f"aerie: {message}\n")


def test_no_wakeups_when_no_monitor_key_is_set(start_host, examples_dir, tmp_path):
    """utilization = yes needs no timer (the host reads the segments when asked), and the
    memory keys that are set without the one that enables a check add none either."""
    host = start_host(service("web", worker_command(examples_dir), count=3, ready="notify",
                              utilization="yes", memory_leak_threshold="20M",
                              memory_leak_increases=0, memory_total_limit="none"))
    host.wait_ready("web", 3)
    assert host.status()["services"]["web"]["utilization"]["workers"] == 3
    calls = idle_syscalls(host.pid, tmp_path / "strace.txt")
    assert len(calls) <= 5, "idle host made syscalls:\n" + "\n".join(calls)
    assert host.stop() == 0


def test_utilization_for_a_worker_of_another_user_who_truncates_the_file(
        start_host, world_dir, accounts):
    """A worker with `user` opens its segment (the file is given to that user), and what it may
    then do to the file, truncate it, costs the host nothing: it reads with pread, not through a
    mapping that would SIGBUS."""
    user = accounts.user()
    script = world_dir / "counting.py"
    script.write_text(UTILIZATION_WORKER.replace(
        "time.sleep(3600)",
        "while not os.path.exists(os.environ['TRUNCATE_FLAG']): time.sleep(0.05)\n"
        "os.truncate(os.environ['AERIE_UTILIZATION'].rsplit(':', 1)[0], 0)\n"
        "print('truncated', flush=True)\n"
        "time.sleep(3600)"))
    os.chmod(script, 0o644)
    flag = world_dir / "truncate-now"
    host = start_host(service("web", f"{sys.executable} {script}", count=1, utilization="yes",
                              user=user.pw_name, env=f"TRUNCATE_FLAG={flag}"),
                      directory=world_dir)
    line = host.wait_log("counted")[0]
    path = line.split("counted ")[1].rsplit(":", 1)[0]
    assert os.stat(path).st_uid == user.pw_uid
    web = host.status()["services"]["web"]
    assert web["workers"][0]["utilization"]["requests_total"] == 1
    flag.write_text("")
    host.wait_log("truncated")
    web = host.status()["services"]["web"]  # the host still answers
    assert web["workers"][0]["utilization"] == {
        "connections_active": 0, "connections_total": 0,
        "requests_active": 0, "requests_total": 0}
    assert host.process.poll() is None
    assert host.stop() == 0
