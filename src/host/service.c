/* service: the workers of one [service:NAME]: their life cycle, restarts and rolling restarts.
 *
 * Each worker is in one state (worker.h) with at most one deadline (its timer). Everything
 * that happens to a worker arrives here as one of four events: spawned, ready, exited,
 * deadline; each event's handler below decides the next state. */
#include "host/service.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host/listen.h"
#include "lib/limits.h"
#include "lib/log.h"
#include "lib/signame.h"
#include "metrics/metrics.h"

static void worker_deadline(struct loop *loop, void *data);
static void check_memory(struct loop *loop, void *data);
static void memory_timer_update(struct service *service);

static double
realtime_now(void)
{
	struct timespec now;
	(void)clock_gettime(CLOCK_REALTIME, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

const char *
service_state_name(enum worker_state state)
{
	static const char *const names[] = {
	    [WORKER_STARTING] = "starting", [WORKER_READY] = "ready",
	    [WORKER_STOPPING] = "stopping", [WORKER_BACKOFF] = "backoff",
	    [WORKER_EXITED] = "exited",
	};
	return names[state];
}

static void
set_state(struct worker *worker, enum worker_state state)
{
	if (worker->state != state)
		log_debug("%s[%d] %s → %s", worker->label, (int)worker->pid,
			  service_state_name(worker->state), service_state_name(state));
	worker->state = state;
	worker->since = realtime_now();
	worker->service->fn(worker->service, SERVICE_CHANGED, NULL, worker->service->data);
}

static struct worker *
worker_new(struct service *service, unsigned index, unsigned generation)
{
	struct worker *worker = calloc(1, sizeof(*worker));
	if (!worker)
		return NULL;
	worker->service = service;
	snprintf(worker->label, sizeof(worker->label), "%s.%u", service->name, index);
	worker->index = index;
	worker->generation = generation;
	worker->exit_status = -1;
	worker->output_fd = -1;
	worker->since = realtime_now();
	loop_timer_init(&worker->timer, worker_deadline, worker);
	return worker;
}

static void
worker_free(struct service *service, struct worker *worker)
{
	loop_timer_stop(service->loop, &worker->timer);
	worker_release(worker, service->loop);
	free(worker->status_text);
	free(worker);
}

static int
add_worker(struct service *service, struct worker *worker)
{
	if (service->worker_count == service->worker_capacity) {
		size_t capacity = service->worker_capacity ? service->worker_capacity * 2 : 8;
		struct worker **workers =
		    reallocarray(service->workers, capacity, sizeof(*workers));
		if (!workers)
			return -ENOMEM;
		service->workers = workers;
		service->worker_capacity = capacity;
	}
	service->workers[service->worker_count++] = worker;
	return 0;
}

/* Keeps the order (status lists workers as they were started). */
static void
remove_worker(struct service *service, struct worker *worker)
{
	for (size_t i = 0; i < service->worker_count; i++) {
		if (service->workers[i] != worker)
			continue;
		memmove(&service->workers[i], &service->workers[i + 1],
			(service->worker_count - i - 1) * sizeof(*service->workers));
		service->worker_count--;
		break;
	}
	if (worker->replacing)
		worker->replacing->replacement = NULL;
	if (worker->replacement)
		worker->replacement->replacing = NULL;
	worker_free(service, worker);
	service->fn(service, SERVICE_CHANGED, NULL, service->data);
	if (service->stopping && service->worker_count == 0)
		service->fn(service, SERVICE_STOPPED, NULL, service->data);
}

static void mark_ready(struct service *service, struct worker *worker);

static double backoff_delay(const struct config_service *config, struct worker *worker,
			    double uptime);

static void
spawn(struct service *service, struct worker *worker, const struct config_service *config)
{
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
	};
	worker->stop_signal = config->stop_signal;
	worker->stop_timeout = config->stop_timeout;
	worker->health_timeout = config->health_timeout;
	worker->ready_timed_out = false;
	worker->unhealthy = false;
	worker->started_at = loop_now_seconds();
	int r = worker_spawn(worker, service->loop, &exec);
	if (r < 0) {
		/* clone failed (EAGAIN, ENOMEM): the machine is short. Always through the timer, at
		 * least SERVICE_SPAWN_RETRY_DELAY later: retrying at once would only fail again. */
		worker->pid = 0;
		set_state(worker, WORKER_BACKOFF);
		double delay = backoff_delay(config, worker, 0);
		if (delay < SERVICE_SPAWN_RETRY_DELAY)
			delay = SERVICE_SPAWN_RETRY_DELAY;
		log_errno(LOG_ERROR, r, "%s: cannot start a worker; trying again in %.1f s",
			  worker->label, delay);
		(void)loop_timer_start(service->loop, &worker->timer, delay);
		return;
	}
	set_state(worker, WORKER_STARTING);
	log_info("%s[%d] started: generation %u", worker->label, (int)worker->pid,
		 worker->generation);
	if (config->ready == CONFIG_READY_NONE) {
		mark_ready(service, worker);
		return;
	}
	r = loop_timer_start(service->loop, &worker->timer, config->ready_timeout);
	if (r < 0)
		log_errno(LOG_ERROR, r, "%s[%d]: cannot arm its ready timeout", worker->label,
			  (int)worker->pid);
}

static void
stop_worker(struct service *service, struct worker *worker)
{
	switch (worker->state) {
	case WORKER_STARTING:
	case WORKER_READY:
		log_info("%s[%d] stopping: sending SIG%s", worker->label, (int)worker->pid,
			 signame_name(worker->stop_signal));
		set_state(worker, WORKER_STOPPING);
		worker_kill(worker, worker->stop_signal);
		if (loop_timer_start(service->loop, &worker->timer, worker->stop_timeout) < 0)
			worker_kill(worker, SIGKILL); /* no deadline to wait for */
		break;
	case WORKER_BACKOFF:
	case WORKER_EXITED:
		remove_worker(service, worker);
		break;
	case WORKER_STOPPING:
		break;
	}
}

/* Stops the workers of generation (of_generation) or of every other generation, but for the
 * ready ones with keep_ready. Walks backwards: stopping may remove. */
static void
stop_workers(struct service *service, unsigned generation, bool of_generation, bool keep_ready)
{
	for (size_t i = service->worker_count; i > 0; i--) {
		if (i > service->worker_count)
			continue;
		struct worker *worker = service->workers[i - 1];
		if ((worker->generation == generation) == of_generation &&
		    !(keep_ready && worker->state == WORKER_READY))
			stop_worker(service, worker);
	}
}

/* A rolling restart in batches (rolling_batch) rather than all at once. With ready = none a
 * worker is ready as it starts, so batches would only chain the starts: all at once then. */
static bool
in_batches(const struct config_service *config)
{
	return config->rolling_batch && config->rolling_batch < config->count &&
	       config->ready == CONFIG_READY_NOTIFY;
}

static void
roll_finish(struct service *service, enum service_event event, const char *message)
{
	service->roll_generation = 0;
	service->roll_config = NULL;
	service->fn(service, event, message, service->data);
}

static void
roll_abort(struct service *service, const char *message)
{
	unsigned generation = service->roll_generation;
	log_warn("%s: rolling restart to generation %u failed (%s); generation %u keeps serving",
		 service->name, generation, message, service->generation);
	/* The new workers go to STOPPING (or away), so their exits are plain stops. In batches,
	 * those already ready have replaced old ones, which are gone: they stay and serve. */
	stop_workers(service, generation, true, in_batches(service->roll_config));
	char text[512];
	snprintf(text, sizeof(text), "%s: %s", service->name, message);
	roll_finish(service, SERVICE_ROLL_FAILED, text);
}

static void
check_roll_done(struct service *service)
{
	unsigned generation = service->roll_generation, ready = 0;
	for (size_t i = 0; i < service->worker_count; i++)
		if (service->workers[i]->generation == generation &&
		    service->workers[i]->state == WORKER_READY)
			ready++;
	if (ready < service->roll_config->count)
		return;
	unsigned old = service->generation;
	log_info("%s: generation %u ready (%u workers); stopping generation %u", service->name,
		 generation, ready, old);
	service->generation = generation;
	service->config = service->roll_config;
	memory_timer_update(service);
	stop_workers(service, generation, false, false);
	roll_finish(service, SERVICE_ROLL_DONE, NULL);
}

static void spawn(struct service *service, struct worker *worker,
		  const struct config_service *config);

/* Starts the next worker of a rolling restart in batches; false when all are started. */
static bool
roll_start_next(struct service *service)
{
	const struct config_service *config = service->roll_config;
	if (service->roll_next >= config->count)
		return false;
	struct worker *worker = worker_new(service, service->roll_next, service->roll_generation);
	if (!worker || add_worker(service, worker) < 0) {
		free(worker);
		return false;
	}
	service->roll_next++;
	spawn(service, worker, config);
	return true;
}

/* In batches: a new worker is ready, so the old one of its index stops and the next new one
 * starts; capacity never drops below count. */
static void
roll_step(struct service *service, const struct worker *ready)
{
	for (size_t i = 0; i < service->worker_count; i++) {
		struct worker *old = service->workers[i];
		if (old->generation != ready->generation && old->index == ready->index &&
		    old->state != WORKER_STOPPING) {
			stop_worker(service, old);
			break;
		}
	}
	(void)roll_start_next(service);
}

static void
mark_ready(struct service *service, struct worker *worker)
{
	loop_timer_stop(service->loop, &worker->timer);
	set_state(worker, WORKER_READY);
	/* From now on the timer is the health deadline, pushed back by each WATCHDOG=1. */
	if (worker->health_timeout > 0)
		(void)loop_timer_start(service->loop, &worker->timer, worker->health_timeout);
	if (service->roll_generation && worker->generation == service->roll_generation) {
		unsigned generation = service->roll_generation;
		if (in_batches(service->roll_config))
			roll_step(service, worker);
		if (service->roll_generation == generation)
			check_roll_done(service);
	}
	if (worker->replacing) {
		struct worker *old = worker->replacing;
		worker->replacing = old->replacement = NULL;
		log_info("%s[%d] ready in place of %s[%d], which stops now", worker->label,
			 (int)worker->pid, old->label, (int)old->pid);
		stop_worker(service, old);
	}
}

static double
backoff_delay(const struct config_service *config, struct worker *worker, double uptime)
{
	if (uptime >= SERVICE_BACKOFF_RESET_SECONDS)
		worker->failures = 0;
	worker->failures++;
	if (worker->failures == 1 && uptime >= SERVICE_BACKOFF_RESET_SECONDS)
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
schedule_restart(struct service *service, struct worker *worker, bool failed, double uptime)
{
	const struct config_service *config = service->config;
	bool restart = config->restart == CONFIG_RESTART_ALWAYS ||
		       (config->restart == CONFIG_RESTART_ON_FAILURE && failed);
	if (!restart || service->stopping) {
		set_state(worker, WORKER_EXITED);
		log_info("%s: not restarted (restart = %s)", worker->label,
			 config->restart == CONFIG_RESTART_NEVER ? "never" : "on-failure");
		return;
	}
	double delay = backoff_delay(config, worker, uptime);
	worker->restarts++;
	service->restarts++;
	set_state(worker, WORKER_BACKOFF);
	if (delay <= 0) {
		spawn(service, worker, config);
		return;
	}
	log_info("%s: restarting in %.3f s (failure %u in a row)", worker->label, delay,
		 worker->failures);
	if (loop_timer_start(service->loop, &worker->timer, delay) < 0)
		spawn(service, worker, config);
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
worker_exited(struct service *service, struct worker *worker, int status)
{
	pid_t pid = worker->pid;
	double uptime = loop_now_seconds() - worker->started_at;
	loop_timer_stop(service->loop, &worker->timer);
	/* What the worker left in its process group goes with it (as systemd's KillMode does);
	 * the group id can't be reused while any member lives, so this hits only them. */
	(void)kill(-pid, SIGKILL);
	worker_output_close(worker, service->loop);
	worker->pid = 0;
	worker->exit_status = status;

	char text[96];
	describe_status(status, text, sizeof(text));
	bool failed = worker->ready_timed_out || worker->unhealthy || !WIFEXITED(status) ||
		      WEXITSTATUS(status) != 0;

	if (worker->state == WORKER_STOPPING || service->stopping) {
		log_info("%s[%d] stopped: %s", worker->label, (int)pid, text);
		remove_worker(service, worker);
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
		remove_worker(service, worker);
		return;
	}
	if (worker->replacement) {
		/* Its replacement is already starting: that one takes the slot. */
		remove_worker(service, worker);
		return;
	}
	if (service->roll_generation && worker->generation == service->roll_generation) {
		char message[256];
		snprintf(message, sizeof(message), "%s[%d] %s%s before it was ready", worker->label,
			 (int)pid, text, worker->ready_timed_out ? " (ready_timeout)" : "");
		remove_worker(service, worker);
		roll_abort(service, message);
		return;
	}
	schedule_restart(service, worker, failed, uptime);
}

static void
worker_deadline(struct loop *loop, void *data)
{
	struct worker *worker = data;
	struct service *service = worker->service;
	(void)loop;
	switch (worker->state) {
	case WORKER_STARTING:
		log_warn("%s[%d] not ready within ready_timeout: killing it", worker->label,
			 (int)worker->pid);
		worker->ready_timed_out = true;
		worker_kill(worker, SIGKILL);
		break;
	case WORKER_STOPPING:
		log_warn("%s[%d] still running %g s after SIG%s (stop_timeout): sending SIGKILL to "
			 "its process group",
			 worker->label, (int)worker->pid, worker->stop_timeout,
			 signame_name(worker->stop_signal));
		worker_kill(worker, SIGKILL);
		break;
	case WORKER_BACKOFF:
		spawn(service, worker, service->config);
		break;
	case WORKER_READY:
		/* Only armed with health_timeout: the worker went quiet. */
		log_warn("%s[%d] sent no WATCHDOG=1 for %g s (health_timeout): killing its process "
			 "group",
			 worker->label, (int)worker->pid, worker->health_timeout);
		worker->unhealthy = true;
		worker->health_kills++;
		worker_kill(worker, SIGKILL);
		break;
	case WORKER_EXITED:
		break;
	}
}

int
service_new(const struct config_service *config, struct loop *loop, const char *notify_socket,
	    service_fn fn, void *data, struct service **ret_service)
{
	struct service *service = calloc(1, sizeof(*service));
	if (!service)
		return -ENOMEM;
	service->name = strdup(config->name);
	if (!service->name) {
		free(service);
		return -ENOMEM;
	}
	service->config = config;
	service->loop = loop;
	service->notify_socket = notify_socket;
	service->fn = fn;
	service->data = data;
	loop_timer_init(&service->memory_timer, check_memory, service);
	*ret_service = service;
	return 0;
}

static void
close_sockets(struct service *service)
{
	for (size_t i = 0; i < service->listen_count; i++) {
		/* A socket from the service manager is its to remove, not ours. */
		if (service->listen_adopted[i])
			close(service->listen_fds[i]);
		else
			listen_close(service->listen_specs[i], service->listen_directory,
				     service->listen_fds[i]);
		free(service->listen_specs[i]);
	}
	free(service->listen_fds);
	free(service->listen_adopted);
	service->listen_adopted = NULL;
	free(service->listen_specs);
	service->listen_specs = NULL;
	free(service->listen_names);
	free(service->listen_directory);
	service->listen_fds = NULL;
	service->listen_names = service->listen_directory = NULL;
	service->listen_count = 0;
}

int
service_open_sockets(struct service *service, const char *directory,
		     struct listen_inherited *inherited, char *error, size_t error_size)
{
	const struct config_service *config = service->config;
	if (config->listen_count == 0)
		return 0;
	size_t name_length = strlen(service->name) + 1;
	service->listen_fds = calloc(config->listen_count, sizeof(int));
	service->listen_adopted = calloc(config->listen_count, sizeof(bool));
	service->listen_specs = calloc(config->listen_count, sizeof(char *));
	service->listen_names = calloc(config->listen_count, name_length);
	service->listen_directory = strdup(directory);
	if (!service->listen_fds || !service->listen_adopted || !service->listen_specs ||
	    !service->listen_names || !service->listen_directory) {
		close_sockets(service);
		snprintf(error, error_size, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < config->listen_count; i++) {
		char *spec = strdup(config->listen[i]);
		int adopted = spec ? listen_adopt(inherited, spec, directory) : -1;
		service->listen_adopted[i] = adopted >= 0;
		service->listen_fds[i] = adopted;
		int r = !spec	       ? -ENOMEM
			: adopted >= 0 ? 0
				       : listen_open(spec, directory, &service->listen_fds[i],
						     error, error_size);
		if (r < 0) {
			free(spec);
			close_sockets(service);
			return r;
		}
		service->listen_specs[service->listen_count++] = spec;
		/* systemd's FileDescriptorName: here, the service's name for each socket. */
		if (i > 0)
			strcat(service->listen_names, ":");
		strcat(service->listen_names, service->name);
		log_info("%s: listening on %s%s", service->name, config->listen[i],
			 service->listen_adopted[i] ? " (socket from the service manager)" : "");
	}
	return 0;
}

void
service_free(struct service *service)
{
	if (!service)
		return;
	close_sockets(service);
	loop_timer_stop(service->loop, &service->memory_timer);
	for (size_t i = 0; i < service->worker_count; i++)
		worker_free(service, service->workers[i]);
	free(service->workers);
	free(service->name);
	free(service);
}

/* The memory of a worker and all its descendants, by the configured measure. */
static uint64_t
tree_memory(pid_t pid, enum config_memory_metric metric)
{
	struct metrics_tree tree;
	if (metrics_capture(pid, METRICS_WALK_CHILDREN, &tree) < 0)
		return 0;
	uint64_t total = 0;
	for (size_t i = 0; i < tree.count; i++)
		total += metric == CONFIG_MEMORY_RSS || !tree.processes[i].has_memory
			     ? tree.processes[i].resident_size
			     : tree.processes[i].memory.proportional_size;
	metrics_tree_free(&tree);
	return total;
}

/* Replaces a worker gracefully, as a one-worker rolling restart: the new one first. */
static void
replace_worker(struct service *service, struct worker *old)
{
	struct worker *worker = worker_new(service, old->index, old->generation);
	if (!worker || add_worker(service, worker) < 0) {
		free(worker);
		log_error("%s: out of memory replacing it", old->label);
		return;
	}
	worker->restarts = old->restarts;
	worker->memory_replacements = old->memory_replacements + 1;
	worker->replacing = old;
	old->replacement = worker;
	service->restarts++;
	spawn(service, worker, service->config);
}

/* No limit, no timer: an idle host without memory_limit never wakes. Called at start and
 * whenever a rolling restart brings in another config. */
static void
memory_timer_update(struct service *service)
{
	if (!service->config->memory_limit)
		loop_timer_stop(service->loop, &service->memory_timer);
	else if (!loop_timer_armed(&service->memory_timer))
		(void)loop_timer_start(service->loop, &service->memory_timer,
				       service->config->memory_check_interval);
}

static void
check_memory(struct loop *loop, void *data)
{
	struct service *service = data;
	const struct config_service *config = service->config;
	if (!config->memory_limit || service->stopping)
		return;
	const char *measure = config->memory_metric == CONFIG_MEMORY_RSS ? "RSS" : "PSS";
	for (size_t i = 0; i < service->worker_count; i++) {
		struct worker *worker = service->workers[i];
		if (worker->state != WORKER_READY || worker->replacement || worker->replacing ||
		    worker->generation != service->generation)
			continue;
		uint64_t used = tree_memory(worker->pid, config->memory_metric);
		if (used <= config->memory_limit)
			continue;
		log_warn("%s[%d] uses %.1f MiB (%s of its tree) over memory_limit %.1f MiB: "
			 "replacing it",
			 worker->label, (int)worker->pid, (double)used / 1048576.0, measure,
			 (double)config->memory_limit / 1048576.0);
		replace_worker(service, worker);
	}
	(void)loop_timer_start(loop, &service->memory_timer, config->memory_check_interval);
}

static int
start_generation(struct service *service, unsigned generation, const struct config_service *config)
{
	for (unsigned i = 0; i < config->count; i++) {
		struct worker *worker = worker_new(service, i, generation);
		if (!worker || add_worker(service, worker) < 0) {
			free(worker);
			return -ENOMEM;
		}
		spawn(service, worker, config);
	}
	return 0;
}

int
service_start(struct service *service, unsigned generation)
{
	service->generation = generation;
	memory_timer_update(service);
	return start_generation(service, generation, service->config);
}

int
service_roll(struct service *service, unsigned generation, const struct config_service *config)
{
	if (service->roll_generation)
		return -EBUSY;
	if (service->stopping)
		return -ESHUTDOWN;
	log_info("%s: rolling restart: starting generation %u (%u workers) beside generation %u",
		 service->name, generation, config->count, service->generation);
	service->roll_generation = generation;
	service->roll_config = config;
	int r = 0;
	if (in_batches(config)) {
		/* In batches: rolling_batch new workers at a time, each replacing one old. */
		service->roll_next = 0;
		for (unsigned i = 0; i < config->rolling_batch; i++)
			if (service->roll_generation != generation || !roll_start_next(service))
				break;
	} else {
		r = start_generation(service, generation, config);
	}
	if (r < 0) {
		roll_abort(service, strerror(-r));
		return 0;
	}
	/* With ready = none every worker was ready at spawn. */
	if (service->roll_generation == generation)
		check_roll_done(service);
	return 0;
}

void
service_stop(struct service *service)
{
	if (service->roll_generation)
		roll_abort(service, "the host is stopping");
	service->stopping = true;
	if (service->worker_count == 0) {
		service->fn(service, SERVICE_STOPPED, NULL, service->data);
		return;
	}
	for (size_t i = service->worker_count; i > 0; i--)
		if (i <= service->worker_count)
			stop_worker(service, service->workers[i - 1]);
}

void
service_kill(struct service *service)
{
	service->stopping = true;
	for (size_t i = service->worker_count; i > 0; i--) {
		if (i > service->worker_count)
			continue;
		struct worker *worker = service->workers[i - 1];
		if (worker->pid > 0) {
			set_state(worker, WORKER_STOPPING);
			worker_kill(worker, SIGKILL);
		} else {
			remove_worker(service, worker);
		}
	}
}

static struct worker *
find_worker(const struct service *service, pid_t pid)
{
	for (size_t i = 0; i < service->worker_count; i++)
		if (service->workers[i]->pid == pid)
			return service->workers[i];
	return NULL;
}

bool
service_child_exited(struct service *service, pid_t pid, int status)
{
	struct worker *worker = find_worker(service, pid);
	if (!worker)
		return false;
	worker_exited(service, worker, status);
	return true;
}

bool
service_notified(struct service *service, pid_t pid, bool ready, bool watchdog, const char *status)
{
	struct worker *worker = find_worker(service, pid);
	if (!worker)
		return false;
	if (status) {
		char *copy = strdup(status);
		if (copy) {
			free(worker->status_text);
			worker->status_text = copy;
		}
	}
	if ((watchdog || ready) && worker->state == WORKER_READY && worker->health_timeout > 0 &&
	    !worker->unhealthy)
		(void)loop_timer_start(service->loop, &worker->timer, worker->health_timeout);
	if (ready && worker->state == WORKER_STARTING) {
		log_info("%s[%d] ready after %.3f s", worker->label, (int)worker->pid,
			 loop_now_seconds() - worker->started_at);
		mark_ready(service, worker);
	}
	return true;
}

unsigned
service_ready_count(const struct service *service)
{
	unsigned ready = 0;
	for (size_t i = 0; i < service->worker_count; i++)
		if (service->workers[i]->generation == service->generation &&
		    service->workers[i]->state == WORKER_READY)
			ready++;
	return ready;
}

bool
service_has_worker(const struct service *service, pid_t pid)
{
	return pid > 0 && find_worker(service, pid) != NULL;
}
