"""Rolling restarts under real load: the real host, the example HTTP server (examples/http_worker.c)
on a socket the host binds once, and a load generator in threads that accounts for every request.

The load never retries: a request that raises (reset, timeout, EOF before a complete response,
refused) or answers anything but a complete 200 is a failure. A keep-alive client opens a new
connection for its next request after a response that says `Connection: close` (or after a
failure): that is HTTP, not a retry. `pytest -s` prints the totals of each test."""
import re
import signal
import socket
import threading
import time

from hostlib import (CLIENT_TIMEOUT, HELLO, Client, Incomplete, children, free_port,
                     process_alive, service, wait_for, wait_gone, worker_command)


def http_config(examples_dir, port, count=2, command=None, ready_timeout=10):
    """The web service: http_worker (or command) on a socket the host binds at port."""
    return service("web", command or worker_command(examples_dir, program="http_worker"),
                   count=count, listen=f"tcp:127.0.0.1:{port}", ready="notify",
                   ready_timeout=ready_timeout, stop_timeout=10)


# The load generator --------------------------------------------------------------------------


class Result:
    __slots__ = ("kind", "sent", "done", "outcome", "pid", "generation", "closed", "detail")

    def __init__(self, kind, sent):
        self.kind, self.sent = kind, sent
        self.done = self.pid = self.generation = self.detail = None
        self.outcome, self.closed = "ok", False


def one_request(client, kind, path):
    """One request on client; returns (Result, whether the connection may be used again)."""
    result = Result(kind, time.monotonic())
    reusable = False
    try:
        status, headers, body = client.get(path)
        match = HELLO.match(body)
        result.closed = headers.get("connection", "").lower() == "close"
        if status != 200:
            result.outcome, result.detail = "failed", f"status {status}: {body[:80]!r}"
        elif not match or headers.get("x-worker-pid") != match.group(2).decode():
            result.outcome, result.detail = "failed", f"bad body {body!r} / {headers}"
        else:
            result.pid, result.generation = int(match.group(2)), int(match.group(3))
            reusable = not result.closed
    except ConnectionResetError as e:
        result.outcome, result.detail = "reset", repr(e)
    except socket.timeout as e:
        result.outcome, result.detail = "timeout", repr(e)
    except (OSError, Incomplete, ValueError, KeyError, IndexError) as e:
        result.outcome, result.detail = "failed", repr(e)
    result.done = time.monotonic()
    return result, reusable


class Load:
    """Threads hitting 127.0.0.1:port until stop(): keep-alive loops of GET /, one connection
    per GET /, and keep-alive loops of /sleep?ms=300 (so that requests are in flight at any
    moment). Every request becomes a Result."""

    def __init__(self, port, keepalive=8, fresh=4, sleepers=4, sleep_ms=300):
        self.port = port
        self.stopping = threading.Event()
        self.results = []
        self._lock = threading.Lock()
        plan = ([("keepalive", "/", True)] * keepalive + [("fresh", "/", False)] * fresh +
                [("sleep", f"/sleep?ms={sleep_ms}", True)] * sleepers)
        self.threads = [threading.Thread(target=self._run, args=p, daemon=True) for p in plan]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def _connect(self, kind):
        """A new connection, or (None, the failed Result) if connecting failed."""
        result = Result(kind, time.monotonic())
        try:
            return Client(self.port), None
        except ConnectionResetError as e:
            result.outcome, result.detail = "reset", f"connect: {e!r}"
        except socket.timeout as e:
            result.outcome, result.detail = "timeout", f"connect: {e!r}"
        except OSError as e:
            result.outcome, result.detail = "failed", f"connect: {e!r}"
        result.done = time.monotonic()
        return None, result

    def _add(self, result):
        with self._lock:
            self.results.append(result)

    def _run(self, kind, path, keep):
        client = None
        while not self.stopping.is_set():
            if client is None:
                client, failure = self._connect(kind)
                if failure:
                    self._add(failure)
                    continue
            result, reusable = one_request(client, kind, path)
            self._add(result)
            if not (keep and reusable):
                client.close()
                client = None
        if client:
            client.close()

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(CLIENT_TIMEOUT + 5)
        assert not any(t.is_alive() for t in self.threads), "a load thread is stuck"

    def snapshot(self):
        with self._lock:
            return list(self.results)

    def wait_warm(self, requests=50):
        wait_for(lambda: len(self.results) >= requests, 10, message=f"{requests} requests")

    def failures(self):
        return [r for r in self.results if r.outcome != "ok"]

    def totals(self):
        counts = {"sent": len(self.results), "ok": 0, "failed": 0, "reset": 0, "timeout": 0,
                  "connection_close": sum(r.closed for r in self.results)}
        for r in self.results:
            counts[r.outcome] += 1
        return counts

    def report(self, name):
        totals = self.totals()
        kinds = {}
        for r in self.results:
            kinds[r.kind] = kinds.get(r.kind, 0) + 1
        line = (f"[{name}] requests sent {totals['sent']}, ok {totals['ok']}, failed "
                f"{totals['failed']}, resets {totals['reset']}, timeouts {totals['timeout']}; "
                f"answered with Connection: close {totals['connection_close']}; by kind {kinds}")
        print(line)
        return line

    def assert_clean(self, name):
        line = self.report(name)
        bad = self.failures()
        origin = min((r.sent for r in self.results), default=0)
        details = "\n".join(f"  {r.kind} at +{r.sent - origin:.3f} s: {r.outcome} {r.detail}"
                            for r in bad[:20])
        assert not bad, f"{line}\nfirst failures:\n{details}"
        assert self.totals()["sent"] > 0, line
        return line


