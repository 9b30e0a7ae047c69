/* worker_machine: the life cycle of a service's workers, as one table of states × events.
 *
 * Each worker is in one state (worker.h) with at most one deadline (its timer). Everything that
 * happens to a worker is an enum worker_event, and actions[state][event] below says what it
 * does: the whole life cycle is that table. An event from outside (an exit, a notify message, a
 * deadline, a call from the host) is handled at once; an event a handler raises for itself or
 * for another worker (the old generation stops because the new one is ready) waits in the queue
 * for service_dispatch, which the host calls from the loop's before-wait hook. So no handler
 * runs inside another, no walk over the workers sees the list change under it, and a removed
 * worker is freed only there, never under its caller. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "host/service_private.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/signame.h"

typedef void worker_action(struct service *service, struct worker *worker, int status);

static worker_action ready_timed_out;

static double
backoff_delay(const struct service *service, const struct config_service *config,
	      struct worker *worker, double uptime)
{
	if (uptime >= service->backoff_reset)
		worker->failures = 0;
	worker->failures++;
	if (worker->failures == 1 && uptime >= service->backoff_reset)
		return 0; /* it had been up a while: back at once */
	/* The exponent stops growing long before the cap matters, and 0 * 2^n stays 0. */
	unsigned doublings = worker->failures - 1 < 60 ? worker->failures - 1 : 60;
	double delay = config->restart_delay * ldexp(1.0, (int)doublings);
	if (delay > config->restart_delay_max)
		delay = config->restart_delay_max;
	/* Jitter in [delay/2, delay], so that many workers crashing together don't come back in
	 * lockstep; the lower bound still doubles each time. */
	return delay / 2 + delay / 2 * ((double)random() / (double)RAND_MAX);
}

