"""The operator's control plane (SPEC.md, second round): `aerie check`, `reload` (request, client
and SIGHUP) applying the difference of the config, `stop`, `start`, `scale` and `signal` per
service, each subcommand's --help, -c CONFIG and AERIE_SOCKET, and a path that is not a socket."""
import os
import signal
import subprocess

import pytest

from hostlib import config, exists, service, wait_for, wait_gone, worker_command


@pytest.fixture
def aerie(aerie_bin):
    """aerie(*args, cwd=None, env=None) → CompletedProcess with text output."""

    def run(*args, cwd=None, env=None):
        return subprocess.run([aerie_bin, *map(str, args)], capture_output=True, text=True,
                              timeout=60, cwd=cwd, env=env)

    return run


def pids_of(host, name):
    return sorted(w["pid"] for w in host.workers(name))


def four_services(examples_dir):
    worker = worker_command(examples_dir)
    return config(
        service("same", worker, count=2, ready="notify"),
        service("grow", worker, count=1, ready="notify"),
        service("roll", worker_command(examples_dir, "--status", "v1"), count=2,
                ready="notify"),
        service("gone", worker, count=1, ready="notify"))


def test_check_good_and_bad(aerie, tmp_path, examples_dir):
    good = tmp_path / "good.ini"
    good.write_text(four_services(examples_dir))
    result = aerie("check", good)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    assert "ok: 4 services, 6 workers" in result.stdout
    assert str(tmp_path / "supervisor.ipc") in result.stdout
    assert not (tmp_path / "supervisor.ipc").exists()  # nothing bound

    bad = tmp_path / "bad.ini"
    bad.write_text("[service:web]\ncommand = x\ncont = 2\n")
    result = aerie("check", bad)
    assert result.returncode == 2
    assert f"{bad}:3: unknown key \"cont\"" in result.stderr
    assert result.stdout == ""

    # A path the host would bind, taken by a file: the host checks it at start, so does check.
    (tmp_path / "taken").write_text("")
    taken = tmp_path / "taken.ini"
    taken.write_text("[host]\nsupervisor = taken\n[service:web]\ncommand = x\n")
    result = aerie("check", taken)
    assert result.returncode == 2
    assert "is not a socket" in result.stderr

    result = aerie("check", "--help")
    assert result.returncode == 0 and result.stdout.startswith("Usage: aerie check CONFIG")


def test_reload_applies_the_difference(start_host, examples_dir, aerie):
    host = start_host(four_services(examples_dir))
    for name, count in (("same", 2), ("grow", 1), ("roll", 2), ("gone", 1)):
        host.wait_ready(name, count)
    same, grow, roll, gone = (pids_of(host, n) for n in ("same", "grow", "roll", "gone"))

    worker = worker_command(examples_dir)
    host.config.write_text(config(
        service("same", worker, count=2, ready="notify"),
        service("grow", worker, count=3, ready="notify"),
        service("roll", worker_command(examples_dir, "--status", "v2"), count=2,
                ready="notify"),
        service("added", worker, count=2, ready="notify")))
    result = aerie("supervisor", "-s", host.socket, "--json", "reload")
    assert result.returncode == 0, result.stderr
    import json
    reply = json.loads(result.stdout)
    assert reply["ok"] is True
    assert reply["started"] == ["added"]
    assert reply["stopped"] == ["gone"]
    assert reply["scaled"] == ["grow"]
    assert reply["restarted"] == ["roll"]
    assert reply["unchanged"] == ["same"]
    assert reply["not_applied"] == []

    # The reply came when it was done: no waiting needed for what it says.
    status = host.status()["services"]
    assert "gone" not in status
    wait_gone(gone)
    assert pids_of(host, "same") == same  # left alone
    now = pids_of(host, "grow")
    assert len(now) == 3 and set(grow) <= set(now)  # existing worker untouched
    assert all(w["state"] == "ready" for w in host.workers("grow"))
    rolled = host.wait_generation("roll", reply["generation"], 2)
    assert not set(rolled) & set(roll)
    assert {w["status"] for w in host.workers("roll")} == {"v2"}
    assert len(host.wait_ready("added", 2)) == 2