def ready_workers(host, service="web"):
    return host.workers(service, "ready")


def wait_restart_logged(host, count, timeout=20.0):
    """Waits for the count-th end of a rolling restart or a reload (done or failed); returns
    that line."""
    def ended():
        lines = [line for line in host.log()
                 if ("rolling restart to generation" in line and " done" in line)
                 or "rolling restart failed" in line or "reload done:" in line
                 or "reload failed:" in line]
        return lines[count - 1] if len(lines) >= count else None
    try:
        return wait_for(ended, timeout, message=f"the end of rolling restart #{count}")
    except AssertionError:
        raise AssertionError(f"rolling restart #{count} did not end:\n{host.log_text()}")


# 1. Back-to-back restarts under load --------------------------------------------------------


def test_rolling_restarts_under_load_lose_no_request(start_host, examples_dir):
    port = free_port()
    host = start_host(http_config(examples_dir, port))
    pids = sorted(host.wait_ready("web", 2))
    seen = set(pids)
    # (from, to, generation, pids): a request sent after from and answered before to (after
    # the previous generation is gone, before the next restart) is answered by one of pids.
    windows = []
    drained = []  # (reply time, old generation): it answers requests in flight after the reply
    timings = []  # (restart ms, ms from the reply until the old generation is gone)

    with Load(port) as load:
        load.wait_warm()
        window_start = time.monotonic()
        # Load pacing: each generation serves the load for 0.3 s before the next restart, so
        # that its window holds answered requests and /sleep requests are in flight at the
        # restart (the drain is exercised).
        time.sleep(0.3)
        generation = 1
        for restart in range(5):
            asked = time.monotonic()
            windows.append((window_start, asked, generation, set(pids)))
            reply = host.request({"please": "restart"})
            replied = time.monotonic()
            assert reply == {"ok": True, "generation": generation + 1}, reply
            generation += 1
            old = pids
            new = sorted(w["pid"] for w in ready_workers(host)
                         if w["generation"] == generation)
            assert len(new) == 2, host.status()
            assert not set(new) & seen, f"restart {restart + 1}: a pid was reused: {new} {seen}"
            seen |= set(new)
            wait_gone(old, reaped=False, what=f"generation {generation - 1}")
            timings.append((round((replied - asked) * 1000), round((time.monotonic() - replied)
                                                                   * 1000)))
            pids = host.wait_generation("web", generation, 2, timeout=10)
            assert pids == new
            window_start = time.monotonic()
            drained.append((replied, generation - 1))
            time.sleep(0.3)  # load pacing, as above
        windows.append((window_start, time.monotonic(), generation, set(pids)))
        time.sleep(0.3)  # load pacing: the last generation's requests in flight complete
    print(f"[5 rolling restarts] (restart ms, old generation gone after ms): {timings}")
    line = load.assert_clean("5 rolling restarts")

    results = load.snapshot()
    for start, end, gen, owners in windows:
        inside = [r for r in results if start <= r.sent and r.done <= end]
        assert inside, f"no request completed in the window of generation {gen}; {line}"
        strays = [(r.pid, r.generation) for r in inside
                  if r.generation != gen or r.pid not in owners]
        assert not strays, (f"generation {gen} serves {sorted(owners)}, but requests were "
                            f"answered by {strays[:5]}; {line}")
    for replied, old_generation in drained:
        late = [r for r in results if r.generation == old_generation and r.done > replied]
        assert late, (f"no request of generation {old_generation} was still in flight at its "
                      f"restart: the drain was not exercised; {line}")
    assert any(r.closed for r in results), f"no response said Connection: close; {line}"
    assert host.status()["host"]["generation"] == 6


