/* Unit tests of the worker life cycle (service*.c): every transition, with fake processes. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "host/service.h"
#include "lib/log.h"
#include "lib/loop.h"

#define EXITED_WITH(code) ((code) << 8) /* a wait status */
#define KILLED_BY(signal) (signal)
#define MAX_KILLS 64

/* The fake processes and what the service told its owner. */
struct fake {
	struct loop *loop;
	struct service *service;
	pid_t next_pid;
	unsigned spawns;      /* successful */
	unsigned mark;	      /* for more_spawns */
	unsigned spawn_fails; /* failures still to inject */
	struct {
		pid_t pid;
		int signal;
	} kills[MAX_KILLS];
	size_t kill_count;
	pid_t heavy_pid; /* the one over any memory_limit */
	/* fake_footprint: private bytes by pid - 1000 (0: small_private), and what each
	 * measurement of heavy_pid adds to its size (a leak). */
	uint64_t private_of[16];
	uint64_t small_private;
	uint64_t growth, grown;
	unsigned events[SERVICE_CHANGED + 1];
	char message[512];
	/* run_until */
	bool (*until)(struct fake *fake);
	struct loop_timer deadline;
	bool timed_out;
};

static int
fake_spawn(void *data, struct worker *worker, struct loop *loop, const struct worker_exec *exec)
{
	struct fake *fake = data;
	(void)loop;
	assert_non_null(exec->argv[0]);
	if (fake->spawn_fails > 0) {
		fake->spawn_fails--;
		return -EAGAIN;
	}
	fake->spawns++;
	worker->pid = fake->next_pid++;
	return 0;
}

static void
fake_kill(void *data, const struct worker *worker, int signal)
{
	struct fake *fake = data;
	assert_true(worker->pid > 0);
	assert_true(fake->kill_count < MAX_KILLS);
	fake->kills[fake->kill_count].pid = worker->pid;
	fake->kills[fake->kill_count++].signal = signal;
}

/* kill_mode = main: recorded as a negative signal, to tell it from the group's. */
static void
fake_kill_main(void *data, const struct worker *worker, int signal)
{
	fake_kill(data, worker, -signal);
}

static void
fake_kill_group(void *data, pid_t pgid)
{
	(void)data;
	assert_true(pgid > 0);
}

static uint64_t
fake_memory(void *data, pid_t pid, enum config_memory_metric metric)
{
	struct fake *fake = data;
	(void)metric;
	return pid == fake->heavy_pid ? 1000 : 10;
}

static bool
fake_footprint(void *data, pid_t pid, enum config_memory_metric metric,
	       struct worker_footprint *ret_footprint)
{
	struct fake *fake = data;
	(void)metric;
	size_t i = (size_t)(pid - 1000);
	uint64_t private_size =
	    i < 16 && fake->private_of[i] ? fake->private_of[i] : fake->small_private;
	if (pid == fake->heavy_pid)
		private_size += fake->grown += fake->growth;
	*ret_footprint = (struct worker_footprint){
	    .size = private_size + 2, .shared_clean = 1 + i % 3, .private_size = private_size};
	return true;
}

static void
on_event(struct service *service, enum service_event event, const char *message, void *data)
{
	struct fake *fake = data;
	(void)service;
	fake->events[event]++;
	if (event != SERVICE_CHANGED)
		snprintf(fake->message, sizeof(fake->message), "%s", message ? message : "");
}

/* The host's hook, in small: deliver what is queued, then see whether the test is done. */
static void
before_wait(struct loop *loop, void *data)
{
	struct fake *fake = data;
	while (service_dispatch(fake->service))
		;
	if (fake->until && fake->until(fake))
		loop_quit(loop);
}

static void
on_deadline(struct loop *loop, void *data)
{
	struct fake *fake = data;
	fake->timed_out = true;
	loop_quit(loop);
}

/* Runs the loop until until(fake) holds; fails after a second. */
static void
run_until(struct fake *fake, bool (*until)(struct fake *fake))
{
	fake->until = until;
	fake->timed_out = false;
	assert_int_equal(loop_timer_start(fake->loop, &fake->deadline, 1.0), 0);
	assert_int_equal(loop_run(fake->loop), 0);
	loop_timer_stop(fake->loop, &fake->deadline);
	fake->until = NULL;
	assert_false(fake->timed_out);
}

static bool
never(struct fake *fake)
{
	(void)fake;
	return false;
}

/* Lets seconds pass with the loop running (timers fire). */
static void
run_for(struct fake *fake, double seconds)
{
	fake->until = never;
	assert_int_equal(loop_timer_start(fake->loop, &fake->deadline, seconds), 0);
	assert_int_equal(loop_run(fake->loop), 0);
	fake->until = NULL;
}

static void
settle(struct fake *fake)
{
	while (service_dispatch(fake->service))
		;
}

static char *worker_argv[] = {"worker", NULL};

static struct config_service
base_config(unsigned count, enum config_ready ready)
{
	return (struct config_service){
	    .name = "web",
	    .argv = worker_argv,
	    .count = count,
	    .ready = ready,
	    .ready_timeout = 0.05,
	    .restart = CONFIG_RESTART_ALWAYS,
	    .restart_delay = 0.01,
	    .restart_delay_max = 1.0,
	    .stop_signal = SIGTERM,
	    .stop_timeout = 0.05,
	    .memory_check_interval = 10.0,
	};
}

