/* host_monitor: what the host watches on timers of its own, each armed only when its [host] key
 * is set: memory_free_minimum (the machine's available memory, Falcon's free_size_minimum) and
 * metrics_log_interval (the tree's metrics in the log, Falcon's ProcessMonitor). */
#include <unistd.h>

#include "host/host_private.h"
#include "lib/format.h"
#include "lib/log.h"
#include "metrics/host_memory.h"
#include "metrics/metrics.h"

#define MIB(bytes) ((double)(bytes) / 1048576.0)

/* Below the minimum: the worker with most private memory of all services is replaced, one at
 * a time (none while another replacement is under way), then memory is read again; fewer when
 * they do not help (memory_pace_check): a machine short of memory for other reasons does not
 * churn every worker. */
static void
check_free(struct host *host)
{
	unsigned long long minimum = host->memory_free_minimum;
	uint64_t available;
	enum host_memory_source source;
	int r = host_memory_available("", &available, &source);
	if (r < 0) {
		log_errno(LOG_WARN, r, "memory_free_minimum: cannot read the available memory");
		return;
	}
	if (available >= minimum) {
		memory_pace_reset(&host->free_pace);
		return;
	}
	struct service *owner = NULL;
	struct worker *largest = NULL;
	struct worker_footprint best = {0};
	for (size_t i = 0; i < host->service_count; i++) {
		struct worker_footprint footprint;
		bool busy;
		struct worker *worker =
		    service_memory_candidate(host->services[i], &footprint, &busy);
		if (busy)
			return;
		if (worker && (!largest || footprint.private_size > best.private_size)) {
			owner = host->services[i];
			largest = worker;
			best = footprint;
		}
	}
	uint64_t before = host->free_pace.before;
	switch (memory_pace_check(&host->free_pace, available > before ? available - before : 0)) {
	case MEMORY_PACE_WAIT:
		return;
	case MEMORY_PACE_NO_PROGRESS:
		log_warn("memory_free_minimum: the last replacement did not free memory (%.1f MiB "
			 "available, then %.1f MiB); waiting %u checks before the next",
			 MIB(before), MIB(available), host->free_pace.wait);
		return;
	case MEMORY_PACE_GO:
		break;
	}
	if (!largest)
		return;
	log_warn("%.1f MiB available (%s), under memory_free_minimum %.1f MiB: replacing %s[%d], "
		 "the largest worker (%.1f MiB private)",
		 MIB(available), host_memory_source_name(source), MIB(minimum), largest->label,
		 (int)largest->pid, MIB(best.private_size));
	memory_pace_replaced(&host->free_pace, available, best.private_size);
	service_memory_replace(owner, largest, SERVICE_MEMORY_FREE_MINIMUM);
}

static void
on_memory_free(struct loop *loop, void *data)
{
	struct host *host = data;
	if (!host->stop_requests)
		check_free(host);
	(void)loop_timer_start(loop, &host->memory_free_timer, HOST_MEMORY_FREE_INTERVAL);
}

/* One line per process of the tree, then the totals: what `aerie metrics` prints, in the log. */
static void
log_metrics(const struct metrics_tree *tree)
{
	uint64_t resident = 0, total = 0;
	double cpu = 0;
	for (size_t i = 0; i < tree->count; i++) {
		const struct metrics_process *p = &tree->processes[i];
		char rss[32], size[32];
		log_info("metrics: pid %d (parent %d) cpu %.2f s (%.1f %%), rss %s, total_size %s: "
			 "%s",
			 (int)p->pid, (int)p->ppid, p->processor_time, p->processor_utilization,
			 format_size(p->resident_size, rss, sizeof(rss)),
			 format_size(metrics_total_size(p), size, sizeof(size)), p->command);
		resident += p->resident_size;
		total += metrics_total_size(p);
		cpu += p->processor_time;
	}
	char rss[32], size[32];
	log_info("metrics: %zu processes, cpu %.2f s, rss %s, total_size %s", tree->count, cpu,
		 format_size(resident, rss, sizeof(rss)), format_size(total, size, sizeof(size)));
}

static void
on_metrics_log(struct loop *loop, void *data)
{
	struct host *host = data;
	struct metrics_tree tree;
	int r = metrics_capture(getpid(), METRICS_WALK_CHILDREN, &tree);
	if (r < 0) {
		log_errno(LOG_WARN, r, "metrics_log_interval: cannot capture the tree");
	} else {
		log_metrics(&tree);
		metrics_tree_free(&tree);
	}
	(void)loop_timer_start(loop, &host->metrics_log_timer, host->metrics_log_interval);
}

void
host_monitor_start(struct host *host)
{
	/* [host] keys are read at start only: a reload does not change them. */
	const struct config *config = host->configs[host->config_count - 1];
	host->memory_free_minimum = config->memory_free_minimum;
	host->metrics_log_interval = config->metrics_log_interval;
	loop_timer_init(&host->memory_free_timer, on_memory_free, host);
	loop_timer_init(&host->metrics_log_timer, on_metrics_log, host);
	if (config->memory_free_minimum)
		(void)loop_timer_start(host->loop, &host->memory_free_timer,
				       HOST_MEMORY_FREE_INTERVAL);
	if (config->metrics_log_interval > 0)
		(void)loop_timer_start(host->loop, &host->metrics_log_timer,
				       config->metrics_log_interval);
}

void
host_monitor_stop(struct host *host)
{
	loop_timer_stop(host->loop, &host->memory_free_timer);
	loop_timer_stop(host->loop, &host->metrics_log_timer);
}
