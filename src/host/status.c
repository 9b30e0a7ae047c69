/* status: the SPEC's status object of a host and its services, encoded as JSON; pure. */
#include "host/status.h"

#include <inttypes.h>
#include <sys/wait.h>

#include "host/logs.h"
#include "lib/json_out.h"
#include "lib/signame.h"

/* The status is written by hand into one buffer (see json_out.c): with jansson values it was
 * most of a status request's time. */
static void
counters_status(struct json_out *out, const struct utilization_counters *counters)
{
	json_out_printf(out,
			"{\"connections_active\":%" PRIu64 ",\"connections_total\":%" PRIu64
			",\"requests_active\":%" PRIu64 ",\"requests_total\":%" PRIu64,
			counters->connections_active, counters->connections_total,
			counters->requests_active, counters->requests_total);
}

static void
worker_status(struct json_out *out, const struct service *service, const struct worker *worker)
{
	if (worker->pid > 0)
		json_out_field(out, "{\"pid\":", worker->pid);
	else
		json_out_raw(out, "{\"pid\":null"); /* not running: no pid, not 0 */
	json_out_field(out, ",\"index\":", worker->index);
	json_out_field(out, ",\"generation\":", worker->generation);
	json_out_raw(out, ",\"state\":\"");
	json_out_raw(out, service_state_name(worker->state));
	json_out_raw(out, "\",\"since\":");
	json_out_seconds(out, worker->since);
	json_out_field(out, ",\"restarts\":", worker->restarts);
	json_out_field(out, ",\"health_kills\":", worker->health_kills);
	json_out_field(out, ",\"memory_replacements\":", worker->memory_replacements);
	if (worker->exit_status >= 0 && WIFEXITED(worker->exit_status)) {
		json_out_field(out, ",\"last_exit\":{\"code\":", WEXITSTATUS(worker->exit_status));
		json_out_raw(out, "}");
	} else if (worker->exit_status >= 0) {
		json_out_raw(out, ",\"last_exit\":{\"signal\":\"");
		json_out_raw(out, signame_name(WTERMSIG(worker->exit_status)));
		json_out_raw(out, "\"}");
	}
	if (worker->state == WORKER_BACKOFF && worker->retry_at > 0) {
		json_out_raw(out, ",\"retry_at\":");
		json_out_seconds(out, worker->retry_at);
	}
	if (worker->status_text) {
		json_out_raw(out, ",\"status\":");
		json_out_string(out, worker->status_text);
	}
	struct utilization_counters counters;
	if (service_worker_utilization(service, worker, &counters)) {
		json_out_raw(out, ",\"utilization\":");
		counters_status(out, &counters);
		json_out_raw(out, "}");
	}
	json_out_raw(out, "}");
}

/* Replacements by the memory checks, when any is set. */
static void
memory_status(struct json_out *out, const struct status_host *host, const struct service *service)
{
	const struct config_service *config = service->config;
	if (!config->memory_total_limit && !config->memory_leak_increases &&
	    !host->memory_free_minimum && !service->memory_free_replacements)
		return;
	json_out_field(out, ",\"memory_replacements_by_cause\":{\"total_limit\":",
		       service->memory_total_replacements);
	json_out_field(out, ",\"free_minimum\":", service->memory_free_replacements);
	json_out_field(out, ",\"leak\":", service->memory_leak_replacements);
	json_out_raw(out, "}");
}

/* The sum over its workers (Falcon's UtilizationMonitor), the totals including those of
 * workers gone. */
static void
utilization_status(struct json_out *out, const struct service *service)
{
	if (!service->utilization.path)
		return;
	struct utilization_counters sum = service->utilization.retired, counters;
	unsigned workers = 0;
	for (size_t i = 0; i < service->worker_count; i++) {
		if (!service_worker_utilization(service, service->workers[i], &counters))
			continue;
		workers++;
		sum.connections_active += counters.connections_active;
		sum.connections_total += counters.connections_total;
		sum.requests_active += counters.requests_active;
		sum.requests_total += counters.requests_total;
	}
	json_out_raw(out, ",\"utilization\":");
	counters_status(out, &sum);
	json_out_field(out, ",\"workers\":", workers);
	json_out_raw(out, "}");
}

static void
service_status(struct json_out *out, const struct status_host *host, const struct service *service)
{
	json_out_string(out, service->name);
	json_out_field(out, ":{\"count\":", service->config->count);
	uint64_t memory;
	if (host->service_memory && host->service_memory(service->name, &memory))
		json_out_field(out, ",\"memory_current\":", (long long)memory);
	json_out_field(out, ",\"ready\":", service_ready_count(service));
	json_out_field(out, ",\"restarts\":", service->restarts);
	json_out_field(out, ",\"generation\":", service->generation);
	json_out_field(out, ",\"done\":", service_state_count(service, WORKER_DONE));
	json_out_field(out, ",\"failed\":", service_state_count(service, WORKER_FAILED));
	json_out_field(out, ",\"failures\":", service->failures);
	json_out_field(out, ",\"health_kills\":", service->health_kills);
	json_out_field(out, ",\"memory_replacements\":", service->memory_replacements);
	if (service->held)
		json_out_raw(out, ",\"stopped\":true");
	if (service->config->log_file)
		json_out_field(out, ",\"log_dropped\":", (long long)logs_dropped(service->logs));
	json_out_raw(out, ",\"workers\":[");
	/* The workers that serve (or are to) first, then the draining ones, each in the order
	 * they were started: an old worker and its replacement share an index. */
	size_t written = 0;
	for (int draining = 0; draining <= 1; draining++)
		for (size_t i = 0; i < service->worker_count; i++) {
			const struct worker *worker = service->workers[i];
			if ((worker->state == WORKER_STOPPING) != draining)
				continue;
			if (written++ > 0)
				json_out_raw(out, ",");
			worker_status(out, service, worker);
		}
	json_out_raw(out, "]");
	memory_status(out, host, service);
	utilization_status(out, service);
	json_out_raw(out, "}");
}

ssize_t
status_encode(const struct status_host *host, struct service *const *services, size_t count,
	      char **ret_text)
{
	struct json_out out = {0};
	json_out_field(&out, "{\"host\":{\"pid\":", host->pid);
	json_out_raw(&out, ",\"uptime\":");
	json_out_seconds(&out, host->uptime);
	json_out_field(&out, ",\"generation\":", host->generation);
	json_out_raw(&out, host->stopping ? ",\"stopping\":true},\"services\":{"
					  : ",\"stopping\":false},\"services\":{");
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			json_out_raw(&out, ",");
		service_status(&out, host, services[i]);
	}
	json_out_raw(&out, "}}");
	return json_out_finish(&out, ret_text);
}
