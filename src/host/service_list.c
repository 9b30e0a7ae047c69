/* service_list: the workers of a service, the queue of events raised while handling another,
 * and the removed workers, which only service_dispatch frees. The bottom of the service: it
 * calls nothing of the life cycle above it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host/service.h"
#include "host/service_private.h"
#include "lib/limits.h"
#include "lib/log.h"
#include "lib/loop.h"

const char *
service_state_name(enum worker_state state)
{
	static const char *const names[] = {
	    [WORKER_STARTING] = "starting", [WORKER_READY] = "ready",
	    [WORKER_STOPPING] = "stopping", [WORKER_BACKOFF] = "backoff",
	    [WORKER_EXITED] = "exited",	    [WORKER_FAILED] = "failed",
	    [WORKER_DONE] = "done",
	};
	return names[state];
}

const char *
service_event_name(enum worker_event event)
{
	static const char *const names[] = {
	    [WORKER_EVENT_START] = "start",	  [WORKER_EVENT_READY] = "ready",
	    [WORKER_EVENT_WATCHDOG] = "watchdog", [WORKER_EVENT_EXITED] = "exited",
	    [WORKER_EVENT_DEADLINE] = "deadline", [WORKER_EVENT_STOP] = "stop",
	    [WORKER_EVENT_KILL] = "kill",	  [WORKER_EVENT_REPLACE] = "replace",
	};
	return event < WORKER_EVENT_COUNT ? names[event] : "?";
}

void
service_set_state(struct service *service, struct worker *worker, enum worker_state state)
{
	if (worker->state != state)
		log_debug("%s[%d] %s → %s", worker->label, (int)worker->pid,
			  service_state_name(worker->state), service_state_name(state));
	worker->state = state;
	worker->since = loop_realtime_seconds();
	service->changed = true;
}

/* The config a worker runs with: the new one for a rolling restart's workers. */
const struct config_service *
service_worker_config(const struct service *service, const struct worker *worker)
{
	if (service->roll_generation && worker->generation == service->roll_generation)
		return service->roll_config;
	return service->config;
}

/* Room for what a handler may need later, taken here so that no exit or deadline has to
 * allocate: a removed worker's slot, and a few queued events per worker. */
static int
reserve(struct service *service)
{
	size_t workers = service->worker_count + service->removed_count + 1;
	if (workers > service->removed_capacity) {
		size_t capacity = workers * 2;
		struct worker **removed =
		    reallocarray(service->removed, capacity, sizeof(*removed));
		if (!removed)
			return -ENOMEM;
		service->removed = removed;
		service->removed_capacity = capacity;
	}
	if (workers * 4 > service->queue_capacity) {
		size_t capacity = workers * 8;
		struct service_queued *queue =
		    reallocarray(service->queue, capacity, sizeof(*queue));
		if (!queue)
			return -ENOMEM;
		service->queue = queue;
		service->queue_capacity = capacity;
	}
	if (service->worker_count == service->worker_capacity) {
		size_t capacity = service->worker_capacity ? service->worker_capacity * 2 : 8;
		struct worker **list = reallocarray(service->workers, capacity, sizeof(*list));
		if (!list)
			return -ENOMEM;
		service->workers = list;
		service->worker_capacity = capacity;
	}
	return 0;
}

/* A new worker in the list, not started: BACKOFF until its START. */
struct worker *
service_worker_new(struct service *service, unsigned index, unsigned generation)
{
	struct worker *worker = calloc(1, sizeof(*worker));
	if (!worker || reserve(service) < 0) {
		free(worker);
		return NULL;
	}
	worker->service = service;
	snprintf(worker->label, sizeof(worker->label), "%s.%u", service->name, index);
	worker->index = index;
	worker->generation = generation;
	worker->state = WORKER_BACKOFF;
	worker->exit_status = -1;
	worker_output_init(worker);
	worker->since = loop_realtime_seconds();
	service->workers[service->worker_count++] = worker;
	return worker;
}

void
service_worker_free(struct service *service, struct worker *worker)
{
	loop_timer_stop(service->loop, &worker->timer);
	if (worker->utilization_segment)
		utilization_release(&service->utilization, worker->utilization_segment - 1);
	worker_release(worker, service->loop);
	free(worker->status_text);
	free(worker->quick_deaths);
	free(worker);
}

/* Queues event for worker, to be handled after the current one. */
void
service_raise(struct service *service, struct worker *worker, enum worker_event event)
{
	if (service->queue_count == service->queue_capacity) {
		/* reserve() keeps room for more than any turn raises; growing is the fallback. */
		size_t capacity = service->queue_capacity ? service->queue_capacity * 2 : 16;
		struct service_queued *queue =
		    reallocarray(service->queue, capacity, sizeof(*queue));
		if (!queue) {
			log_error("%s: out of memory: event %s lost", worker->label,
				  service_event_name(event));
			return;
		}
		service->queue = queue;
		service->queue_capacity = capacity;
	}
	service->queue[service->queue_count++] = (struct service_queued){worker, event};
}

/* Forgets what is queued for worker: it is removed, or what it was to do is superseded. */
void
service_drop_events(struct service *service, const struct worker *worker)
{
	for (size_t i = 0; i < service->queue_count; i++)
		if (service->queue[i].worker == worker)
			service->queue[i].worker = NULL;
}

/* Out of the list (which keeps its order: status lists workers as they were started) and
 * into the removed ones, which service_dispatch frees. No walk over the list raises an event
 * that removes at once, so none sees it shrink. */
void
service_worker_remove(struct service *service, struct worker *worker)
{
	for (size_t i = 0; i < service->worker_count; i++) {
		if (service->workers[i] != worker)
			continue;
		memmove(&service->workers[i], &service->workers[i + 1],
			(service->worker_count - i - 1) * sizeof(*service->workers));
		service->worker_count--;
		break;
	}
	log_debug("%s %s → removed", worker->label, service_state_name(worker->state));
	if (worker->replacing)
		worker->replacing->replacement = NULL;
	if (worker->replacement)
		worker->replacement->replacing = NULL;
	worker->replacing = worker->replacement = NULL;
	loop_timer_stop(service->loop, &worker->timer);
	service_drop_events(service, worker);
	service->removed[service->removed_count++] = worker;
	service->changed = true;
	if (service->stopping && service->worker_count == 0)
		service->stopped_pending = true;
}

struct worker *
service_find_worker(const struct service *service, pid_t pid)
{
	for (size_t i = 0; i < service->worker_count; i++)
		if (service->workers[i]->pid == pid)
			return service->workers[i];
	return NULL;
}

unsigned
service_ready_count(const struct service *service)
{
	return service_state_count(service, WORKER_READY);
}

unsigned
service_state_count(const struct service *service, enum worker_state state)
{
	unsigned count = 0;
	for (size_t i = 0; i < service->worker_count; i++)
		if (service->workers[i]->generation == service->generation &&
		    service->workers[i]->state == state)
			count++;
	return count;
}

bool
service_has_worker(const struct service *service, pid_t pid)
{
	return pid > 0 && service_find_worker(service, pid) != NULL;
}
