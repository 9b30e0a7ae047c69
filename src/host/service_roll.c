/* service_roll: a service's generations: the first start, rolling restarts (all at once or
 * in batches), and the one-worker replacements of a worker over memory_limit. */
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

/* Memory: with memory_limit, a periodic check replaces the workers over it. */

/* No limit, no timer: an idle host without memory_limit never wakes. Called at start and
 * whenever a rolling restart brings in another config. */
void
service_memory_timer_update(struct service *service)
{
	if (!service->config->memory_limit)
		loop_timer_stop(service->loop, &service->memory_timer);
	else if (!loop_timer_armed(&service->memory_timer))
		(void)loop_timer_start(service->loop, &service->memory_timer,
				       service->config->memory_check_interval);
}

void
service_check_memory(struct loop *loop, void *data)
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
		uint64_t used = service->spawner.memory(service->spawner.data, worker->pid,
							config->memory_metric);
		if (used <= config->memory_limit)
			continue;
		log_warn("%s[%d] uses %.1f MiB (%s of its tree) over memory_limit %.1f MiB: "
			 "replacing it",
			 worker->label, (int)worker->pid, (double)used / 1048576.0, measure,
			 (double)config->memory_limit / 1048576.0);
		service_raise(service, worker, WORKER_EVENT_REPLACE);
	}
	(void)loop_timer_start(loop, &service->memory_timer, config->memory_check_interval);
}
