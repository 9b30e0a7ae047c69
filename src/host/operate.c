/* operate: an operator's requests for one service (stop, start, scale, signal), and the
 * operations they and reloads start, each answered once service_settled says it is done. A
 * request for a service that another change (an operation, a rolling restart) is under way for
 * is answered "busy" at once rather than queued: the operator sees the state it met. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/host_private.h"
#include "lib/log.h"
#include "lib/signame.h"

void
host_clear_failed(struct host *host, struct service *service)
{
	/* start_limit_burst's failed state is cleared here, by start and by reload alike. */
	(void)host;
	unsigned reset = service_reset_failed(service);
	if (reset)
		log_info("%s: start limit reset: %u failed worker%s started again", service->name,
			 reset, reset == 1 ? "" : "s");
}

int
host_operation_add(struct host *host, struct service *service, enum host_operation_kind kind,
		   unsigned from_index, bool reload, struct control_ticket ticket)
{
	struct host_operation *op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	*op = (struct host_operation){
	    .next = host->operations,
	    .service = service,
	    .kind = kind,
	    .from_index = from_index,
	    .reload = reload,
	    .ticket = ticket,
	};
	host->operations = op;
	if (reload)
		host->restart_services_pending++;
	return 0;
}

/* A removed service's end: out of the host's list, freed with its sockets. */
static void
remove_service(struct host *host, struct service *service)
{
	for (size_t i = 0; i < host->service_count; i++) {
		if (host->services[i] != service)
			continue;
		memmove(&host->services[i], &host->services[i + 1],
			(host->service_count - i - 1) * sizeof(*host->services));
		host->service_count--;
		break;
	}
	log_info("%s: stopped and removed", service->name);
	service_free(service);
}

/* The answer to op's request, or its part of the reload; message NULL: done. */
static void
finish(struct host *host, struct host_operation *op, enum protocol_code code, const char *message)
{
	struct service *service = op->service;
	if (op->reload) {
		if (message && !host->restart_error[0])
			snprintf(host->restart_error, sizeof(host->restart_error), "%s: %s",
				 service->name, message);
		if (host->restart_running && --host->restart_services_pending == 0)
			host_restart_finish(host);
	} else if (message) {
		char text[600];
		snprintf(text, sizeof(text), "%s: %s", service->name, message);
		control_reply_error(host->control, op->ticket, code, text);
	} else {
		char reply[64];
		int length = op->kind == HOST_OPERATION_SCALE
				 ? snprintf(reply, sizeof(reply), "{\"ok\":true,\"count\":%u}",
					    service->config->count)
				 : snprintf(reply, sizeof(reply), "{\"ok\":true}");
		control_reply(host->control, op->ticket, reply, (size_t)length);
	}
	if (!message) {
		static const char *const done[] = {
		    [HOST_OPERATION_STOP] = "stopped",
		    [HOST_OPERATION_START] = "started",
		    [HOST_OPERATION_SCALE] = "scaled",
		    [HOST_OPERATION_REMOVE] = "stopped",
		};
		log_info("%s: %s (%zu workers)", service->name, done[op->kind],
			 service->worker_count);
	}
}

bool
host_operations_check(struct host *host)
{
	bool ended = false;
	for (struct host_operation **link = &host->operations; *link;) {
		struct host_operation *op = *link;
		char message[512] = "";
		enum service_settle settle =
		    host->stop_requests
			? SERVICE_SETTLE_FAILED
			: service_settled(op->service, op->from_index, message, sizeof(message));
		if (host->stop_requests)
			snprintf(message, sizeof(message), "the host is stopping");
		if (settle == SERVICE_SETTLE_PENDING) {
			link = &op->next;
			continue;
		}
		*link = op->next;
		ended = true;
		finish(host, op,
		       host->stop_requests ? PROTOCOL_CODE_STOPPING : PROTOCOL_CODE_START_FAILED,
		       settle == SERVICE_SETTLE_DONE ? NULL : message);
		/* While the host stops, it counts its services: none leaves the list then. */
		if (op->kind == HOST_OPERATION_REMOVE && !host->stop_requests)
			remove_service(host, op->service);
		free(op);
	}
	return ended;
}

/* Frees every operation without an answer: the host is going away. */
void
host_operations_free(struct host *host)
{
	while (host->operations) {
		struct host_operation *op = host->operations;
		host->operations = op->next;
		free(op);
	}
}

/* An error whose message names the service: format has one %s. */
static void
reply_error(struct host *host, const struct control_request *request, enum protocol_code code,
	    const char *format, const char *name)
{
	char message[256];
	snprintf(message, sizeof(message), format, name);
	control_reply_error(host->control, request->ticket, code, message);
}

