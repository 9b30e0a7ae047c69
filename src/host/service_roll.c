/* service_roll: a service's generations: the first start and rolling restarts (all at once or
 * in batches). The one-worker replacements of the memory checks are in service_memory.c. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "host/service.h"
#include "host/service_private.h"
#include "lib/log.h"

/* A rolling restart in batches (rolling_batch) rather than all at once. With ready = none a
 * worker is ready as it starts, so batches would only chain the starts: all at once then. */
bool
service_roll_in_batches(const struct config_service *config)
{
	return config->rolling_batch && config->rolling_batch < config->count &&
	       config->ready == CONFIG_READY_NOTIFY;
}

static void
roll_finish(struct service *service, enum service_event event, const char *message)
{
	service->roll_generation = 0;
	service->roll_config = NULL;
	service->roll_result_pending = true;
	service->roll_result = event;
	snprintf(service->roll_message, sizeof(service->roll_message), "%s",
		 message ? message : "");
}

void
service_roll_abort(struct service *service, const char *message)
{
	unsigned generation = service->roll_generation;
	bool keep_ready = service_roll_in_batches(service->roll_config);
	log_warn("%s: rolling restart to generation %u failed (%s); generation %u keeps serving",
		 service->name, generation, message, service->generation);
	/* The new workers stop (a START still queued for one is void). In batches, those already
	 * ready have replaced old ones, which are gone: they stay and serve. */
	for (size_t i = 0; i < service->worker_count; i++) {
		struct worker *worker = service->workers[i];
		if (worker->generation != generation ||
		    (keep_ready && worker->state == WORKER_READY))
			continue;
		service_drop_events(service, worker);
		service_raise(service, worker, WORKER_EVENT_STOP);
	}
	char text[512];
	snprintf(text, sizeof(text), "%s: %s", service->name, message);
	roll_finish(service, SERVICE_ROLL_FAILED, text);
}

/* The next worker of a rolling restart in batches; NULL when all are started. */
static struct worker *
roll_new_worker(struct service *service)
{
	if (service->roll_next >= service->roll_config->count)
		return NULL;
	struct worker *worker =
	    service_worker_new(service, service->roll_next, service->roll_generation);
	if (worker)
		service->roll_next++;
	return worker;
}

static void
roll_check_done(struct service *service)
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
	service_memory_timer_update(service);
	for (size_t i = 0; i < service->worker_count; i++)
		if (service->workers[i]->generation != generation)
			service_raise(service, service->workers[i], WORKER_EVENT_STOP);
	roll_finish(service, SERVICE_ROLL_DONE, NULL);
}

/* A worker of the new generation is ready. In batches the old one of its index stops and the
 * next new one starts, so capacity never drops below count. */
void
service_roll_ready(struct service *service, struct worker *ready)
{
	if (service_roll_in_batches(service->roll_config)) {
		for (size_t i = 0; i < service->worker_count; i++) {
			struct worker *old = service->workers[i];
			if (old->generation != ready->generation && old->index == ready->index &&
			    old->state != WORKER_STOPPING) {
				service_raise(service, old, WORKER_EVENT_STOP);
				break;
			}
		}
		struct worker *next = roll_new_worker(service);
		if (next)
			service_raise(service, next, WORKER_EVENT_START);
	}
	roll_check_done(service);
}
