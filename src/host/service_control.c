/* service_control: what an operator asks of one service besides a rolling restart: a stop that
 * holds it stopped, a start again, a new count; and whether what was asked is done. Beside
 * service.c, on the same layer: it raises events for the machine (worker_machine.c) to handle. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "host/service.h"
#include "host/service_private.h"
#include "lib/log.h"

int
service_hold(struct service *service)
{
	if (service->roll_generation)
		return -EBUSY;
	service->held = true;
	log_info("%s: stopping (asked for); it stays stopped until started", service->name);
	service_stop(service);
	return 0;
}

int
service_resume(struct service *service)
{
	if (!service->held)
		return 0;
	if (service->worker_count > 0)
		return -EBUSY;
	service->held = false;
	service->stopping = false;
	/* A stop leaves nothing to report: the next stop of the host counts this one again. */
	service->stopped_pending = false;
	log_info("%s: starting %u workers (asked for)", service->name, service->config->count);
	return service_start(service, service->generation);
}

/* The worker of the serving generation at index that is not stopping, or NULL. */
static struct worker *
serving_worker(const struct service *service, unsigned index)
{
	for (size_t i = 0; i < service->worker_count; i++) {
		struct worker *worker = service->workers[i];
		if (worker->generation == service->generation && worker->index == index &&
		    worker->state != WORKER_STOPPING && !worker->replacing)
			return worker;
	}
	return NULL;
}

int
service_scale(struct service *service, const struct config_service *config)
{
	if (service->roll_generation)
		return -EBUSY;
	service->config = config;
	if (service->held || service->stopping)
		return 0; /* it takes the count when it starts again */
	unsigned count = config->count;
	log_info("%s: scaling to %u workers", service->name, count);
	/* The highest indexes stop; a replacement's pair goes with it. */
	for (size_t i = 0; i < service->worker_count; i++) {
		struct worker *worker = service->workers[i];
		if (worker->index >= count && worker->state != WORKER_STOPPING)
			service_raise(service, worker, WORKER_EVENT_STOP);
	}
	for (unsigned index = 0; index < count; index++) {
		if (serving_worker(service, index))
			continue;
		struct worker *worker = service_worker_new(service, index, service->generation);
		if (!worker)
			return -ENOMEM;
		service_raise(service, worker, WORKER_EVENT_START);
	}
	return 0;
}

enum service_settle
service_settled(const struct service *service, unsigned from_index, char *message, size_t size)
{
	if (service->held)
		return service->worker_count == 0 ? SERVICE_SETTLE_DONE : SERVICE_SETTLE_PENDING;
	unsigned count = service->config->count, ready = 0;
	bool above = false;
	for (size_t i = 0; i < service->worker_count; i++) {
		const struct worker *worker = service->workers[i];
		if (worker->index >= count) {
			above = true;
			continue;
		}
		if (worker->generation != service->generation)
			continue;
		if (worker->state == WORKER_READY) {
			ready++;
			continue;
		}
		/* Not restarted by its policy: settled as it is if it exited cleanly (done: a job
		 * that finished), or if it ran before this change. */
		if (worker->state == WORKER_DONE ||
		    (worker->state == WORKER_EXITED && worker->index < from_index)) {
			ready++;
			continue;
		}
		/* The start limit ended its retries (start resets it first): it will not be
		 * ready, whichever index it has. */
		if (worker->state == WORKER_FAILED) {
			snprintf(message, size,
				 "%s failed: it died before min_uptime start_limit_burst times",
				 worker->label);
			return SERVICE_SETTLE_FAILED;
		}
		/* A new worker that has exited once already never became ready. */
		if (worker->index >= from_index && worker->exit_status >= 0 &&
		    worker->state != WORKER_STOPPING) {
			int status = worker->exit_status;
			if (WIFEXITED(status))
				snprintf(message, size,
					 "%s exited with status %d before it was ready",
					 worker->label, WEXITSTATUS(status));
			else
				snprintf(message, size,
					 "%s was killed by signal %d before it was ready",
					 worker->label, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
			return SERVICE_SETTLE_FAILED;
		}
	}
	return !above && ready >= count ? SERVICE_SETTLE_DONE : SERVICE_SETTLE_PENDING;
}
