/* status: the SPEC's status object of a host and its services, encoded as JSON; pure. */
#include "host/status.h"

#include <sys/wait.h>

#include "host/logs.h"
#include "lib/json_out.h"
#include "lib/signame.h"

/* The status is written by hand into one buffer (see json_out.c): with jansson values it was
 * most of a status request's time. */
static void
worker_status(struct json_out *out, const struct worker *worker)
{
	json_out_field(out, "{\"pid\":", worker->pid);
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
	if (worker->status_text) {
		json_out_raw(out, ",\"status\":");
		json_out_string(out, worker->status_text);
	}
	json_out_raw(out, "}");
}

static void
service_status(struct json_out *out, const struct service *service)
{
	json_out_string(out, service->name);
	json_out_field(out, ":{\"count\":", service->config->count);
	json_out_field(out, ",\"ready\":", service_ready_count(service));
	json_out_field(out, ",\"restarts\":", service->restarts);
	json_out_field(out, ",\"generation\":", service->generation);
	if (service->config->log_file)
		json_out_field(out, ",\"log_dropped\":", (long long)logs_dropped(service->logs));
	json_out_raw(out, ",\"workers\":[");
	for (size_t i = 0; i < service->worker_count; i++) {
		if (i > 0)
			json_out_raw(out, ",");
		worker_status(out, service->workers[i]);
	}
	json_out_raw(out, "]}");
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
		service_status(&out, services[i]);
	}
	json_out_raw(&out, "}}");
	return json_out_finish(&out, ret_text);
}