# 2. Restarts whose new generation fails -----------------------------------------------------


def test_failed_restarts_keep_the_old_generation_serving(start_host, examples_dir):
    port = free_port()
    http_worker = worker_command(examples_dir, program="http_worker")
    good = http_config(examples_dir, port, ready_timeout=1)
    host = start_host(good)
    old = sorted(host.wait_ready("web", 2))

    serving = {"generation": 1, "pids": old}

    def still_the_old_generation():
        assert host.wait_generation("web", serving["generation"], 2, timeout=10) == \
            serving["pids"]
        assert all(process_alive(pid) for pid in serving["pids"])
        assert host.status()["services"]["web"]["ready"] == 2
        assert host.status()["host"]["generation"] == serving["generation"]  # not the one that failed

    with Load(port, keepalive=4, fresh=2, sleepers=2) as load:
        load.wait_warm()
        # A config that does not load: nothing starts, nothing stops.
        host.config.write_text(good.replace("count = 2", "count = two"))
        host.send_signal(signal.SIGHUP)
        line = wait_restart_logged(host, 1)
        assert "reload failed:" in line and '"code":"config"' in line and \
            'invalid count \\"two\\"' in line, line
        still_the_old_generation()

        # The new workers exit 2 at once: `--listen bogus` is bad usage.
        host.config.write_text(http_config(examples_dir, port, ready_timeout=1,
                                           command=f"{http_worker} --listen bogus"))
        host.send_signal(signal.SIGHUP)
        line = wait_restart_logged(host, 2)
        assert "reload failed:" in line and "exited with status 2 before it was ready" \
            in line, line
        host.wait_log("generation 1 keeps serving")
        still_the_old_generation()

        # The socket's restart does not re-read the file, nor roll the config that failed:
        # the serving generation's config stays current, so this restart works.
        reply = host.request({"please": "restart"})
        assert reply.get("ok") is True, reply
        serving["generation"] = reply["generation"]
        serving["pids"] = host.wait_generation("web", reply["generation"], 2, timeout=10)
        wait_gone(old, reaped=False, what="the first generation")
        still_the_old_generation()

        # New workers that never say READY=1: killed at ready_timeout (1 s).
        never_ready = worker_command(examples_dir, "--no-ready")
        host.config.write_text(http_config(examples_dir, port, ready_timeout=1,
                                           command=never_ready))
        started = time.monotonic()
        host.send_signal(signal.SIGHUP)
        line = wait_restart_logged(host, 4)
        assert "reload failed:" in line and "(ready_timeout)" in line, line
        assert time.monotonic() - started >= 0.9
        host.wait_log("not ready within ready_timeout: killing it")
        still_the_old_generation()
        time.sleep(0.3)  # load pacing: the old generation serves on after four failures

        # And a good config again, changed from the one that serves (an unchanged one would
        # be left alone): the next generation takes over.
        host.config.write_text(http_config(examples_dir, port, ready_timeout=2))
        host.send_signal(signal.SIGHUP)
        line = wait_restart_logged(host, 5)
        assert "reload done:" in line and '"restarted":["web"]' in line, line
        generation = int(re.search(r'"generation":(\d+)', line).group(1))
        new = host.wait_generation("web", generation, 2, timeout=10)
        assert not set(new) & set(serving["pids"])
        wait_gone(serving["pids"], reaped=False, what="old workers")
        wait_for(lambda: any(r.generation == generation for r in load.snapshot()),
                 message=f"a response from generation {generation}")
    load.assert_clean("failed restarts")
    served = {r.generation for r in load.results}
    assert served <= {1, serving["generation"], generation} and generation in served, \
        f"responses came from generations {served}"


# 3. A reload that changes the number of workers ---------------------------------------------


