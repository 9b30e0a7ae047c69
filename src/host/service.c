/* service: a service as the host sees it: made and freed, started, rolled, stopped; what the
 * host reports to it (exits, notify messages); and the dispatch of what its workers raised,
 * which the host runs from the loop's before-wait hook. What an event does to a worker is in
 * worker_machine.c; generations in service_roll.c; the list of workers in service_list.c. */
#include "host/service.h"
#include "host/logs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/service_private.h"
#include "lib/limits.h"
#include "lib/log.h"

int
service_new(const struct config_service *config, struct loop *loop, const char *notify_socket,
	    const struct spawner *spawner, service_fn fn, void *data, struct service **ret_service)
{
	struct service *service = calloc(1, sizeof(*service));
	if (!service)
		return -ENOMEM;
	service->name = strdup(config->name);
	if (!service->name) {
		free(service);
		return -ENOMEM;
	}
	if (logs_new(config, &service->logs) < 0) {
		free(service->name);
		free(service);
		return -ENOMEM;
	}
	service->config = config;
	service->loop = loop;
	service->notify_socket = notify_socket;
	service->spawner = *spawner;
	service->fn = fn;
	service->data = data;
	service->backoff_reset = SERVICE_BACKOFF_RESET_SECONDS;
	service->spawn_retry_delay = SERVICE_SPAWN_RETRY_DELAY;
	loop_timer_init(&service->memory_timer, service_check_memory, service);
	*ret_service = service;
	return 0;
}

void
service_free(struct service *service)
{
	if (!service)
		return;
	service_close_sockets(service);
	loop_timer_stop(service->loop, &service->memory_timer);
	for (size_t i = 0; i < service->worker_count; i++)
		service_worker_free(service, service->workers[i]);
	for (size_t i = 0; i < service->removed_count; i++)
		service_worker_free(service, service->removed[i]);
	utilization_close(&service->utilization);
	free(service->utilization_path);
	free(service->workers);
	free(service->removed);
	free(service->queue);
	logs_free(service->logs);
	free(service->name);
	free(service);
}

int
service_set_utilization_path(struct service *service, const char *control_socket)
{
	char *path;
	if (asprintf(&path, "%s.%s.utilization", control_socket, service->name) < 0)
		return -ENOMEM;
	free(service->utilization_path);
	service->utilization_path = path;
	return 0;
}

bool
service_worker_utilization(const struct service *service, const struct worker *worker,
			   struct utilization_counters *ret_counters)
{
	if (!worker->utilization_segment)
		return false;
	utilization_read(&service->utilization, worker->utilization_segment - 1, ret_counters);
	return true;
}

/* Creates count workers of generation and starts them. */
static int
start_generation(struct service *service, unsigned generation, unsigned count)
{
	for (unsigned i = 0; i < count; i++) {
		struct worker *worker = service_worker_new(service, i, generation);
		if (!worker)
			return -ENOMEM;
		service_handle(service, worker, WORKER_EVENT_START, 0);
	}
	return 0;
}

int
service_start(struct service *service, unsigned generation)
{
	service->generation = generation;
	service_memory_timer_update(service);
	return start_generation(service, generation, service->config->count);
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
	service->roll_next =
	    service_roll_in_batches(config) ? config->rolling_batch : config->count;
	/* In batches: rolling_batch new workers at a time, each replacing one old. Whatever
	 * happens next (ready, an exit, the roll done or failed) comes as events, later. */
	int r = start_generation(service, generation, service->roll_next);
	if (r < 0)
		service_roll_abort(service, strerror(-r));
	return 0;
}

unsigned
service_reset_failed(struct service *service)
{
	unsigned reset = 0;
	if (service->stopping)
		return 0;
	for (size_t i = 0; i < service->worker_count; i++) {
		struct worker *worker = service->workers[i];
		if (worker->state != WORKER_FAILED)
			continue;
		free(worker->quick_deaths);
		worker->quick_deaths = NULL;
		worker->quick_death_slots = worker->quick_death_next = 0;
		worker->failures = 0;
		log_info("%s: failed state cleared: starting it again", worker->label);
		service_raise(service, worker, WORKER_EVENT_START);
		reset++;
	}
	return reset;
}

/* What the host calls: a stop is an event for each worker, raised; an exit or a notify
 * message is handled at once. */

void
service_stop(struct service *service)
{
	if (service->roll_generation)
		service_roll_abort(service, "the host is stopping");
	service->stopping = true;
	if (service->worker_count == 0)
		service->stopped_pending = true;
	for (size_t i = 0; i < service->worker_count; i++)
		service_raise(service, service->workers[i], WORKER_EVENT_STOP);
}

void
service_kill(struct service *service)
{
	service->stopping = true;
	for (size_t i = 0; i < service->worker_count; i++)
		service_raise(service, service->workers[i], WORKER_EVENT_KILL);
}

bool
service_child_exited(struct service *service, pid_t pid, int status)
{
	struct worker *worker = service_find_worker(service, pid);
	if (!worker)
		return false;
	service_handle(service, worker, WORKER_EVENT_EXITED, status);
	return true;
}

bool
service_notified(struct service *service, pid_t pid, bool ready, bool watchdog, const char *status)
{
	struct worker *worker = service_find_worker(service, pid);
	if (!worker)
		return false;
	if (status) {
		char *copy = strdup(status);
		if (copy) {
			free(worker->status_text);
			worker->status_text = copy;
		}
	}
	if (ready || watchdog)
		service_handle(service, worker, ready ? WORKER_EVENT_READY : WORKER_EVENT_WATCHDOG,
			       0);
	return true;
}

bool
service_dispatch(struct service *service)
{
	bool busy = service->queue_count > 0 || service->removed_count > 0;
	/* Handlers append to the queue as it is walked: by index, not by pointer. */
	for (size_t i = 0; i < service->queue_count; i++) {
		struct service_queued entry = service->queue[i];
		if (entry.worker)
			service_handle(service, entry.worker, entry.event, 0);
	}
	service->queue_count = 0;
	for (size_t i = 0; i < service->removed_count; i++)
		service_worker_free(service, service->removed[i]);
	service->removed_count = 0;

	/* Last, once the queue is empty, what the owner hears. */
	if (service->roll_result_pending) {
		service->roll_result_pending = false;
		char message[sizeof(service->roll_message)];
		snprintf(message, sizeof(message), "%s", service->roll_message);
		service->fn(service, service->roll_result, message[0] ? message : NULL,
			    service->data);
		busy = true;
	}
	if (service->stopped_pending) {
		service->stopped_pending = false;
		service->fn(service, SERVICE_STOPPED, NULL, service->data);
		busy = true;
	}
	if (service->changed) {
		service->changed = false;
		service->fn(service, SERVICE_CHANGED, NULL, service->data);
	}
	return busy;
}
