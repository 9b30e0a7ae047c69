/* restart: the host's rolling restarts and reloads: one at a time, the others queued behind
 * it. A restart rolls each service with the config it serves with; a reload (reload.c) reads
 * the file again and applies the difference. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "host/host_private.h"
#include "lib/log.h"

/* Drops configs that no service uses any more. The newest is always kept. */
static void
release_configs(struct host *host)
{
	size_t kept = 0;
	for (size_t c = 0; c < host->config_count; c++) {
		struct config *config = host->configs[c];
		bool used = c + 1 == host->config_count;
		for (size_t i = 0; i < host->service_count && !used; i++) {
			struct service *service = host->services[i];
			for (size_t s = 0; s < config->service_count; s++)
				if (service->config == &config->services[s] ||
				    service->roll_config == &config->services[s])
					used = true;
		}
		if (used) {
			host->configs[kept++] = config;
		} else {
			config_free(config);
			free(config);
		}
	}
	host->config_count = kept;
}

void
host_restart_finish(struct host *host)
{
	struct restart_request *request = host->restart_running;
	host->restart_running = NULL;
	const char *error = host->restart_error[0] ? host->restart_error : NULL;
	if (request->reload) {
		/* The reply's text is the log's: what SIGHUP did is seen there. */
		char *reply = host->reload_reply(host, error);
		log_message(error ? LOG_WARN : LOG_INFO, "reload %s: %s", error ? "failed" : "done",
			    reply   ? reply
			    : error ? error
				    : "out of memory");
		free(reply);
	} else if (error) {
		log_warn("rolling restart failed: %s", error);
	} else {
		log_info("rolling restart to generation %u done", host->generation);
	}
	release_configs(host);
	/* systemd's notify-reload: the reload is over, whichever way it went (READY=1 again,
	 * from the hook). */
	if (host->systemd && !host->stop_requests) {
		host->systemd_ready_sent = false;
		host->systemd_changed = true;
	}
	if (request->fn)
		request->fn(host, host->generation, error, request->data);
	if (host->reload_report) {
		for (size_t i = 0; i < HOST_RELOAD_LISTS; i++)
			free(host->reload_report->lists[i].data);
		free(host->reload_report);
		host->reload_report = NULL;
	}
	free(request->service);
	free(request);
}

struct service *
host_find_service(struct host *host, const char *name)
{
	for (size_t i = 0; i < host->service_count; i++)
		if (strcmp(host->services[i]->name, name) == 0)
			return host->services[i];
	return NULL;
}

bool
host_service_busy(const struct host *host, const struct service *service)
{
	if (service->roll_generation)
		return true;
	for (const struct host_operation *op = host->operations; op; op = op->next)
		if (op->service == service)
			return true;
	return false;
}

void
host_notify_reloading(struct host *host, const char *status)
{
	if (!host->systemd)
		return;
	struct timespec now;
	(void)clock_gettime(CLOCK_MONOTONIC, &now);
	sdnotify_send(host->systemd, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=%s",
		      (unsigned long long)now.tv_sec * 1000000ULL +
			  (unsigned long long)now.tv_nsec / 1000,
		      status);
}

bool
host_restart_next(struct host *host)
{
	struct restart_request *request = host->restart_queue;
	if (!request || host->restart_running || host->stop_requests)
		return false;
	host->restart_queue = request->next;
	host->restart_running = request;
	host->restart_error[0] = '\0';
	host->restart_services_pending = 0;

	if (request->reload) {
		host->reload_run(host);
		return true;
	}
	struct service *only = NULL;
	if (request->service) {
		only = host_find_service(host, request->service);
		if (!only) {
			snprintf(host->restart_error, sizeof(host->restart_error),
				 "no service named \"%s\"", request->service);
			host_restart_finish(host);
			return true;
		}
		if (only->held) {
			snprintf(host->restart_error, sizeof(host->restart_error),
				 "%s is stopped: start it instead", request->service);
			host_restart_finish(host);
			return true;
		}
		if (host_service_busy(host, only)) {
			snprintf(host->restart_error, sizeof(host->restart_error),
				 "%s: a change is under way (stop, start or scale); try again once "
				 "it is done",
				 request->service);
			host_restart_finish(host);
			return true;
		}
	}
	host->generation++;
	char status[64];
	snprintf(status, sizeof(status), "rolling restart to generation %u", host->generation);
	host_notify_reloading(host, status);
	/* Each service reports the end of its roll later, from service_dispatch: none can
	 * before every one has started. */
	for (size_t i = 0; i < host->service_count; i++) {
		struct service *service = host->services[i];
		/* What serves, not the config read last: after a reload whose roll failed, a
		 * restart rolls the config that works. */
		const struct config_service *config = service->config;
		/* A stopped service stays stopped; one being changed is left to that change. */
		if ((only && service != only) || service->held || host_service_busy(host, service))
			continue;
		host->restart_services_pending++;
		int r = service_roll(service, host->generation, config);
		if (r < 0) {
			host->restart_services_pending--;
			snprintf(host->restart_error, sizeof(host->restart_error), "%s: %s",
				 service->name, strerror(-r));
		}
	}
	if (host->restart_services_pending == 0)
		host_restart_finish(host);
	return true;
}

void
host_restart(struct host *host, const char *service, bool reload, host_restart_fn fn, void *data)
{
	if (host->stop_requests) {
		if (fn)
			fn(host, host->generation, "the host is stopping", data);
		return;
	}
	struct restart_request *request = calloc(1, sizeof(*request));
	if (!request || (service && !(request->service = strdup(service)))) {
		free(request);
		if (fn)
			fn(host, host->generation, "out of memory", data);
		return;
	}
	request->reload = reload;
	request->fn = fn;
	request->data = data;
	struct restart_request **tail = &host->restart_queue;
	while (*tail)
		tail = &(*tail)->next;
	*tail = request;
	if (host->restart_running)
		log_info("rolling restart queued behind the one under way");
	(void)host_restart_next(host);
}

void
host_restart_cancel_queued(struct host *host)
{
	while (host->restart_queue) {
		struct restart_request *request = host->restart_queue;
		host->restart_queue = request->next;
		if (request->fn)
			request->fn(host, host->generation, "the host is stopping", request->data);
		free(request->service);
		free(request);
	}
}