def test_reload_with_a_broken_config_changes_nothing(start_host, examples_dir, aerie):
    host = start_host(four_services(examples_dir))
    for name, count in (("same", 2), ("grow", 1), ("roll", 2), ("gone", 1)):
        host.wait_ready(name, count)
    before = {n: pids_of(host, n) for n in ("same", "grow", "roll", "gone")}
    generation = host.status()["host"]["generation"]
    host.config.write_text("[service:same]\ncommand = x\ncount = lots\n")
    result = aerie("supervisor", "-s", host.socket, "reload")
    assert result.returncode == 1
    assert "aerie.ini:3:" in result.stderr and "count" in result.stderr
    reply = host.request({"please": "reload"})
    assert reply["error"]["code"] == "config"
    assert "aerie.ini:3: invalid count" in reply["error"]["message"]
    assert {n: pids_of(host, n) for n in before} == before
    assert host.status()["host"]["generation"] == generation


def test_sighup_reloads_and_logs_the_result(start_host, examples_dir):
    worker = worker_command(examples_dir)
    host = start_host(config(service("web", worker, count=1, ready="notify")))
    pids = host.wait_ready("web", 1)
    host.config.write_text(config(service("web", worker, count=1, ready="notify"),
                                  service("api", worker, count=1, ready="notify")))
    host.send_signal(signal.SIGHUP)
    line = host.wait_log("reload done:")[0]
    assert '"started":["api"]' in line and '"unchanged":["web"]' in line
    assert host.wait_ready("web", 1) == pids
    host.wait_ready("api", 1)

    host.config.write_text("[service:web\n")
    host.send_signal(signal.SIGHUP)
    line = host.wait_log("reload failed:")[0]
    assert "aerie.ini:1:" in line
    assert host.wait_ready("web", 1) == pids


def test_host_keys_not_applied_are_named(start_host, examples_dir):
    worker = worker_command(examples_dir)
    host = start_host(config(service("web", worker, count=1, ready="notify")))
    host.wait_ready("web", 1)
    host.config.write_text(config(service("web", worker, count=1, ready="notify"),
                                  socket_mode="0660"))
    reply = host.request({"please": "reload"})
    assert reply["not_applied"] == ["[host] socket_mode"]
    host.wait_log("[host] socket_mode changed")


def test_stop_start_scale(start_host, examples_dir, aerie):
    worker = worker_command(examples_dir)
    host = start_host(config(service("web", worker, count=2, ready="notify"),
                             service("other", worker, count=1, ready="notify")))
    pids = host.wait_ready("web", 2)
    other = host.wait_ready("other", 1)
    cli = ("supervisor", "-s", host.socket)

    result = aerie(*cli, "stop", "web")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "stopped web\n"
    assert all(not exists(pid) for pid in pids)  # gone when the reply came
    assert host.workers("web") == []
    assert host.status()["services"]["web"]["stopped"] is True
    assert "web: 0/2 ready, 0 restarts, 0 health kills, 0 memory replacements, stopped\n" in \
        aerie(*cli, "status").stdout
    # It stays stopped: a rolling restart of everything leaves it so.
    assert host.request({"please": "restart"})["ok"] is True
    assert host.workers("web") == []
    other = host.wait_ready("other", 1)
    reply = host.request({"please": "restart", "service": "web"})
    assert "stopped" in reply["error"]["message"]

    result = aerie(*cli, "start", "web")
    assert result.returncode == 0, result.stderr
    started = [w for w in host.workers("web")]
    assert len(started) == 2 and all(w["state"] == "ready" for w in started)

    result = aerie(*cli, "scale", "web", "4")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "scaled web to 4 workers\n"
    workers = host.workers("web")
    assert sorted(w["index"] for w in workers) == [0, 1, 2, 3]
    assert all(w["state"] == "ready" for w in workers)
    kept = {w["index"]: w["pid"] for w in workers}

    reply = host.request({"please": "scale", "service": "web", "count": 1})
    assert reply == {"ok": True, "count": 1}
    workers = host.workers("web")
    assert [(w["index"], w["pid"]) for w in workers] == [(0, kept[0])]
    assert all(not exists(kept[i]) for i in (1, 2, 3))
    assert host.status()["services"]["web"]["count"] == 1
    assert host.wait_ready("other", 1) == other

    # Errors: unknown service, bad count, a start that fails.
    reply = host.request({"please": "stop", "service": "nope"})
    assert reply["error"]["code"] == "unknown_service"
    result = aerie(*cli, "start", "nope")
    assert result.returncode == 1 and "no service named \"nope\"" in result.stderr
    reply = host.request({"please": "scale", "service": "web", "count": -1})
    assert reply["error"]["code"] == "invalid_count"
    reply = host.request({"please": "scale", "service": "web", "count": "two"})
    assert reply["error"]["code"] == "invalid_count"
    result = aerie(*cli, "scale", "web", "many")
    assert result.returncode == 2 and "not a count" in result.stderr
    result = aerie(*cli, "stop")
    assert result.returncode == 2 and "stop takes SERVICE" in result.stderr


