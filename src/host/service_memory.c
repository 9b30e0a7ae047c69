/* service_memory: the memory checks of a service's workers, all on one timer: memory_limit
 * (a worker's tree over it), leaks (Falcon's rule: a worker that grew more than
 * memory_leak_threshold above its largest size seen, memory_leak_increases times) and
 * memory_total_limit (the service's max(shared_clean) + sum(private), Falcon's accounting).
 * Each replacement is graceful: a new worker starts beside the old one, which stops once the
 * new one is ready (worker_machine.c's REPLACE). */
#include <stdio.h>
#include <string.h>

#include "host/service.h"
#include "host/service_private.h"
#include "lib/limits.h"
#include "lib/log.h"

#define MIB(bytes) ((double)(bytes) / 1048576.0)

static bool
memory_checked(const struct config_service *config)
{
	return config->memory_limit || config->memory_total_limit || config->memory_leak_increases;
}

/* No key, no timer: an idle host without them never wakes. */
void
service_memory_timer_update(struct service *service)
{
	if (!memory_checked(service->config))
		loop_timer_stop(service->loop, &service->memory_timer);
	else if (!loop_timer_armed(&service->memory_timer))
		(void)loop_timer_start(service->loop, &service->memory_timer,
				       service->config->memory_check_interval);
}

/* A worker the checks may replace: ready, serving, and not in a replacement already. */
static bool
replaceable(const struct service *service, const struct worker *worker)
{
	return worker->state == WORKER_READY && !worker->replacement && !worker->replacing &&
	       worker->generation == service->generation;
}

/* Whether a replacement is under way: its new worker starting, or the old one stopping; or a
 * rolling restart, which runs two generations for a while. The budgets replace one worker at a
 * time and measure again once it is done. */
static bool
replacing(const struct service *service)
{
	if (service->roll_generation)
		return true;
	for (size_t i = 0; i < service->worker_count; i++) {
		const struct worker *worker = service->workers[i];
		if (worker->replacing || worker->replacement || worker->state == WORKER_STOPPING)
			return true;
	}
	return false;
}

static bool
measure(const struct service *service, struct worker *worker,
	struct worker_footprint *ret_footprint)
{
	if (worker->pid <= 0 || !service->spawner.footprint)
		return false;
	bool checking = service->memory_check % 2 == 1;
	if (checking && worker->footprint_check == service->memory_check) {
		*ret_footprint = worker->footprint;
		return true;
	}
	if (!service->spawner.footprint(service->spawner.data, worker->pid,
					service->config->memory_metric, ret_footprint))
		return false;
	if (checking) {
		worker->footprint = *ret_footprint;
		worker->footprint_check = service->memory_check;
	}
	return true;
}

struct worker *
service_memory_candidate(struct service *service, struct worker_footprint *ret_footprint,
			 bool *ret_busy)
{
	*ret_busy = replacing(service);
	struct worker *largest = NULL;
	struct worker_footprint best = {0}, footprint;
	for (size_t i = 0; i < service->worker_count && !*ret_busy; i++) {
		struct worker *worker = service->workers[i];
		if (replaceable(service, worker) && measure(service, worker, &footprint) &&
		    (!largest || footprint.private_size > best.private_size)) {
			largest = worker;
			best = footprint;
		}
	}
	if (largest)
		*ret_footprint = best;
	return largest;
}

void
service_memory_replace(struct service *service, struct worker *worker,
		       enum service_memory_cause cause)
{
	switch (cause) {
	case SERVICE_MEMORY_TOTAL_LIMIT:
		service->memory_total_replacements++;
		break;
	case SERVICE_MEMORY_FREE_MINIMUM:
		service->memory_free_replacements++;
		break;
	case SERVICE_MEMORY_LEAK:
		service->memory_leak_replacements++;
		break;
	}
	service_raise(service, worker, WORKER_EVENT_REPLACE);
}

/* Falcon's memory-leak rule: the first size seen is the maximum; a size more than the
 * threshold above it becomes the maximum and counts one increase. */
static bool
leaking(const struct config_service *config, struct worker *worker, uint64_t size)
{
	if (!worker->leak_maximum) {
		worker->leak_maximum = size;
		return false;
	}
	if (size <= worker->leak_maximum + config->memory_leak_threshold)
		return false;
	log_info("%s[%d] grew to %.1f MiB, %.1f MiB above its largest size seen (increase %u of "
		 "%u)",
		 worker->label, (int)worker->pid, MIB(size), MIB(size - worker->leak_maximum),
		 worker->leak_increases + 1, config->memory_leak_increases);
	worker->leak_maximum = size;
	return ++worker->leak_increases >= config->memory_leak_increases;
}

void
memory_pace_reset(struct memory_pace *pace)
{
	*pace = (struct memory_pace){0};
}