static struct fake *
fake_new(const struct config_service *config)
{
	struct fake *fake = calloc(1, sizeof(*fake));
	assert_non_null(fake);
	fake->next_pid = 1000;
	assert_int_equal(loop_new(&fake->loop), 0);
	loop_timer_init(&fake->deadline, on_deadline, fake);
	loop_before_wait(fake->loop, before_wait, fake);
	struct spawner spawner = {
	    .spawn = fake_spawn,
	    .kill = fake_kill,
	    .kill_main = fake_kill_main,
	    .kill_group = fake_kill_group,
	    .memory = fake_memory,
	    .footprint = NULL,
	    .data = fake,
	};
	assert_int_equal(service_new(config, fake->loop, "/run/notify", &spawner, on_event, fake,
				     &fake->service),
			 0);
	return fake;
}

static void
fake_free(struct fake *fake)
{
	service_free(fake->service);
	loop_timer_stop(fake->loop, &fake->deadline);
	loop_free(fake->loop);
	free(fake);
}

static struct worker *
worker_at(struct fake *fake, size_t i)
{
	assert_true(i < fake->service->worker_count);
	return fake->service->workers[i];
}

static int
last_signal_to(const struct fake *fake, pid_t pid)
{
	for (size_t i = fake->kill_count; i > 0; i--)
		if (fake->kills[i - 1].pid == pid)
			return fake->kills[i - 1].signal;
	return 0;
}

/* Seconds until the worker's deadline. */
static double
deadline_in(const struct worker *worker)
{
	assert_true(loop_timer_armed(&worker->timer));
	return (double)(int64_t)(worker->timer.deadline - loop_now()) / 1e9;
}

static void
exit_worker(struct fake *fake, struct worker *worker, int status)
{
	assert_true(service_child_exited(fake->service, worker->pid, status));
}

static void
test_start_ready_notify(void **state)
{
	(void)state;
	struct config_service config = base_config(2, CONFIG_READY_NOTIFY);
	struct fake *fake = fake_new(&config);
	assert_int_equal(service_start(fake->service, 1), 0);
	assert_int_equal(fake->spawns, 2);
	struct worker *worker = worker_at(fake, 0);
	assert_int_equal(worker->state, WORKER_STARTING);
	assert_true(loop_timer_armed(&worker->timer)); /* ready_timeout */
	assert_true(service_notified(fake->service, worker->pid, true, false, "warming"));
	assert_int_equal(worker->state, WORKER_READY);
	assert_string_equal(worker->status_text, "warming");
	assert_false(loop_timer_armed(&worker->timer));
	assert_int_equal(service_ready_count(fake->service), 1);
	assert_false(service_notified(fake->service, 4242, true, false, NULL));
	settle(fake);
	assert_int_equal(fake->events[SERVICE_CHANGED], 1); /* once for the whole turn */
	fake_free(fake);
}

static void
test_start_ready_none(void **state)
{
	(void)state;
	struct config_service config = base_config(3, CONFIG_READY_NONE);
	struct fake *fake = fake_new(&config);
	assert_int_equal(service_start(fake->service, 1), 0);
	/* Ready is an event raised by the start: it waits for the dispatch. */
	assert_int_equal(worker_at(fake, 0)->state, WORKER_STARTING);
	settle(fake);
	assert_int_equal(service_ready_count(fake->service), 3);
	fake_free(fake);
}

static bool
first_killed(struct fake *fake)
{
	return fake->kill_count > 0;
}

static bool
more_spawns(struct fake *fake)
{
	return fake->spawns > fake->mark;
}

/* Runs the loop until the next successful spawn. */
static void
run_until_spawn(struct fake *fake)
{
	fake->mark = fake->spawns;
	run_until(fake, more_spawns);
}

static void
test_ready_timeout_kills_and_restarts(void **state)
{
	(void)state;
	struct config_service config = base_config(1, CONFIG_READY_NOTIFY);
	struct fake *fake = fake_new(&config);
	assert_int_equal(service_start(fake->service, 1), 0);
	struct worker *worker = worker_at(fake, 0);
	pid_t pid = worker->pid;
	run_until(fake, first_killed);
	assert_int_equal(last_signal_to(fake, pid), SIGKILL);
	assert_true(worker->ready_timed_out);
	assert_int_equal(worker->state, WORKER_STARTING); /* until its exit */
	exit_worker(fake, worker, KILLED_BY(SIGKILL));
	assert_int_equal(worker->state, WORKER_BACKOFF);
	assert_int_equal(worker->pid, 0);
	assert_int_equal(worker->restarts, 1);
	run_until_spawn(fake);
	assert_int_equal(worker->state, WORKER_STARTING);
	assert_int_not_equal(worker->pid, pid);
	assert_false(worker->ready_timed_out);
	fake_free(fake);
}

static bool
first_killed_twice(struct fake *fake)
{
	return fake->kill_count > 1;
}

static bool
no_workers(struct fake *fake)
{
	return fake->service->worker_count == 0;
}

static void
test_stop_timeout_then_sigkill_then_removed(void **state)
{
	(void)state;
	struct config_service config = base_config(1, CONFIG_READY_NONE);
	config.stop_signal = SIGINT;
	struct fake *fake = fake_new(&config);
	assert_int_equal(service_start(fake->service, 1), 0);
	settle(fake);
	struct worker *worker = worker_at(fake, 0);
	pid_t pid = worker->pid;
	service_stop(fake->service);
	assert_int_equal(worker->state, WORKER_READY); /* the stop is queued */
	settle(fake);
	assert_int_equal(worker->state, WORKER_STOPPING);
	assert_int_equal(last_signal_to(fake, pid), SIGINT);
	fake->kill_count = 0;
	run_until(fake, first_killed); /* stop_timeout */
	assert_int_equal(last_signal_to(fake, pid), SIGKILL);
	exit_worker(fake, worker, KILLED_BY(SIGKILL));
	assert_int_equal(fake->service->worker_count, 0);
	assert_int_equal(fake->events[SERVICE_STOPPED], 0); /* told from the dispatch */
	run_until(fake, no_workers);
	assert_int_equal(fake->events[SERVICE_STOPPED], 1);
	assert_int_equal(fake->service->removed_count, 0); /* freed there */
	fake_free(fake);
}