def test_busy_while_another_change_is_under_way(start_host, examples_dir):
    slow = worker_command(examples_dir, "--ready-after", "1")
    host = start_host(config(service("web", slow, count=1, ready="notify")))
    host.wait_ready("web", 1, timeout=15)
    import socket as sockets
    import json
    # A scale under way (its new worker takes 1 s to be ready), then a stop of the same
    # service on another connection: answered busy at once.
    first = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
    first.connect(str(host.socket))
    first.sendall(json.dumps({"please": "scale", "service": "web", "count": 2}).encode() + b"\0")
    wait_for(lambda: len(host.workers("web")) == 2, message="the scale under way")
    reply = host.request({"please": "stop", "service": "web"})
    assert reply["error"]["code"] == "busy"
    reply = host.request({"please": "reload"})
    assert reply["error"]["code"] == "busy"
    # A broken file is the answer even then: it is read before the busy check.
    good = host.config.read_text()
    host.config.write_text(good + "[service:other]\ncommand = /bin/true\ncount = two\n")
    reply = host.request({"please": "reload"})
    assert reply["error"]["code"] == "config", reply
    assert str(host.config) in reply["error"]["message"] and "count" in reply["error"]["message"]
    host.config.write_text(good)
    data = b""
    while not data.endswith(b"\0"):
        data += first.recv(4096)
    first.close()
    assert json.loads(data[:-1]) == {"ok": True, "count": 2}


def test_start_that_fails_is_an_error(start_host, examples_dir):
    worker = worker_command(examples_dir)
    host = start_host(config(service("web", worker, count=1, ready="notify")))
    host.wait_ready("web", 1)
    assert host.request({"please": "stop", "service": "web"}) == {"ok": True}
    host.config.write_text(config(service(
        "web", "sh -c 'exit 3'", count=1, ready="notify")))
    reply = host.request({"please": "reload"})
    assert reply["restarted"] == ["web"]  # a stopped service takes its new config
    assert host.workers("web") == []
    reply = host.request({"please": "start", "service": "web"})
    assert reply["error"]["code"] == "start_failed"
    assert "exited with status 3 before it was ready" in reply["error"]["message"]


def test_signal(start_host, examples_dir, aerie):
    worker = worker_command(examples_dir)
    host = start_host(config(service("web", worker, count=2, ready="notify")))
    pids = host.wait_ready("web", 2)
    cli = ("supervisor", "-s", host.socket)
    by_index = {w["index"]: w["pid"] for w in host.workers("web")}

    result = aerie(*cli, "--json", "signal", "CONT", "web")
    assert result.returncode == 0, result.stderr
    import json
    assert sorted(json.loads(result.stdout)["signalled"]) == sorted(pids)

    result = aerie(*cli, "signal", "TERM", "web.1")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"sent SIGTERM to web: {by_index[1]}\n"
    wait_gone([by_index[1]])
    assert exists(by_index[0]) and exists(host.pid)
    host.wait_log("web.1[%d] exited with status 0" % by_index[1])

    reply = host.request({"please": "signal", "signal": "KILL", "service": "web", "worker": 7})
    assert reply["error"]["code"] == "unknown_worker"
    reply = host.request({"please": "signal", "signal": "NOPE", "service": "web"})
    assert reply["error"]["code"] == "unknown_signal"
    reply = host.request({"please": "signal", "signal": "USR1", "service": "nope"})
    assert reply["error"]["code"] == "unknown_service"
    assert exists(host.pid)