/* signal: to each running worker's main process (never its group, never the host). */
static void
signal_workers(struct host *host, const struct control_request *request, struct service *service)
{
	struct json_out out = {0};
	json_out_raw(&out, "{\"ok\":true,\"signalled\":[");
	size_t sent = 0;
	int failure = 0;
	for (size_t i = 0; i < service->worker_count; i++) {
		const struct worker *worker = service->workers[i];
		if (worker->pid <= 0 || (request->arguments.worker >= 0 &&
					 worker->index != (unsigned)request->arguments.worker))
			continue;
		if (kill(worker->pid, request->arguments.signal) < 0) {
			failure = -errno;
			continue;
		}
		json_out_printf(&out, "%s%d", sent ? "," : "", (int)worker->pid);
		sent++;
	}
	json_out_raw(&out, "]}");
	char *text = NULL;
	ssize_t length = json_out_finish(&out, &text);
	if (sent == 0) {
		char message[256];
		if (failure)
			snprintf(message, sizeof(message), "%s: cannot signal its workers: %s",
				 service->name, strerror(-failure));
		else if (request->arguments.worker >= 0)
			snprintf(message, sizeof(message), "%s has no running worker %d",
				 service->name, request->arguments.worker);
		else
			snprintf(message, sizeof(message), "%s has no running worker",
				 service->name);
		control_reply_error(
		    host->control, request->ticket,
		    failure ? PROTOCOL_CODE_SIGNAL_FAILED : PROTOCOL_CODE_UNKNOWN_WORKER, message);
	} else if (length < 0) {
		control_reply_error(host->control, request->ticket, PROTOCOL_CODE_INTERNAL,
				    "out of memory");
	} else {
		log_info("%s: SIG%s sent to %zu worker%s (asked for)", service->name,
			 signame_name(request->arguments.signal), sent, sent == 1 ? "" : "s");
		control_reply(host->control, request->ticket, text, (size_t)length);
	}
	free(text);
}

/* The config entry service runs with, writable: the host owns every config. */
static struct config_service *
writable_config(struct host *host, const struct service *service)
{
	for (size_t c = 0; c < host->config_count; c++)
		for (size_t s = 0; s < host->configs[c]->service_count; s++)
			if (&host->configs[c]->services[s] == service->config)
				return &host->configs[c]->services[s];
	return NULL;
}

void
host_operate(struct host *host, const struct control_request *request)
{
	const char *name = request->service ? request->service : "";
	struct service *service = host_find_service(host, name);
	if (host->stop_requests) {
		control_reply_error(host->control, request->ticket, PROTOCOL_CODE_STOPPING,
				    "the host is stopping");
		return;
	}
	if (!service) {
		reply_error(host, request, PROTOCOL_CODE_UNKNOWN_SERVICE, "no service named \"%s\"",
			    name);
		return;
	}
	if (request->command == COMMAND_SIGNAL) {
		signal_workers(host, request, service);
		return;
	}
	/* A reload changes a service through an operation too, so a busy service is also one
	 * the running reload is changing. */
	if (host_service_busy(host, service)) {
		reply_error(host, request, PROTOCOL_CODE_BUSY,
			    "%s: another change is under way (a rolling restart, reload, stop, "
			    "start or scale); try again once it is done",
			    name);
		return;
	}
	int r = 0;
	enum host_operation_kind kind = HOST_OPERATION_STOP;
	unsigned from_index = 0;
	switch (request->command) {
	case COMMAND_STOP:
		r = service_hold(service);
		break;
	case COMMAND_START:
		kind = HOST_OPERATION_START;
		/* A running service: answered once its workers are ready, which they may be. */
		if (!service->held)
			from_index = service->config->count;
		host_clear_failed(host, service);
		r = service_resume(service);
		break;
	case COMMAND_SCALE: {
		kind = HOST_OPERATION_SCALE;
		struct config_service *config = writable_config(host, service);
		if (!config) {
			r = -ENOENT;
			break;
		}
		from_index = config->count < request->arguments.count ? config->count
								      : request->arguments.count;
		config->count = request->arguments.count;
		r = service_scale(service, config);
		break;
	}
	case COMMAND_METRICS:
	case COMMAND_RESTART:
	case COMMAND_STATUS:
	case COMMAND_RELOAD:
	case COMMAND_SIGNAL:
	case COMMAND_LOGS:
	case COMMAND_COUNT:
		r = -EINVAL;
		break;
	}
	if (r == 0)
		r = host_operation_add(host, service, kind, from_index, false, request->ticket);
	if (r < 0) {
		char message[256];
		snprintf(message, sizeof(message), "%s: %s", name, strerror(-r));
		control_reply_error(host->control, request->ticket,
				    r == -EBUSY ? PROTOCOL_CODE_BUSY : PROTOCOL_CODE_INTERNAL,
				    message);
	}
}