static void
test_stop_in_backoff(void **state)
{
	(void)state;
	struct config_service config = base_config(2, CONFIG_READY_NONE);
	config.restart_delay = 5.0;
	struct fake *fake = fake_new(&config);
	assert_int_equal(service_start(fake->service, 1), 0);
	settle(fake);
	exit_worker(fake, worker_at(fake, 0), EXITED_WITH(1));
	exit_worker(fake, worker_at(fake, 1), EXITED_WITH(1));
	assert_int_equal(worker_at(fake, 1)->state, WORKER_BACKOFF);
	size_t kills = fake->kill_count;
	service_stop(fake->service);
	settle(fake);
	assert_int_equal(fake->service->worker_count, 0);
	assert_int_equal(fake->kill_count, kills); /* nothing ran: nothing to signal */
	assert_int_equal(fake->events[SERVICE_STOPPED], 1);
	fake_free(fake);
}

static void
test_kill(void **state)
{
	(void)state;
	struct config_service config = base_config(2, CONFIG_READY_NONE);
	struct fake *fake = fake_new(&config);
	assert_int_equal(service_start(fake->service, 1), 0);
	settle(fake);
	service_stop(fake->service);
	settle(fake);
	service_kill(fake->service);
	settle(fake);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(worker_at(fake, i)->state, WORKER_STOPPING);
		assert_int_equal(last_signal_to(fake, worker_at(fake, i)->pid), SIGKILL);
	}
	exit_worker(fake, worker_at(fake, 1), KILLED_BY(SIGKILL));
	exit_worker(fake, worker_at(fake, 0), KILLED_BY(SIGKILL));
	settle(fake);
	assert_int_equal(fake->events[SERVICE_STOPPED], 1);
	fake_free(fake);
}

static void
test_restart_policies(void **state)
{
	(void)state;
	struct {
		enum config_restart restart;
		int status;
		enum worker_state after;
	} cases[] = {
	    {CONFIG_RESTART_ALWAYS, EXITED_WITH(0), WORKER_BACKOFF},
	    {CONFIG_RESTART_ALWAYS, EXITED_WITH(3), WORKER_BACKOFF},
	    {CONFIG_RESTART_ON_FAILURE, EXITED_WITH(0), WORKER_DONE},
	    {CONFIG_RESTART_ON_FAILURE, EXITED_WITH(3), WORKER_BACKOFF},
	    {CONFIG_RESTART_ON_FAILURE, KILLED_BY(SIGSEGV), WORKER_BACKOFF},
	    {CONFIG_RESTART_NEVER, EXITED_WITH(0), WORKER_DONE},
	    {CONFIG_RESTART_NEVER, EXITED_WITH(3), WORKER_EXITED},
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct config_service config = base_config(1, CONFIG_READY_NONE);
		config.restart = cases[c].restart;
		struct fake *fake = fake_new(&config);
		assert_int_equal(service_start(fake->service, 1), 0);
		settle(fake);
		struct worker *worker = worker_at(fake, 0);
		exit_worker(fake, worker, cases[c].status);
		assert_int_equal(worker->state, cases[c].after);
		assert_int_equal(worker->exit_status, cases[c].status);
		assert_int_equal(fake->service->restarts, cases[c].after == WORKER_BACKOFF);
		/* An exited worker goes away with the stop. */
		service_stop(fake->service);
		settle(fake);
		assert_int_equal(fake->service->worker_count, 0);
		assert_int_equal(fake->events[SERVICE_STOPPED], 1);
		fake_free(fake);
	}
}

static void
test_backoff_doubles_within_jitter(void **state)
{
	(void)state;
	struct config_service config = base_config(1, CONFIG_READY_NONE);
	config.restart_delay = 0.01;
	config.restart_delay_max = 0.05;
	struct fake *fake = fake_new(&config);
	assert_int_equal(service_start(fake->service, 1), 0);
	settle(fake);
	struct worker *worker = worker_at(fake, 0);
	double expected[] = {0.01, 0.02, 0.04, 0.05, 0.05};
	for (unsigned i = 0; i < 5; i++) {
		exit_worker(fake, worker, EXITED_WITH(1));
		assert_int_equal(worker->failures, i + 1);
		double delay = deadline_in(worker);
		assert_true(delay <= expected[i] + 1e-6);
		assert_true(delay >= expected[i] / 2 - 0.005); /* less what ran since */
		run_until_spawn(fake);
		assert_int_equal(worker->state, WORKER_READY);
	}
	fake_free(fake);
}

static void
test_backoff_reset_after_uptime(void **state)
{
	(void)state;
	struct config_service config = base_config(1, CONFIG_READY_NONE);
	config.restart_delay = 0.01;
	struct fake *fake = fake_new(&config);
	fake->service->backoff_reset = 0.03;
	assert_int_equal(service_start(fake->service, 1), 0);
	settle(fake);
	struct worker *worker = worker_at(fake, 0);
	exit_worker(fake, worker, EXITED_WITH(1));
	assert_int_equal(worker->failures, 1);
	run_until_spawn(fake);
	exit_worker(fake, worker, EXITED_WITH(1));
	assert_int_equal(worker->failures, 2);
	run_until_spawn(fake);
	run_for(fake, 0.04); /* up longer than backoff_reset */
	unsigned spawns = fake->spawns;
	exit_worker(fake, worker, EXITED_WITH(1));
	assert_int_equal(worker->failures, 1);
	assert_false(loop_timer_armed(&worker->timer)); /* back at once: */
	assert_int_equal(worker->state, WORKER_BACKOFF);
	settle(fake);
	assert_int_equal(fake->spawns, spawns + 1);
	assert_int_equal(worker->restarts, 3);
	fake_free(fake);
}