enum memory_pace_verdict
memory_pace_check(struct memory_pace *pace, uint64_t improvement)
{
	if (pace->wait) {
		pace->wait--;
		return MEMORY_PACE_WAIT;
	}
	/* A new worker that grows back to about the size of the one it replaced is no progress. */
	if (!pace->before || improvement >= pace->freed / 2)
		return MEMORY_PACE_GO;
	pace->backoff = pace->backoff ? pace->backoff * 2 : 1;
	if (pace->backoff > SERVICE_BUDGET_BACKOFF_MAX)
		pace->backoff = SERVICE_BUDGET_BACKOFF_MAX;
	pace->wait = pace->backoff;
	pace->before = 0;
	return MEMORY_PACE_NO_PROGRESS;
}

void
memory_pace_replaced(struct memory_pace *pace, uint64_t figure, uint64_t freed)
{
	pace->before = figure;
	pace->freed = freed;
}

/* One replacement, then measure again (service_check_memory waits a check more); fewer when
 * they do not help (memory_pace_check): a budget that cannot be met does not churn the
 * service. */
static void
check_total(struct service *service)
{
	const struct config_service *config = service->config;
	struct worker_footprint footprint;
	uint64_t shared = 0, private_size = 0;
	unsigned measured = 0;
	for (size_t i = 0; i < service->worker_count; i++) {
		struct worker *worker = service->workers[i];
		if ((worker->state == WORKER_READY || worker->state == WORKER_STARTING) &&
		    measure(service, worker, &footprint)) {
			measured++;
			shared = footprint.shared_clean > shared ? footprint.shared_clean : shared;
			private_size += footprint.private_size;
		}
	}
	uint64_t total = shared + private_size, before = service->budget.before;
	if (total <= config->memory_total_limit) {
		memory_pace_reset(&service->budget);
		return;
	}
	switch (memory_pace_check(&service->budget, before > total ? before - total : 0)) {
	case MEMORY_PACE_WAIT:
		return;
	case MEMORY_PACE_NO_PROGRESS:
		log_warn("%s: the last replacement did not bring its memory down (%.1f MiB, then "
			 "%.1f MiB): memory_total_limit %.1f MiB looks out of reach; waiting %u "
			 "checks before the next",
			 service->name, MIB(before), MIB(total), MIB(config->memory_total_limit),
			 service->budget.wait);
		return;
	case MEMORY_PACE_GO:
		break;
	}
	bool busy;
	struct worker *largest = service_memory_candidate(service, &footprint, &busy);
	if (!largest)
		return;
	log_warn("%s uses %.1f MiB (largest shared_clean %.1f MiB + private %.1f MiB of %u "
		 "workers) over memory_total_limit %.1f MiB: replacing %s[%d], the largest "
		 "(%.1f MiB private)",
		 service->name, MIB(total), MIB(shared), MIB(private_size), measured,
		 MIB(config->memory_total_limit), largest->label, (int)largest->pid,
		 MIB(footprint.private_size));
	memory_pace_replaced(&service->budget, total, footprint.private_size);
	service_memory_replace(service, largest, SERVICE_MEMORY_TOTAL_LIMIT);
}

void
service_check_memory(struct loop *loop, void *data)
{
	struct service *service = data;
	const struct config_service *config = service->config;
	if (!memory_checked(config) || service->stopping)
		return;
	const char *measure_name = config->memory_metric == CONFIG_MEMORY_RSS ? "RSS" : "PSS";
	bool replaced = false;
	service->memory_check++; /* odd: the check runs */
	for (size_t i = 0; i < service->worker_count; i++) {
		struct worker *worker = service->workers[i];
		if (!replaceable(service, worker))
			continue;
		struct worker_footprint footprint = {0};
		if (service->spawner.footprint) {
			if (!measure(service, worker, &footprint))
				continue;
		} else {
			footprint.size = service->spawner.memory(service->spawner.data, worker->pid,
								 config->memory_metric);
		}
		if (config->memory_limit && footprint.size > config->memory_limit) {
			log_warn(
			    "%s[%d] uses %.1f MiB (%s of its tree) over memory_limit %.1f MiB: "
			    "replacing it",
			    worker->label, (int)worker->pid, MIB(footprint.size), measure_name,
			    MIB(config->memory_limit));
			service_raise(service, worker, WORKER_EVENT_REPLACE);
			replaced = true;
		} else if (config->memory_leak_increases &&
			   leaking(config, worker, footprint.size)) {
			log_warn("%s[%d] leaks: it grew more than %.1f MiB above its largest size "
				 "%u times (now %.1f MiB, %s): replacing it",
				 worker->label, (int)worker->pid,
				 MIB(config->memory_leak_threshold), worker->leak_increases,
				 MIB(footprint.size), measure_name);
			service_memory_replace(service, worker, SERVICE_MEMORY_LEAK);
			replaced = true;
		}
	}
	/* Measured again one check after a replacement is over, not at once: the new worker has
	 * had an interval to grow to its working size (most allocate after READY=1). */
	if (replaced || replacing(service))
		service->budget_settling = true;
	else if (service->budget_settling)
		service->budget_settling = false;
	else if (config->memory_total_limit)
		check_total(service);
	service->memory_check++;
	(void)loop_timer_start(loop, &service->memory_timer, config->memory_check_interval);
}
