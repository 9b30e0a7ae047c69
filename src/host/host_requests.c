/* host_requests: what the host answers of the requests the supervisor process passes on
 * (socket → protocol → command → here): status at once, restart and reload when they end,
 * stop/start/scale/signal through operate.c, logs through logs.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/control.h"
#include "host/host.h"
#include "host/host_private.h"
#include "host/logs.h"
#include "host/service.h"
#include "lib/log.h"

/* A restart asked for through the supervisor: answered when it ends. */
struct pending_restart {
	struct host *host;
	struct control_ticket ticket;
};

/* A pending restart for request, or NULL once it has been answered for want of memory. */
static struct pending_restart *
pending_new(struct host *host, const struct control_request *request)
{
	struct pending_restart *pending = malloc(sizeof(*pending));
	if (!pending) {
		control_reply_error(host->control, request->ticket, PROTOCOL_CODE_INTERNAL,
				    "out of memory");
		return NULL;
	}
	*pending = (struct pending_restart){host, request->ticket};
	return pending;
}

static void
on_restart_done(struct host *host, unsigned generation, const char *message, void *data)
{
	struct pending_restart *pending = data;
	if (message) {
		control_reply_error(host->control, pending->ticket, PROTOCOL_CODE_RESTART_FAILED,
				    message);
	} else {
		char reply[64];
		int length =
		    snprintf(reply, sizeof(reply), "{\"ok\":true,\"generation\":%u}", generation);
		control_reply(host->control, pending->ticket, reply, (size_t)length);
	}
	free(pending);
}

static void
on_reload_done(struct host *host, unsigned generation, const char *message, void *data)
{
	struct pending_restart *pending = data;
	(void)generation;
	char *reply = host_reload_reply(host, message);
	if (reply)
		control_reply(host->control, pending->ticket, reply, strlen(reply));
	else
		control_reply_error(host->control, pending->ticket, PROTOCOL_CODE_INTERNAL,
				    "out of memory");
	free(reply);
	free(pending);
}

/* The requests the supervisor process passes on (it answers metrics itself). */
void
host_on_control_request(struct control *control, const struct control_request *request, void *data)
{
	struct host *host = data;
	switch (request->command) {
	case COMMAND_STATUS: {
		char *status;
		ssize_t length = host_status_encode(host, &status);
		if (length < 0) {
			control_reply_error(control, request->ticket, PROTOCOL_CODE_INTERNAL,
					    "out of memory");
			return;
		}
		control_reply(control, request->ticket, status, (size_t)length);
		free(status);
		return;
	}
	case COMMAND_RESTART: {
		struct pending_restart *pending = pending_new(host, request);
		if (!pending)
			return;
		log_info("rolling restart of %s asked for by the supervisor",
			 request->service ? request->service : "every service");
		host_restart(host, request->service, false, on_restart_done, pending);
		return;
	}
	case COMMAND_RELOAD: {
		struct pending_restart *pending = pending_new(host, request);
		if (!pending)
			return;
		log_info("reload asked for by the supervisor");
		host_restart(host, NULL, true, on_reload_done, pending);
		return;
	}
	case COMMAND_STOP:
	case COMMAND_START:
	case COMMAND_SCALE:
	case COMMAND_SIGNAL:
		host_operate(host, request);
		return;
	case COMMAND_LOGS: {
		struct logs **logs = malloc((host->service_count + 1) * sizeof(*logs));
		if (!logs) {
			control_reply_error(control, request->ticket, PROTOCOL_CODE_INTERNAL,
					    "out of memory");
			return;
		}
		for (size_t i = 0; i < host->service_count; i++)
			logs[i] = host->services[i]->logs;
		logs_request(control, request->ticket, logs, host->service_count, request->service,
			     &request->arguments);
		free(logs);
		return;
	}
	case COMMAND_METRICS: /* the supervisor process answers it */
	case COMMAND_COUNT:
		break;
	}
	control_reply_error(control, request->ticket, PROTOCOL_CODE_UNKNOWN_COMMAND,
			    "unknown command");
}

void
host_on_follow(struct control_ticket ticket, bool acked)
{
	if (acked)
		logs_acked(ticket);
	else
		logs_cancelled(ticket);
}