static bool
spawned_once(struct fake *fake)
{
	return fake->spawns == 1;
}

static void
test_spawn_failure_retried(void **state)
{
	(void)state;
	struct config_service config = base_config(1, CONFIG_READY_NOTIFY);
	struct fake *fake = fake_new(&config);
	fake->service->spawn_retry_delay = 0.02;
	fake->spawn_fails = 1;
	assert_int_equal(service_start(fake->service, 1), 0);
	struct worker *worker = worker_at(fake, 0);
	assert_int_equal(worker->state, WORKER_BACKOFF);
	assert_int_equal(worker->pid, 0);
	assert_true(deadline_in(worker) >= 0.015);
	run_until(fake, spawned_once);
	assert_int_equal(worker->state, WORKER_STARTING);
	assert_true(worker->pid > 0);
	fake_free(fake);
}

static void
ready_all(struct fake *fake, unsigned generation)
{
	for (size_t i = 0; i < fake->service->worker_count; i++) {
		struct worker *worker = worker_at(fake, i);
		if (worker->generation == generation && worker->state == WORKER_STARTING)
			assert_true(
			    service_notified(fake->service, worker->pid, true, false, NULL));
	}
}

static size_t
count_in(struct fake *fake, unsigned generation, enum worker_state state)
{
	size_t n = 0;
	for (size_t i = 0; i < fake->service->worker_count; i++)
		n += worker_at(fake, i)->generation == generation &&
		     worker_at(fake, i)->state == state;
	return n;
}

static void
exit_stopping(struct fake *fake)
{
	for (size_t i = fake->service->worker_count; i > 0; i--)
		if (worker_at(fake, i - 1)->state == WORKER_STOPPING)
			exit_worker(fake, worker_at(fake, i - 1), EXITED_WITH(0));
}

static void
test_roll_done(void **state)
{
	(void)state;
	struct config_service config = base_config(2, CONFIG_READY_NOTIFY);
	struct fake *fake = fake_new(&config);
	assert_int_equal(service_start(fake->service, 1), 0);
	ready_all(fake, 1);
	struct config_service next = base_config(2, CONFIG_READY_NOTIFY);
	next.stop_timeout = 5.0;
	assert_int_equal(service_roll(fake->service, 2, &next), 0);
	assert_int_equal(service_roll(fake->service, 3, &next), -EBUSY);
	assert_int_equal(count_in(fake, 2, WORKER_STARTING), 2);
	ready_all(fake, 2);
	/* Nothing is told from inside the notify: the roll's end waits for the dispatch. */
	assert_int_equal(fake->events[SERVICE_ROLL_DONE], 0);
	assert_int_equal(count_in(fake, 1, WORKER_READY), 2);
	settle(fake);
	assert_int_equal(fake->events[SERVICE_ROLL_DONE], 1);
	assert_int_equal(fake->service->generation, 2);
	assert_ptr_equal(fake->service->config, &next);
	assert_int_equal(count_in(fake, 1, WORKER_STOPPING), 2);
	assert_int_equal(service_ready_count(fake->service), 2);
	exit_stopping(fake);
	settle(fake);
	assert_int_equal(fake->service->worker_count, 2);
	assert_int_equal(fake->service->roll_generation, 0);
	fake_free(fake);
}

static void
test_roll_ready_none_done_in_dispatch(void **state)
{
	(void)state;
	struct config_service config = base_config(2, CONFIG_READY_NONE);
	struct fake *fake = fake_new(&config);
	assert_int_equal(service_start(fake->service, 1), 0);
	settle(fake);
	assert_int_equal(service_roll(fake->service, 2, &config), 0);
	assert_int_equal(fake->events[SERVICE_ROLL_DONE], 0);
	settle(fake);
	assert_int_equal(fake->events[SERVICE_ROLL_DONE], 1);
	assert_int_equal(count_in(fake, 1, WORKER_STOPPING), 2);
	fake_free(fake);
}

static void
test_roll_failed_old_keeps_serving(void **state)
{
	(void)state;
	struct config_service config = base_config(2, CONFIG_READY_NOTIFY);
	struct fake *fake = fake_new(&config);
	assert_int_equal(service_start(fake->service, 1), 0);
	ready_all(fake, 1);
	assert_int_equal(service_roll(fake->service, 2, &config), 0);
	struct worker *failing = NULL, *other = NULL;
	for (size_t i = 0; i < fake->service->worker_count; i++)
		if (worker_at(fake, i)->generation == 2)
			*(failing ? &other : &failing) = worker_at(fake, i);
	exit_worker(fake, failing, EXITED_WITH(2));
	settle(fake);
	assert_int_equal(fake->events[SERVICE_ROLL_FAILED], 1);
	assert_non_null(strstr(fake->message, "web: web.0["));
	assert_non_null(strstr(fake->message, "exited with status 2 before it was ready"));
	assert_int_equal(other->state, WORKER_STOPPING);
	assert_int_equal(fake->service->generation, 1);
	assert_int_equal(count_in(fake, 1, WORKER_READY), 2);
	assert_int_equal(service_ready_count(fake->service), 2);
	exit_stopping(fake);
	settle(fake);
	assert_int_equal(fake->service->worker_count, 2);
	/* A ready timeout fails a roll too. */
	assert_int_equal(service_roll(fake->service, 3, &config), 0);
	fake->kill_count = 0;
	run_until(fake, first_killed);
	struct worker *late = NULL;
	for (size_t i = 0; i < fake->service->worker_count; i++)
		if (worker_at(fake, i)->ready_timed_out && !late)
			late = worker_at(fake, i);
	assert_non_null(late);
	assert_int_equal(late->generation, 3);
	exit_worker(fake, late, KILLED_BY(SIGKILL));
	settle(fake);
	assert_int_equal(fake->events[SERVICE_ROLL_FAILED], 2);
	assert_non_null(strstr(fake->message, "(ready_timeout) before it was ready"));
	fake_free(fake);
}

