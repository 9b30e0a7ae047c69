/* reload: the config read again and the difference applied, service by service: a new one
 * starts, a removed one stops and goes, a count change scales, any other change rolls that
 * service, an unchanged one is left alone. It runs as the restart queue's running request, so
 * it never overlaps a rolling restart, and ends through host_restart_finish like one. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config_diff.h"
#include "host/host_private.h"
#include "lib/log.h"

static void
report_add(struct host *host, enum host_reload_list list, const char *format, const char *a,
	   const char *b)
{
	struct json_out *out = &host->reload_report->lists[list];
	if (out->length > 0)
		json_out_raw(out, ",");
	char text[256];
	snprintf(text, sizeof(text), format, a, b);
	json_out_string(out, text);
}

static const struct config_service *
find_config_service(const struct config *config, const char *name)
{
	for (size_t i = 0; i < config->service_count; i++)
		if (strcmp(config->services[i].name, name) == 0)
			return &config->services[i];
	return NULL;
}

/* The [host] keys: log_format and log are applied at once; the others were bound or handed to
 * the supervisor process at start-up, and are reported, not applied. */
static void
apply_host(struct host *host, const struct config *old, const struct config *new)
{
	const char *keys[8];
	size_t count = config_host_diff(old, new, keys, sizeof(keys) / sizeof(keys[0]));
	for (size_t i = 0; i < count; i++) {
		if (strcmp(keys[i], "log_format") == 0) {
			log_set_json(new->log_format == CONFIG_LOG_JSON);
			continue;
		}
		char error[512];
		if (strcmp(keys[i], "log") == 0 && new->log_path &&
		    log_to_file(new->log_path, error, sizeof(error)) == 0)
			continue;
		log_warn("reload: [host] %s changed in %s: not applied until the host restarts",
			 keys[i], new->path);
		report_add(host, HOST_RELOAD_NOT_APPLIED, "[host] %s%s", keys[i], "");
	}
}

/* A service new in the config: made, bound and started as at start-up. */
static int
add_service(struct host *host, const struct config_service *config, const char *directory)
{
	struct service **services =
	    reallocarray(host->services, host->service_count + 1, sizeof(*services));
	if (!services)
		return -ENOMEM;
	host->services = services;
	struct service *service;
	int r = service_new(config, host->loop, notify_address(host->notify), &host->spawner,
			    host->on_service_event, host, &service);
	if (r < 0)
		return r;
	/* Sockets passed by the service manager were all taken (or closed) at start-up. */
	struct listen_inherited none = {0};
	char error[512];
	r = service_open_sockets(service, directory, &none, error, sizeof(error));
	if (r < 0) {
		log_error("reload: %s", error);
		snprintf(host->restart_error, sizeof(host->restart_error), "%s", error);
		service_free(service);
		return r;
	}
	host->services[host->service_count++] = service;
	r = service_start(service, host->generation);
	if (r == 0)
		r = host_operation_add(host, service, HOST_OPERATION_START, 0, true,
				       (struct control_ticket){0});
	return r;
}

/* Whether any service is being changed: a reload waits for no one, it is refused. */
static const char *
busy_service(const struct host *host)
{
	for (size_t i = 0; i < host->service_count; i++)
		if (host_service_busy(host, host->services[i]))
			return host->services[i]->name;
	return NULL;
}

/* Applies what differs between the services running and config's. */
static void
apply_services(struct host *host, const struct config *config)
{
	bool next_generation = false;
	for (size_t i = 0; i < config->service_count && !next_generation; i++) {
		struct service *service = host_find_service(host, config->services[i].name);
		next_generation =
		    !service ||
		    (!service->held && config_service_diff(service->config, &config->services[i],
							   NULL) == CONFIG_CHANGE_OTHER);
	}
	if (next_generation)
		host->generation++;
	/* Removed first: their workers stop while the others change. */
	for (size_t i = 0; i < host->service_count; i++) {
		struct service *service = host->services[i];
		if (find_config_service(config, service->name))
			continue;
		report_add(host, HOST_RELOAD_STOPPED, "%s%s", service->name, "");
		int r = service_hold(service);
		if (r == 0)
			r = host_operation_add(host, service, HOST_OPERATION_REMOVE, 0, true,
					       (struct control_ticket){0});
		if (r < 0)
			snprintf(host->restart_error, sizeof(host->restart_error), "%s: %s",
				 service->name, strerror(-r));
	}
	for (size_t i = 0; i < config->service_count; i++) {
		const struct config_service *next = &config->services[i];
		struct service *service = host_find_service(host, next->name);
		if (!service) {
			report_add(host, HOST_RELOAD_STARTED, "%s%s", next->name, "");
			int r = add_service(host, next, config->directory);
			if (r < 0 && !host->restart_error[0])
				snprintf(host->restart_error, sizeof(host->restart_error), "%s: %s",
					 next->name, strerror(-r));
			continue;
		}
		const char *key = NULL;
		enum config_change change = config_service_diff(service->config, next, &key);
		host_clear_failed(host, service);
		if (change != CONFIG_CHANGE_NONE)
			log_info("reload: %s: %s changed%s", service->name, key,
				 service->held ? " (stopped: it takes it when started)" : "");
		if (change == CONFIG_CHANGE_OTHER && config_listen_differs(service->config, next)) {
			log_warn(
			    "reload: %s: listen changed: the sockets bound at start stay until "
			    "the host restarts",
			    service->name);
			report_add(host, HOST_RELOAD_NOT_APPLIED, "%s: %s", service->name,
				   "listen");
		}
		if (change == CONFIG_CHANGE_OTHER && config_logs_differ(service->config, next)) {
			log_warn(
			    "reload: %s: log_file, log_max_size, log_keep or log_lines changed: "
			    "its log stays as it is until the host restarts",
			    service->name);
			report_add(host, HOST_RELOAD_NOT_APPLIED, "%s: %s", service->name,
				   "log_file");
		}
		int r = 0;
		switch (change) {
		case CONFIG_CHANGE_NONE:
			report_add(host, HOST_RELOAD_UNCHANGED, "%s%s", service->name, "");
			service->config = next; /* the same values: the old config can go */
			break;
		case CONFIG_CHANGE_COUNT: {
			report_add(host, HOST_RELOAD_SCALED, "%s%s", service->name, "");
			unsigned from = service->config->count < next->count
					    ? service->config->count
					    : next->count;
			r = service_scale(service, next);
			if (r == 0 && !service->held)
				r = host_operation_add(host, service, HOST_OPERATION_SCALE, from,
						       true, (struct control_ticket){0});
			break;
		}
		case CONFIG_CHANGE_OTHER:
			report_add(host, HOST_RELOAD_RESTARTED, "%s%s", service->name, "");
			if (service->held) {
				service->config = next;
				break;
			}
			host->restart_services_pending++;
			r = service_roll(service, host->generation, next);
			if (r < 0)
				host->restart_services_pending--;
			break;
		}
		if (r < 0 && !host->restart_error[0])
			snprintf(host->restart_error, sizeof(host->restart_error), "%s: %s",
				 service->name, strerror(-r));
	}
}