def test_each_subcommand_has_its_own_help(aerie):
    for command, form in (("status", "status [--json]"), ("top", "top [--interval SEC]"),
                          ("reload", "reload"), ("stop", "stop SERVICE"),
                          ("start", "start SERVICE"), ("scale", "scale SERVICE COUNT"),
                          ("signal", "signal SIG SERVICE[.INDEX]"),
                          ("restart", "restart [--service NAME]"),
                          ("metrics", "metrics [--json | --prometheus]")):
        result = aerie("supervisor", command, "--help")
        assert result.returncode == 0, result.stderr
        first = result.stdout.splitlines()[0]
        assert first == f"Usage: aerie supervisor [-s SOCKET | -c CONFIG] {form}", first
        assert "Commands:" not in result.stdout
    general = aerie("supervisor", "--help")
    assert general.returncode == 0 and "Commands:" in general.stdout
    for command in ("host", "metrics", "check"):
        result = aerie(command, "--help")
        assert result.returncode == 0 and result.stdout.startswith(f"Usage: aerie {command}")


def test_getopt_errors_name_the_program(aerie):
    result = aerie("supervisor", "--bogus", "status")
    assert result.returncode == 2
    assert result.stderr.startswith("aerie supervisor: unrecognized option")
    result = aerie("host", "--bogus")
    assert result.stderr.startswith("aerie host: unrecognized option")


def test_config_option_and_environment_find_the_socket(start_host, examples_dir, aerie,
                                                        tmp_path):
    worker = worker_command(examples_dir)
    (tmp_path / "control").mkdir()
    host = start_host(config(service("web", worker, count=1, ready="notify"),
                             supervisor="control/aerie.sock"))
    host.socket = tmp_path / "control" / "aerie.sock"
    pids = host.wait_ready("web", 1)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = aerie("supervisor", "-c", host.config, "status", "--json", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    import json
    assert [w["pid"] for w in json.loads(result.stdout)["services"]["web"]["workers"]] == pids
    env = dict(os.environ, AERIE_SOCKET=str(tmp_path / "control" / "aerie.sock"))
    result = aerie("supervisor", "status", "--check", cwd=elsewhere, env=env)
    assert result.returncode == 0, result.stderr
    # -c reads the config with the host's parser: its errors are the host's.
    (elsewhere / "bad.ini").write_text("[service:x]\n")
    result = aerie("supervisor", "-c", elsewhere / "bad.ini", "status", cwd=elsewhere)
    assert result.returncode == 2 and "bad.ini:1: missing command" in result.stderr


def test_a_path_that_is_not_a_socket(aerie, tmp_path):
    (tmp_path / "aerie.ini").write_text("[service:x]\ncommand = x\n")
    result = aerie("supervisor", "-s", tmp_path / "aerie.ini", "status")
    assert result.returncode == 3
    assert "is not a socket" in result.stderr and "stale" not in result.stderr


def test_scale_and_start_of_a_finished_job_end(start_host):
    host = start_host(config(service("job", "true", count=1, restart="never")))
    host.wait_log("job.0: not restarted")
    wait_for(lambda: [w["state"] for w in host.workers("job")] == ["done"],
             message="the job done")
    assert host.request({"please": "scale", "service": "job", "count": 2}) == {
        "ok": True, "count": 2}
    assert host.request({"please": "start", "service": "job"}) == {"ok": True}
    wait_for(lambda: [w["state"] for w in host.workers("job")] == ["done", "done"],
             message="both jobs done")


def test_start_of_a_service_that_keeps_failing_reports_the_start_limit(start_host):
    """start resets the start limit; a service that dies again each time reaches it again, and
    start says so then, instead of waiting for readiness that will not come."""
    host = start_host(config(service("bad", "sh -c 'exit 3'", restart_delay=0.05,
                                     start_limit_burst=3)))
    host.wait_log("bad.0: failed:")
    reply = host.request({"please": "start", "service": "bad"}, timeout=30)
    assert reply["error"]["code"] == "start_failed", reply
    assert "bad.0 failed" in reply["error"]["message"], reply
    assert [w["state"] for w in host.workers("bad")] == ["failed"]
    assert host.log_text().count("bad.0: failed:") == 2  # once before start, once after