static void
test_roll_in_batches(void **state)
{
	(void)state;
	struct config_service config = base_config(3, CONFIG_READY_NOTIFY);
	config.rolling_batch = 1;
	struct fake *fake = fake_new(&config);
	assert_int_equal(service_start(fake->service, 1), 0);
	ready_all(fake, 1);
	assert_int_equal(service_roll(fake->service, 2, &config), 0);
	for (unsigned step = 0; step < 3; step++) {
		/* One new worker at a time; capacity never below count. */
		assert_int_equal(count_in(fake, 2, WORKER_STARTING), 1);
		assert_int_equal(count_in(fake, 1, WORKER_READY) + count_in(fake, 2, WORKER_READY),
				 3);
		ready_all(fake, 2);
		settle(fake);
		assert_int_equal(count_in(fake, 1, WORKER_STOPPING), 1);
		exit_stopping(fake);
		settle(fake);
	}
	assert_int_equal(fake->events[SERVICE_ROLL_DONE], 1);
	assert_int_equal(fake->service->worker_count, 3);
	assert_int_equal(fake->service->generation, 2);
	/* Failed in its second batch: the one already ready stays and serves. */
	assert_int_equal(service_roll(fake->service, 3, &config), 0);
	ready_all(fake, 3);
	settle(fake);
	exit_stopping(fake);
	struct worker *second = worker_at(fake, fake->service->worker_count - 1);
	assert_int_equal(second->generation, 3);
	assert_int_equal(second->state, WORKER_STARTING);
	exit_worker(fake, second, EXITED_WITH(1));
	settle(fake);
	assert_int_equal(fake->events[SERVICE_ROLL_FAILED], 1);
	assert_int_equal(count_in(fake, 3, WORKER_READY), 1);
	assert_int_equal(count_in(fake, 2, WORKER_READY), 2);
	assert_int_equal(fake->service->worker_count, 3);
	fake_free(fake);
}

static void
test_roll_aborted_by_stop(void **state)
{
	(void)state;
	struct config_service config = base_config(1, CONFIG_READY_NOTIFY);
	struct fake *fake = fake_new(&config);
	assert_int_equal(service_start(fake->service, 1), 0);
	ready_all(fake, 1);
	assert_int_equal(service_roll(fake->service, 2, &config), 0);
	service_stop(fake->service);
	assert_int_equal(service_roll(fake->service, 3, &config), -ESHUTDOWN);
	settle(fake);
	assert_int_equal(fake->events[SERVICE_ROLL_FAILED], 1);
	assert_non_null(strstr(fake->message, "the host is stopping"));
	assert_int_equal(count_in(fake, 1, WORKER_STOPPING) + count_in(fake, 2, WORKER_STOPPING),
			 2);
	exit_stopping(fake);
	settle(fake);
	assert_int_equal(fake->events[SERVICE_STOPPED], 1);
	fake_free(fake);
}

static bool
health_killed(struct fake *fake)
{
	return fake->kill_count > 0;
}

static void
test_health_timeout(void **state)
{
	(void)state;
	struct config_service config = base_config(1, CONFIG_READY_NOTIFY);
	config.health_timeout = 0.05;
	struct fake *fake = fake_new(&config);
	assert_int_equal(service_start(fake->service, 1), 0);
	struct worker *worker = worker_at(fake, 0);
	assert_true(service_notified(fake->service, worker->pid, true, false, NULL));
	assert_true(deadline_in(worker) > 0.04);
	run_for(fake, 0.03);
	assert_true(service_notified(fake->service, worker->pid, false, true, NULL));
	assert_true(deadline_in(worker) > 0.04); /* pushed back */
	assert_int_equal(fake->kill_count, 0);
	run_until(fake, health_killed);
	assert_int_equal(last_signal_to(fake, worker->pid), SIGKILL);
	assert_true(worker->unhealthy);
	assert_int_equal(worker->health_kills, 1);
	/* A late WATCHDOG=1 does not save it. */
	assert_true(service_notified(fake->service, worker->pid, false, true, NULL));
	assert_false(loop_timer_armed(&worker->timer));
	exit_worker(fake, worker, KILLED_BY(SIGKILL));
	assert_int_equal(worker->state, WORKER_BACKOFF);
	fake_free(fake);
}

static void
test_memory_replacement(void **state)
{
	(void)state;
	struct config_service config = base_config(2, CONFIG_READY_NOTIFY);
	config.memory_limit = 100;
	config.memory_check_interval = 0.01;
	struct fake *fake = fake_new(&config);
	assert_int_equal(service_start(fake->service, 1), 0);
	ready_all(fake, 1);
	struct worker *heavy = worker_at(fake, 1);
	fake->heavy_pid = heavy->pid;
	run_until_spawn(fake); /* the replacement, from the periodic check */
	assert_int_equal(fake->service->worker_count, 3);
	struct worker *replacement = worker_at(fake, 2);
	assert_ptr_equal(replacement->replacing, heavy);
	assert_int_equal(replacement->index, 1);
	assert_int_equal(replacement->memory_replacements, 1);
	assert_int_equal(heavy->state, WORKER_READY); /* until the new one is ready */
	assert_true(service_notified(fake->service, replacement->pid, true, false, NULL));
	settle(fake);
	assert_int_equal(heavy->state, WORKER_STOPPING);
	assert_null(replacement->replacing);
	exit_worker(fake, heavy, EXITED_WITH(0));
	settle(fake);
	assert_int_equal(fake->service->worker_count, 2);
	assert_int_equal(fake->service->restarts, 1);
	fake_free(fake);
}