void
host_reload_run(struct host *host)
{
	struct host_reload_report *report = calloc(1, sizeof(*report));
	struct config *config = report ? calloc(1, sizeof(*config)) : NULL;
	if (!config) {
		free(report);
		snprintf(host->restart_error, sizeof(host->restart_error), "out of memory");
		host_restart_finish(host);
		return;
	}
	host->reload_report = report;
	/* Whatever comes of it: systemd (Type=notify-reload) waits for RELOADING=1 after SIGHUP. */
	host_notify_reloading(host, "reloading the config");
	/* The file first: a broken one is the answer whatever else is going on, as an operator
	 * who just edited it wants to hear at once. */
	char error[400];
	int r = config_load(host->config_path, config, error, sizeof(error));
	if (r == 0 &&
	    (r = config_check_user(config, geteuid(), getegid(), error, sizeof(error))) < 0)
		config_free(config);
	if (r < 0) {
		free(config);
		report->config_error = true;
		snprintf(host->restart_error, sizeof(host->restart_error), "%s", error);
		host_restart_finish(host);
		return;
	}
	const char *busy = busy_service(host);
	if (busy || host->config_count == HOST_MAX_CONFIGS) {
		report->busy = busy != NULL;
		if (busy)
			snprintf(host->restart_error, sizeof(host->restart_error),
				 "%s: a change is under way (stop, start or scale); try again once "
				 "it is done",
				 busy);
		else
			snprintf(host->restart_error, sizeof(host->restart_error),
				 "too many generations still stopping; try again later");
		config_free(config);
		free(config);
		host_restart_finish(host);
		return;
	}
	const struct config *old = host->configs[host->config_count - 1];
	host->configs[host->config_count++] = config;
	log_info("reloaded %s", host->config_path);
	apply_host(host, old, config);
	apply_services(host, config);
	/* Each part ends later, from the before-wait hook: none can before all have started. */
	if (host->restart_services_pending == 0)
		host_restart_finish(host);
}

char *
host_reload_reply(struct host *host, const char *error)
{
	struct host_reload_report *report = host->reload_report;
	struct json_out out = {0};
	if (error) {
		const char *code = report && report->config_error ? "config"
				   : report && report->busy	  ? "busy"
								  : "reload_failed";
		json_out_printf(&out, "{\"error\":{\"code\":\"%s\",\"message\":", code);
		json_out_string(&out, error);
		json_out_raw(&out, "}}");
	} else {
		static const char *const names[HOST_RELOAD_LISTS] = {
		    [HOST_RELOAD_STARTED] = "started",
		    [HOST_RELOAD_STOPPED] = "stopped",
		    [HOST_RELOAD_RESTARTED] = "restarted",
		    [HOST_RELOAD_SCALED] = "scaled",
		    [HOST_RELOAD_UNCHANGED] = "unchanged",
		    [HOST_RELOAD_NOT_APPLIED] = "not_applied",
		};
		json_out_field(&out, "{\"ok\":true,\"generation\":", host->generation);
		for (size_t i = 0; i < HOST_RELOAD_LISTS; i++) {
			const struct json_out *list = report ? &report->lists[i] : NULL;
			json_out_printf(&out, ",\"%s\":[%.*s]", names[i],
					list && list->data ? (int)list->length : 0,
					list && list->data ? list->data : "");
		}
		json_out_raw(&out, "}");
	}
	char *text = NULL;
	return json_out_finish(&out, &text) < 0 ? NULL : text;
}