def test_reload_changes_the_worker_count_under_load(start_host, examples_dir):
    port = free_port()
    host = start_host(http_config(examples_dir, port, count=2))
    old = host.wait_ready("web", 2)
    with Load(port, keepalive=4, fresh=2, sleepers=2) as load:
        load.wait_warm()
        for number, count in ((1, 3), (2, 1)):
            # Only the count changes: the service is scaled, its running workers untouched
            # (scaling down stops the highest indexes).
            by_index = {w["index"]: w["pid"] for w in host.workers("web")}
            host.config.write_text(http_config(examples_dir, port, count=count))
            host.send_signal(signal.SIGHUP)
            line = wait_restart_logged(host, number)
            assert "reload done:" in line and '"scaled":["web"]' in line, line
            status = host.status()["services"]["web"]
            assert status["count"] == count and status["ready"] == count, status
            new = {w["index"]: w["pid"] for w in status["workers"] if w["state"] == "ready"}
            assert sorted(new) == list(range(count)), status
            kept = {i: pid for i, pid in by_index.items() if i < count}
            assert {i: new[i] for i in kept} == kept, (by_index, new)
            wait_gone([pid for i, pid in by_index.items() if i >= count], reaped=False,
                      what="the highest indexes")
            generation = status["generation"]
            assert host.wait_generation("web", generation, count, timeout=10) == \
                sorted(new.values())
            old = list(new.values())
            # Load pacing: the new workers alone serve for 0.3 s before the next reload or the
            # end of the load (longer than the last 0.2 s that the check below looks at).
            time.sleep(0.3)
    load.assert_clean("count 2 -> 3 -> 1")
    last = max(r.sent for r in load.results)
    late = {r.pid for r in load.results if r.sent > last - 0.2}
    assert late <= set(old), f"late responses from {late}, the workers are {old}"


# 4. A restart asked for during another ------------------------------------------------------


def generations_alive(host_pid, service):
    """{generation: [pid]} of the host's children that are workers of service, from the
    AERIE_SERVICE and AERIE_GENERATION in their environment. (Cheaper than descendants(): the
    sampling below wants to be quick.)"""
    found = {}
    for pid in children(host_pid):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(e.split(b"=", 1) for e in f.read().split(b"\0") if b"=" in e)
        except OSError:
            continue
        if env.get(b"AERIE_SERVICE") == service.encode() and process_alive(pid):
            found.setdefault(int(env[b"AERIE_GENERATION"]), []).append(pid)
    return found


def test_restart_during_a_restart_is_queued_not_interleaved(start_host, examples_dir):
    host = start_host(service("tick", worker_command(examples_dir, "--ready-after", "0.5"),
                              count=2, ready="notify", ready_timeout=10))
    host.wait_ready("tick", 2, timeout=15)

    samples, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            alive = generations_alive(host.pid, "tick")
            try:
                listed = {(w["generation"], w["state"]) for w in host.workers("tick")}
            except (OSError, ValueError):
                listed = set()
            samples.append((time.monotonic(), alive, listed))
            time.sleep(0.01)

    replies = {}

    def ask(name):
        started = time.monotonic()
        replies[name] = (host.request({"please": "restart"}), started, time.monotonic())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        first = threading.Thread(target=ask, args=("first",))
        first.start()
        host.wait_log("rolling restart of every service asked for")
        second = threading.Thread(target=ask, args=("second",))
        second.start()
        host.wait_log("rolling restart queued behind the one under way")
        first.join(15)
        second.join(15)
        host.wait_generation("tick", 3, 2, timeout=10)
    finally:
        stop.set()
        sampler.join(5)

    assert replies["first"][0] == {"ok": True, "generation": 2}, replies
    assert replies["second"][0] == {"ok": True, "generation": 3}, replies
    # The second waited for the first, then for its own workers' 0.5 s.
    assert replies["second"][2] - replies["first"][2] >= 0.45, replies

    log = host.log()
    ready_2 = next(i for i, l in enumerate(log) if "tick: generation 2 ready" in l)
    start_3 = next(i for i, l in enumerate(log) if "started: generation 3" in l)
    assert ready_2 < start_3, "generation 3 started before generation 2 was ready"

    assert len(samples) >= 10, samples
    seen = sorted({g for _, alive, _ in samples for g in alive})
    assert seen == [1, 2, 3], seen
    # Never two generations starting at once, nor more than two generations that are starting
    # or serving: the queued restart waits until the one under way is done.
    for at, alive, listed in samples:
        starting = {g for g, state in listed if state == "starting"}
        live = {g for g, state in listed if state in ("starting", "ready")}
        assert len(starting) <= 1 and len(live) <= 2, (at, listed)
    # Processes: at most two generations alive. The old generation gets its stop signal in the
    # same step that starts the queued restart, so it may overlap the third for the moment it
    # takes to exit (this worker exits at once on SIGTERM); it must never outlive that.
    three = [(at, alive) for at, alive, _ in samples if len(alive) > 2]
    print(f"[queued restart] {len(samples)} samples, {len(three)} with 3 generations alive")
    assert all(min(alive) == 1 and sorted(alive) == [1, 2, 3] for _, alive in three), three
    if three:
        assert three[-1][0] - three[0][0] < 0.5, three