/* min_uptime: READY=1 is not yet ready; the gate's deadline is. */
static void
test_min_uptime_gates_ready(void **state)
{
	(void)state;
	struct config_service config = base_config(1, CONFIG_READY_NOTIFY);
	config.min_uptime = 0.05;
	struct fake *fake = fake_new(&config);
	assert_int_equal(service_start(fake->service, 1), 0);
	struct worker *worker = worker_at(fake, 0);
	assert_true(service_notified(fake->service, worker->pid, true, false, NULL));
	assert_int_equal(worker->state, WORKER_STARTING);
	assert_true(worker->settling);
	assert_true(deadline_in(worker) <= 0.05);
	assert_int_equal(service_ready_count(fake->service), 0);
	run_for(fake, 0.1);
	assert_int_equal(worker->state, WORKER_READY);
	assert_false(worker->settling);
	assert_int_equal(service_ready_count(fake->service), 1);
	assert_int_equal(fake->kill_count, 0); /* the gate's deadline is not ready_timeout */
	fake_free(fake);
}

/* A new generation whose worker dies after READY=1 but within min_uptime fails the roll: the
 * old worker was never asked to stop, and a respawn of it uses the config that serves. */
static void
test_min_uptime_fails_roll(void **state)
{
	(void)state;
	struct config_service config = base_config(1, CONFIG_READY_NOTIFY);
	config.min_uptime = 0.05;
	struct config_service next = config;
	next.stop_signal = SIGQUIT;
	struct fake *fake = fake_new(&config);
	assert_int_equal(service_start(fake->service, 1), 0);
	struct worker *old = worker_at(fake, 0);
	assert_true(service_notified(fake->service, old->pid, true, false, NULL));
	run_for(fake, 0.1);
	assert_int_equal(old->state, WORKER_READY);
	assert_int_equal(service_roll(fake->service, 2, &next), 0);
	struct worker *young = worker_at(fake, 1);
	assert_true(service_notified(fake->service, young->pid, true, false, NULL));
	settle(fake);
	assert_int_equal(old->state, WORKER_READY);
	exit_worker(fake, young, EXITED_WITH(0));
	settle(fake);
	assert_int_equal(fake->events[SERVICE_ROLL_FAILED], 1);
	assert_int_equal(fake->events[SERVICE_ROLL_DONE], 0);
	assert_int_equal(fake->service->generation, 1);
	assert_ptr_equal(fake->service->config, &config);
	assert_int_equal(fake->service->worker_count, 1);
	assert_int_equal(old->state, WORKER_READY);
	assert_int_equal(last_signal_to(fake, old->pid), 0);
	/* The old worker dies: it comes back with the serving config's stop_signal. */
	exit_worker(fake, old, EXITED_WITH(1));
	run_until_spawn(fake);
	assert_int_equal(old->stop_signal, SIGTERM);
	fake_free(fake);
}

static bool
failed_worker(struct fake *fake)
{
	return fake->service->worker_count > 0 && fake->service->workers[0]->state == WORKER_FAILED;
}

/* A crash loop: start_limit_burst deaths before min_uptime make the worker failed, with no more
 * spawns; service_reset_failed starts it again with a fresh limit. */
static void
test_start_limit_then_reset(void **state)
{
	(void)state;
	struct config_service config = base_config(1, CONFIG_READY_NONE);
	config.min_uptime = 1.0;
	config.start_limit_burst = 3;
	config.start_limit_interval = 10.0;
	config.restart_delay = 0;
	struct fake *fake = fake_new(&config);
	assert_int_equal(service_start(fake->service, 1), 0);
	struct worker *worker = worker_at(fake, 0);
	for (unsigned i = 0; i < 3; i++) {
		settle(fake);
		assert_int_equal(worker->state, WORKER_STARTING);
		exit_worker(fake, worker, EXITED_WITH(1));
	}
	assert_int_equal(worker->state, WORKER_FAILED);
	assert_int_equal(fake->spawns, 3);
	assert_int_equal(fake->service->failures, 3);
	assert_int_equal(service_state_count(fake->service, WORKER_FAILED), 1);
	settle(fake);
	run_for(fake, 0.05);
	assert_int_equal(fake->spawns, 3); /* failed: nothing is retried */
	assert_int_equal(worker->state, WORKER_FAILED);

	assert_int_equal(service_reset_failed(fake->service), 1);
	settle(fake);
	assert_int_equal(fake->spawns, 4);
	assert_int_equal(worker->state, WORKER_STARTING);
	assert_int_equal(service_reset_failed(fake->service), 0); /* nothing failed now */
	/* The limit starts over: two more quick deaths are retried. */
	exit_worker(fake, worker, EXITED_WITH(1));
	settle(fake);
	exit_worker(fake, worker, EXITED_WITH(1));
	settle(fake);
	assert_int_equal(worker->state, WORKER_STARTING);
	exit_worker(fake, worker, EXITED_WITH(1));
	run_until(fake, failed_worker);
	/* A failed worker goes away with a stop. */
	service_stop(fake->service);
	settle(fake);
	assert_int_equal(fake->service->worker_count, 0);
	fake_free(fake);
}