static void
describe_status(int status, char *text, size_t size)
{
	if (WIFEXITED(status))
		snprintf(text, size, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(text, size, "killed by SIG%s%s", signame_name(WTERMSIG(status)),
			 WCOREDUMP(status) ? " (core dumped)" : "");
	else
		snprintf(text, size, "ended with wait status %#x", (unsigned)status);
}

static void
send_signal(struct service *service, const struct worker *worker, int signal)
{
	if (worker->pid > 0)
		service->spawner.kill(service->spawner.data, worker, signal);
}

/* The graceful stop's signal: with kill_mode = main to the main process alone, which stops its
 * own children (gunicorn's arbiter, nginx's master) and would see them die under it if they got
 * the signal too; SIGKILL still goes to the whole group (stop_timed_out, exited). */
static void
send_stop_signal(struct service *service, const struct worker *worker)
{
	if (worker->pid > 0 && worker->kill_main && service->spawner.kill_main)
		service->spawner.kill_main(service->spawner.data, worker, worker->stop_signal);
	else
		send_signal(service, worker, worker->stop_signal);
}

static void
on_deadline(struct loop *loop, void *data)
{
	struct worker *worker = data;
	(void)loop;
	service_handle(worker->service, worker, WORKER_EVENT_DEADLINE, 0);
}

/* The actions: each is one cell (or a row) of the table below. */

/* utilization = yes: the worker's segment (taken at its first run, zeroed at each) as
 * AERIE_UTILIZATION's PATH:OFFSET in text; NULL without one. */
static const char *
utilization_segment(struct service *service, struct worker *worker,
		    const struct config_service *config, char *text, size_t size)
{
	if (!config->utilization || !service->utilization_path) {
		if (worker->utilization_segment) /* a rolling restart turned it off */
			utilization_release(&service->utilization, worker->utilization_segment - 1);
		worker->utilization_segment = 0;
		return NULL;
	}
	if (worker->utilization_segment) {
		utilization_reset(&service->utilization, worker->utilization_segment - 1);
	} else {
		size_t slot;
		int r = utilization_take(&service->utilization, service->utilization_path, &slot);
		if (r < 0) {
			log_errno(LOG_WARN, r, "%s: no utilization segment (%s)", worker->label,
				  service->utilization_path);
			return NULL;
		}
		worker->utilization_segment = slot + 1;
	}
	/* Workers that run as another user open the file by its path. */
	if (config->exec.user || config->exec.group) {
		int r = utilization_give(&service->utilization,
					 config->exec.user ? config->exec.uid : (uid_t)-1,
					 config->exec.gid);
		if (r < 0)
			log_errno(LOG_WARN, r, "%s: cannot give %s to its user", worker->label,
				  service->utilization_path);
	}
	int n = snprintf(text, size, "%s:%zu", service->utilization_path,
			 (worker->utilization_segment - 1) * UTILIZATION_SEGMENT_SIZE);
	return n > 0 && (size_t)n < size ? text : NULL;
}

/* BACKOFF × START, DEADLINE: spawn. */
static void
start(struct service *service, struct worker *worker, int status)
{
	(void)status;
	if (service->stopping)
		return; /* its STOP is queued: it goes without running */
	/* The timer is the life cycle's: its first START gives it its callback (nothing arms it
	 * before), so that the list of workers below needs nothing of this table. */
	if (!worker->timer.fn)
		loop_timer_init(&worker->timer, on_deadline, worker);
	const struct config_service *config = service_worker_config(service, worker);
	struct worker_exec exec = {
	    .argv = config->argv,
	    .directory = config->directory,
	    .env = config->env,
	    .env_count = config->env_count,
	    .notify_socket = config->ready == CONFIG_READY_NOTIFY ? service->notify_socket : NULL,
	    .service_name = service->name,
	    .listen_fds = service->listen_fds,
	    .listen_count = service->listen_count,
	    .listen_names = service->listen_names,
	    .watchdog_seconds = config->health_timeout,
	    .nofile = config->exec.has_limit[CONFIG_LIMIT_NOFILE]
			  ? &config->exec.limits[CONFIG_LIMIT_NOFILE]
			  : NULL,
	    .options = &config->exec,
	};
	char segment[UTILIZATION_ENV_MAX];
	exec.utilization = utilization_segment(service, worker, config, segment, sizeof(segment));
	worker->stop_signal = config->stop_signal;
	worker->kill_main = config->kill_mode == CONFIG_KILL_MAIN;
	worker->settling = false;
	worker->retry_at = 0;
	worker->stop_timeout = config->stop_timeout;
	worker->health_timeout = config->health_timeout;
	worker->ready_timed_out = false;
	worker->unhealthy = false;
	worker->started_at = loop_now_seconds();
	int r = service->spawner.spawn(service->spawner.data, worker, service->loop, &exec);
	if (r < 0) {
		/* clone failed (EAGAIN, ENOMEM): the machine is short. Always through the timer, at
		 * least spawn_retry_delay later: retrying at once would only fail again. */
		worker->pid = 0;
		service_set_state(service, worker, WORKER_BACKOFF);
		double delay = backoff_delay(service, config, worker, 0);
		if (delay < service->spawn_retry_delay)
			delay = service->spawn_retry_delay;
		worker->retry_at = loop_realtime_seconds() + delay;
		if (worker->spawn_failed_step)
			log_errno(LOG_ERROR, r,
				  "%s: cannot start a worker: %s failed before exec; trying "
				  "again in %.1f s",
				  worker->label, worker->spawn_failed_step, delay);
		else
			log_errno(LOG_ERROR, r, "%s: cannot start a worker; trying again in %.1f s",
				  worker->label, delay);
		(void)loop_timer_start(service->loop, &worker->timer, delay);
		return;
	}
	service_set_state(service, worker, WORKER_STARTING);
	log_info("%s[%d] started: generation %u", worker->label, (int)worker->pid,
		 worker->generation);
	if (config->ready == CONFIG_READY_NONE) {
		service_raise(service, worker, WORKER_EVENT_READY);
		return;
	}
	r = loop_timer_start(service->loop, &worker->timer, config->ready_timeout);
	if (r < 0)
		log_errno(LOG_ERROR, r, "%s[%d]: cannot arm its ready timeout", worker->label,
			  (int)worker->pid);
}

/* STARTING × DEADLINE once READY=1 came, or STARTING × READY without min_uptime: the worker
 * has been ready (or up) min_uptime and counts as started. */
static void
become_ready(struct service *service, struct worker *worker, int status)
{
	(void)status;
	loop_timer_stop(service->loop, &worker->timer);
	worker->settling = false;
	service_set_state(service, worker, WORKER_READY);
	/* From now on the timer is the health deadline, pushed back by each WATCHDOG=1. */
	if (worker->health_timeout > 0)
		(void)loop_timer_start(service->loop, &worker->timer, worker->health_timeout);
	if (service->roll_generation && worker->generation == service->roll_generation)
		service_roll_ready(service, worker);
	if (worker->replacing) {
		struct worker *old = worker->replacing;
		worker->replacing = old->replacement = NULL;
		log_info("%s[%d] ready in place of %s[%d], which stops now", worker->label,
			 (int)worker->pid, old->label, (int)old->pid);
		service_raise(service, old, WORKER_EVENT_STOP);
	}
}

/* STARTING × READY: READY=1 (or, with ready = none, the spawn). A server that says it is ready
 * before it is (gunicorn's arbiter before it imports the app) dies soon after: it counts as
 * started, and a rolling restart goes on, only once it has stayed up min_uptime. */
static void
ready_received(struct service *service, struct worker *worker, int status)
{
	const struct config_service *config = service_worker_config(service, worker);
	if (worker->settling)
		return; /* a second READY=1: the gate runs already */
	if (config->ready == CONFIG_READY_NOTIFY)
		log_info("%s[%d] ready after %.3f s", worker->label, (int)worker->pid,
			 loop_now_seconds() - worker->started_at);
	if (config->min_uptime <= 0) {
		become_ready(service, worker, status);
		return;
	}
	worker->settling = true;
	service->changed = true;
	int r = loop_timer_start(service->loop, &worker->timer, config->min_uptime);
	if (r < 0) {
		log_errno(LOG_ERROR, r, "%s[%d]: cannot arm its min_uptime; ready now",
			  worker->label, (int)worker->pid);
		become_ready(service, worker, status);
	}
}

/* STARTING × DEADLINE: min_uptime passed, or ready_timeout ran out. */
static void
starting_deadline(struct service *service, struct worker *worker, int status)
{
	if (worker->settling)
		become_ready(service, worker, status);
	else
		ready_timed_out(service, worker, status);
}

/* READY × READY, WATCHDOG: the health deadline moves. */
static void
push_health_deadline(struct service *service, struct worker *worker, int status)
{
	(void)status;
	if (worker->health_timeout > 0 && !worker->unhealthy)
		(void)loop_timer_start(service->loop, &worker->timer, worker->health_timeout);
}

/* STARTING × DEADLINE. */
static void
ready_timed_out(struct service *service, struct worker *worker, int status)
{
	(void)status;
	log_warn("%s[%d] not ready within ready_timeout: killing it", worker->label,
		 (int)worker->pid);
	worker->ready_timed_out = true;
	send_signal(service, worker, SIGKILL);
}

/* READY × DEADLINE: armed only with health_timeout, so the worker went quiet. */
static void
health_timed_out(struct service *service, struct worker *worker, int status)
{
	(void)status;
	log_warn("%s[%d] sent no WATCHDOG=1 for %g s (health_timeout): killing its process group",
		 worker->label, (int)worker->pid, worker->health_timeout);
	worker->unhealthy = true;
	worker->health_kills++;
	service->health_kills++;
	send_signal(service, worker, SIGKILL);
}

/* STOPPING × DEADLINE. */
static void
stop_timed_out(struct service *service, struct worker *worker, int status)
{
	(void)status;
	log_warn("%s[%d] still running %g s after SIG%s (stop_timeout): sending SIGKILL to its "
		 "process group",
		 worker->label, (int)worker->pid, worker->stop_timeout,
		 signame_name(worker->stop_signal));
	send_signal(service, worker, SIGKILL);
}

/* STARTING, READY × STOP. */
static void
stop_gracefully(struct service *service, struct worker *worker, int status)
{
	(void)status;
	log_info("%s[%d] stopping: sending SIG%s", worker->label, (int)worker->pid,
		 signame_name(worker->stop_signal));
	service_set_state(service, worker, WORKER_STOPPING);
	send_stop_signal(service, worker);
	if (loop_timer_start(service->loop, &worker->timer, worker->stop_timeout) < 0)
		send_signal(service, worker, SIGKILL); /* no deadline to wait for */
}

/* STARTING, READY, STOPPING × KILL. */
static void
kill_at_once(struct service *service, struct worker *worker, int status)
{
	(void)status;
	service_set_state(service, worker, WORKER_STOPPING);
	send_signal(service, worker, SIGKILL);
}

/* BACKOFF, EXITED, FAILED, DONE × STOP, KILL: nothing runs, so nothing to wait for. */
static void
remove_now(struct service *service, struct worker *worker, int status)
{
	(void)status;
	service_worker_remove(service, worker);
}

/* A death before min_uptime: true when it is the start_limit_burst-th within
 * start_limit_interval, and the worker is to fail rather than start again. */
static bool
start_limit_reached(const struct config_service *config, struct worker *worker)
{
	unsigned burst = config->start_limit_burst;
	if (burst == 0)
		return false;
	if (burst > CONFIG_MAX_START_LIMIT_BURST)
		burst = CONFIG_MAX_START_LIMIT_BURST;
	if (worker->quick_death_slots != burst) {
		double *slots = calloc(burst, sizeof(*slots));
		if (!slots)
			return false; /* out of memory: the backoff still slows the loop down */
		free(worker->quick_deaths);
		worker->quick_deaths = slots;
		worker->quick_death_slots = burst;
		worker->quick_death_next = 0;
	}
	double now = loop_now_seconds();
	worker->quick_deaths[worker->quick_death_next++ % burst] = now;
	unsigned recent = 0;
	for (unsigned i = 0; i < burst; i++)
		if (worker->quick_deaths[i] > 0 &&
		    now - worker->quick_deaths[i] <= config->start_limit_interval)
			recent++;
	return recent >= burst;
}

/* After an exit that was no stop: BACKOFF (or at once), EXITED or DONE by the restart policy,
 * or FAILED by the start limit. */
static void
restart_or_rest(struct service *service, struct worker *worker, bool failed, bool quick,
		double uptime)
{
	const struct config_service *config = service_worker_config(service, worker);
	bool restart = config->restart == CONFIG_RESTART_ALWAYS ||
		       (config->restart == CONFIG_RESTART_ON_FAILURE && failed);
	if (!restart) {
		service_set_state(service, worker, failed ? WORKER_EXITED : WORKER_DONE);
		log_info("%s: not restarted (restart = %s)", worker->label,
			 config->restart == CONFIG_RESTART_NEVER ? "never" : "on-failure");
		return;
	}
	if (quick && start_limit_reached(config, worker)) {
		service_set_state(service, worker, WORKER_FAILED);
		log_error("%s: failed: %u starts within %g s ended before min_uptime (%g s); not "
			  "restarted until it is started again",
			  worker->label, config->start_limit_burst, config->start_limit_interval,
			  config->min_uptime);
		return;
	}
	double delay = backoff_delay(service, config, worker, uptime);
	worker->restarts++;
	service->restarts++;
	service_set_state(service, worker, WORKER_BACKOFF);
	if (delay <= 0) {
		service_raise(service, worker, WORKER_EVENT_START);
		return;
	}
	log_info("%s: restarting in %.3f s (failure %u in a row)", worker->label, delay,
		 worker->failures);
	worker->retry_at = loop_realtime_seconds() + delay;
	if (loop_timer_start(service->loop, &worker->timer, delay) < 0)
		service_raise(service, worker, WORKER_EVENT_START);
}

/* STARTING, READY, STOPPING × EXITED. */
static void
exited(struct service *service, struct worker *worker, int status)
{
	pid_t pid = worker->pid;
	double uptime = loop_now_seconds() - worker->started_at;
	loop_timer_stop(service->loop, &worker->timer);
	/* What the worker left in its process group goes with it (as systemd's KillMode does);
	 * the group id can't be reused while any member lives, so this hits only them. */
	service->spawner.kill_group(service->spawner.data, pid);
	worker_output_close(worker, service->loop);
	worker->pid = 0;
	worker->exit_status = status;
	/* What it said of itself was about that run: a worker waiting to restart says nothing. */
	free(worker->status_text);
	worker->status_text = NULL;
	/* Not through the gate: not ready, or ready for less than min_uptime. */
	bool quick = worker->state == WORKER_STARTING;
	worker->settling = false;
	/* What it counted goes to the service's totals; its next run starts from zero. */
	if (worker->utilization_segment)
		utilization_reset(&service->utilization, worker->utilization_segment - 1);

	char text[96];
	describe_status(status, text, sizeof(text));
	bool failed = worker->ready_timed_out || worker->unhealthy || !WIFEXITED(status) ||
		      WEXITSTATUS(status) != 0;
	if (failed && worker->state != WORKER_STOPPING && !service->stopping)
		service->failures++;

	if (worker->state == WORKER_STOPPING || service->stopping) {
		log_info("%s[%d] stopped: %s", worker->label, (int)pid, text);
		service_worker_remove(service, worker);
		return;
	}
	log_message(failed ? LOG_WARN : LOG_INFO, "%s[%d] %s after %.3f s%s", worker->label,
		    (int)pid, text, uptime,
		    worker->ready_timed_out ? " (killed: not ready in time)"
		    : worker->unhealthy	    ? " (killed: no WATCHDOG=1 within health_timeout)"
					    : "");
	if (worker->replacing) {
		/* The replacement failed: the old worker goes on, and the next check tries again.
		 */
		log_warn("%s[%d] replacement failed; %s[%d] keeps running", worker->label, (int)pid,
			 worker->replacing->label, (int)worker->replacing->pid);
		service_worker_remove(service, worker);
		return;
	}
	if (worker->replacement) {
		/* Its replacement is already starting: that one takes the slot. */
		service_worker_remove(service, worker);
		return;
	}
	if (service->roll_generation && worker->generation == service->roll_generation) {
		char message[256];
		snprintf(message, sizeof(message), "%s[%d] %s%s before it was ready for min_uptime",
			 worker->label, (int)pid, text,
			 worker->ready_timed_out ? " (ready_timeout)" : "");
		service_worker_remove(service, worker);
		service_roll_abort(service, message);
		return;
	}
	restart_or_rest(service, worker, failed, quick, uptime);
}

/* READY × REPLACE: a new worker starts beside it, as a one-worker rolling restart; this one
 * stops once that one is ready. */
static void
start_replacement(struct service *service, struct worker *old, int status)
{
	(void)status;
	if (old->replacement || old->replacing || old->generation != service->generation ||
	    service->stopping)
		return;
	struct worker *worker = service_worker_new(service, old->index, old->generation);
	if (!worker) {
		log_error("%s: out of memory replacing it", old->label);
		return;
	}
	worker->restarts = old->restarts;
	worker->memory_replacements = old->memory_replacements + 1;
	service->memory_replacements++;
	worker->replacing = old;
	old->replacement = worker;
	service->restarts++;
	service_raise(service, worker, WORKER_EVENT_START);
}

/* The life cycle: what each event does in each state; an empty cell, nothing. */
static worker_action *const actions[][WORKER_EVENT_COUNT] = {
    [WORKER_STARTING] =
	{
	    [WORKER_EVENT_READY] = ready_received,
	    [WORKER_EVENT_EXITED] = exited,
	    [WORKER_EVENT_DEADLINE] = starting_deadline,
	    [WORKER_EVENT_STOP] = stop_gracefully,
	    [WORKER_EVENT_KILL] = kill_at_once,
	},
    [WORKER_READY] =
	{
	    [WORKER_EVENT_READY] = push_health_deadline,
	    [WORKER_EVENT_WATCHDOG] = push_health_deadline,
	    [WORKER_EVENT_EXITED] = exited,
	    [WORKER_EVENT_DEADLINE] = health_timed_out,
	    [WORKER_EVENT_STOP] = stop_gracefully,
	    [WORKER_EVENT_KILL] = kill_at_once,
	    [WORKER_EVENT_REPLACE] = start_replacement,
	},
    [WORKER_STOPPING] =
	{
	    [WORKER_EVENT_EXITED] = exited,
	    [WORKER_EVENT_DEADLINE] = stop_timed_out,
	    [WORKER_EVENT_KILL] = kill_at_once,
	},
    [WORKER_BACKOFF] =
	{
	    [WORKER_EVENT_START] = start,
	    [WORKER_EVENT_DEADLINE] = start,
	    [WORKER_EVENT_STOP] = remove_now,
	    [WORKER_EVENT_KILL] = remove_now,
	},
    [WORKER_EXITED] =
	{
	    [WORKER_EVENT_STOP] = remove_now,
	    [WORKER_EVENT_KILL] = remove_now,
	},
    [WORKER_FAILED] =
	{
	    [WORKER_EVENT_START] = start, /* service_reset_failed */
	    [WORKER_EVENT_STOP] = remove_now,
	    [WORKER_EVENT_KILL] = remove_now,
	},
    [WORKER_DONE] =
	{
	    [WORKER_EVENT_STOP] = remove_now,
	    [WORKER_EVENT_KILL] = remove_now,
	},
};

void
service_handle(struct service *service, struct worker *worker, enum worker_event event, int status)
{
	worker_action *action = actions[worker->state][event];
	log_debug("%s[%d] %s in %s%s", worker->label, (int)worker->pid, service_event_name(event),
		  service_state_name(worker->state), action ? "" : ": nothing to do");
	if (action)
		action(service, worker, status);
}