/* Deaths after min_uptime are not a crash loop: the limit never trips. */
static void
test_start_limit_ignores_long_runs(void **state)
{
	(void)state;
	struct config_service config = base_config(1, CONFIG_READY_NONE);
	config.min_uptime = 0.01;
	config.start_limit_burst = 2;
	config.start_limit_interval = 10.0;
	config.restart_delay = 0;
	struct fake *fake = fake_new(&config);
	assert_int_equal(service_start(fake->service, 1), 0);
	struct worker *worker = worker_at(fake, 0);
	for (unsigned i = 0; i < 4; i++) {
		settle(fake);
		run_for(fake, 0.03);
		assert_int_equal(worker->state, WORKER_READY);
		exit_worker(fake, worker, EXITED_WITH(1));
		assert_int_equal(worker->state, WORKER_BACKOFF);
	}
	fake_free(fake);
}

/* kill_mode = main: the graceful stop goes to the main process, the SIGKILL after stop_timeout
 * to the group. */
static void
test_kill_mode_main(void **state)
{
	(void)state;
	struct config_service config = base_config(1, CONFIG_READY_NONE);
	config.kill_mode = CONFIG_KILL_MAIN;
	struct fake *fake = fake_new(&config);
	assert_int_equal(service_start(fake->service, 1), 0);
	settle(fake);
	struct worker *worker = worker_at(fake, 0);
	service_stop(fake->service);
	settle(fake);
	assert_int_equal(last_signal_to(fake, worker->pid), -SIGTERM);
	run_until(fake, first_killed_twice);
	assert_int_equal(last_signal_to(fake, worker->pid), SIGKILL);
	fake_free(fake);
}

/* service_control.c: a held stop, a start again, a new count, and when each is done. */

static void
test_hold_and_resume(void **state)
{
	(void)state;
	struct config_service config = base_config(2, CONFIG_READY_NOTIFY);
	struct fake *fake = fake_new(&config);
	char message[256] = "";
	assert_int_equal(service_start(fake->service, 1), 0);
	ready_all(fake, 1);
	assert_int_equal(service_hold(fake->service), 0);
	settle(fake);
	assert_int_equal(count_in(fake, 1, WORKER_STOPPING), 2);
	assert_int_equal(service_settled(fake->service, 0, message, sizeof(message)),
			 SERVICE_SETTLE_PENDING);
	/* Not started again while its stop runs. */
	assert_int_equal(service_resume(fake->service), -EBUSY);
	exit_stopping(fake);
	settle(fake);
	assert_int_equal(fake->service->worker_count, 0);
	assert_int_equal(service_settled(fake->service, 0, message, sizeof(message)),
			 SERVICE_SETTLE_DONE);
	/* Held: nothing restarts it, whatever time passes. */
	run_for(fake, 0.05);
	assert_int_equal(fake->service->worker_count, 0);
	unsigned spawns = fake->spawns;
	assert_int_equal(service_resume(fake->service), 0);
	assert_false(fake->service->held);
	assert_int_equal(fake->spawns, spawns + 2);
	assert_int_equal(service_settled(fake->service, 0, message, sizeof(message)),
			 SERVICE_SETTLE_PENDING);
	ready_all(fake, 1);
	assert_int_equal(service_settled(fake->service, 0, message, sizeof(message)),
			 SERVICE_SETTLE_DONE);
	fake_free(fake);
}

static void
test_scale_up_and_down(void **state)
{
	(void)state;
	struct config_service config = base_config(2, CONFIG_READY_NOTIFY);
	struct fake *fake = fake_new(&config);
	char message[256] = "";
	assert_int_equal(service_start(fake->service, 1), 0);
	ready_all(fake, 1);
	pid_t first = worker_at(fake, 0)->pid, second = worker_at(fake, 1)->pid;

	struct config_service more = config;
	more.count = 4;
	assert_int_equal(service_scale(fake->service, &more), 0);
	settle(fake);
	assert_int_equal(fake->service->worker_count, 4);
	assert_int_equal(worker_at(fake, 0)->pid, first); /* untouched */
	assert_int_equal(worker_at(fake, 1)->pid, second);
	assert_int_equal(worker_at(fake, 2)->index, 2);
	assert_int_equal(worker_at(fake, 3)->index, 3);
	assert_int_equal(service_settled(fake->service, 2, message, sizeof(message)),
			 SERVICE_SETTLE_PENDING);
	ready_all(fake, 1);
	assert_int_equal(service_settled(fake->service, 2, message, sizeof(message)),
			 SERVICE_SETTLE_DONE);

	/* Down: the highest indexes stop, and it is done once they are gone. */
	struct config_service fewer = config;
	fewer.count = 1;
	assert_int_equal(service_scale(fake->service, &fewer), 0);
	settle(fake);
	assert_int_equal(last_signal_to(fake, second), SIGTERM);
	assert_int_equal(last_signal_to(fake, first), 0);
	assert_int_equal(service_settled(fake->service, 1, message, sizeof(message)),
			 SERVICE_SETTLE_PENDING);
	exit_stopping(fake);
	settle(fake);
	assert_int_equal(fake->service->worker_count, 1);
	assert_int_equal(worker_at(fake, 0)->pid, first);
	assert_int_equal(service_settled(fake->service, 1, message, sizeof(message)),
			 SERVICE_SETTLE_DONE);

	/* Not during a rolling restart. */
	struct config_service next = config;
	assert_int_equal(service_roll(fake->service, 2, &next), 0);
	assert_int_equal(service_scale(fake->service, &more), -EBUSY);
	assert_int_equal(service_hold(fake->service), -EBUSY);
	fake_free(fake);
}

static void
test_scale_fails_when_a_new_worker_exits(void **state)
{
	(void)state;
	struct config_service config = base_config(1, CONFIG_READY_NOTIFY);
	struct fake *fake = fake_new(&config);
	char message[256] = "";
	assert_int_equal(service_start(fake->service, 1), 0);
	ready_all(fake, 1);
	struct config_service more = config;
	more.count = 2;
	assert_int_equal(service_scale(fake->service, &more), 0);
	settle(fake);
	exit_worker(fake, worker_at(fake, 1), EXITED_WITH(3));
	assert_int_equal(service_settled(fake->service, 1, message, sizeof(message)),
			 SERVICE_SETTLE_FAILED);
	assert_string_equal(message, "web.1 exited with status 3 before it was ready");
	/* Counted from from_index on: a worker that ran before the scale is not its failure. */
	assert_int_equal(service_settled(fake->service, 2, message, sizeof(message)),
			 SERVICE_SETTLE_PENDING);
	fake_free(fake);
}

/* Replaces the replacement's predecessor: ready, then the old one stops and exits. */
static void
finish_replacement(struct fake *fake, struct worker *old)
{
	struct worker *replacement = old->replacement;
	assert_non_null(replacement);
	assert_true(service_notified(fake->service, replacement->pid, true, false, NULL));
	settle(fake);
	assert_int_equal(old->state, WORKER_STOPPING);
	exit_worker(fake, old, EXITED_WITH(0));
	settle(fake);
}

/* memory_total_limit: max(shared_clean) 3 + 42 + 46 + 40 = 131 over 60: the 46 goes, then
 * (3 + 42 + 40 + 4 = 89) the 42; then 3 + 40 + 4 + 4 = 51 is under: nothing more. */
static void
test_memory_total_limit(void **state)
{
	(void)state;
	struct config_service config = base_config(3, CONFIG_READY_NOTIFY);
	config.memory_total_limit = 60;
	config.memory_check_interval = 0.01;
	struct fake *fake = fake_new(&config);
	fake->service->spawner.footprint = fake_footprint;
	fake->private_of[0] = 42;
	fake->private_of[1] = 46;
	fake->private_of[2] = 40;
	fake->small_private = 4;
	assert_int_equal(service_start(fake->service, 1), 0);
	ready_all(fake, 1);
	run_until_spawn(fake);
	struct worker *first = worker_at(fake, 1);
	assert_int_equal(first->pid, 1001);
	assert_ptr_equal(first->replacement, worker_at(fake, 3));
	assert_int_equal(fake->service->memory_total_replacements, 1);
	/* One at a time: while it is under way, nothing else is decided. */
	run_for(fake, 0.05);
	assert_int_equal(fake->spawns, 4);
	finish_replacement(fake, first);
	run_until_spawn(fake);
	struct worker *second = worker_at(fake, 0);
	assert_int_equal(second->pid, 1000);
	assert_non_null(second->replacement);
	finish_replacement(fake, second);
	run_for(fake, 0.1);
	assert_int_equal(fake->spawns, 5);
	assert_int_equal(fake->service->memory_total_replacements, 2);
	assert_int_equal(fake->service->memory_leak_replacements, 0);
	fake_free(fake);
}

/* Falcon's leak rule: the first size is the maximum; 12 more per check, over a threshold of
 * 10, is an increase each time; the third replaces the worker. */
static void
test_memory_leak(void **state)
{
	(void)state;
	struct config_service config = base_config(2, CONFIG_READY_NOTIFY);
	config.memory_leak_threshold = 10;
	config.memory_leak_increases = 3;
	config.memory_check_interval = 0.01;
	struct fake *fake = fake_new(&config);
	fake->service->spawner.footprint = fake_footprint;
	fake->small_private = 50;
	assert_int_equal(service_start(fake->service, 1), 0);
	ready_all(fake, 1);
	struct worker *leaky = worker_at(fake, 1);
	fake->heavy_pid = leaky->pid;
	fake->growth = 12;
	run_until_spawn(fake);
	assert_int_equal(leaky->leak_increases, 3);
	assert_non_null(leaky->replacement);
	assert_int_equal(worker_at(fake, 0)->leak_increases, 0); /* steady: no increase */
	assert_int_equal(fake->service->memory_leak_replacements, 1);
	/* Measured four times: the first is the maximum, the next three each an increase. */
	assert_int_equal(fake->grown, 4 * 12);
	fake_free(fake);
}

int
main(void)
{
	log_set_level(LOG_ERROR);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_start_ready_notify),
	    cmocka_unit_test(test_memory_total_limit),
	    cmocka_unit_test(test_memory_leak),
	    cmocka_unit_test(test_start_ready_none),
	    cmocka_unit_test(test_ready_timeout_kills_and_restarts),
	    cmocka_unit_test(test_stop_timeout_then_sigkill_then_removed),
	    cmocka_unit_test(test_stop_in_backoff),
	    cmocka_unit_test(test_kill),
	    cmocka_unit_test(test_restart_policies),
	    cmocka_unit_test(test_backoff_doubles_within_jitter),
	    cmocka_unit_test(test_backoff_reset_after_uptime),
	    cmocka_unit_test(test_spawn_failure_retried),
	    cmocka_unit_test(test_roll_done),
	    cmocka_unit_test(test_roll_ready_none_done_in_dispatch),
	    cmocka_unit_test(test_roll_failed_old_keeps_serving),
	    cmocka_unit_test(test_roll_in_batches),
	    cmocka_unit_test(test_roll_aborted_by_stop),
	    cmocka_unit_test(test_health_timeout),
	    cmocka_unit_test(test_memory_replacement),
	    cmocka_unit_test(test_min_uptime_gates_ready),
	    cmocka_unit_test(test_min_uptime_fails_roll),
	    cmocka_unit_test(test_start_limit_then_reset),
	    cmocka_unit_test(test_start_limit_ignores_long_runs),
	    cmocka_unit_test(test_kill_mode_main),
	    cmocka_unit_test(test_hold_and_resume),
	    cmocka_unit_test(test_scale_up_and_down),
	    cmocka_unit_test(test_scale_fails_when_a_new_worker_exits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
