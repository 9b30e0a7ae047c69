/* host: owns the config, the services and their generations; turns signals into stops and
 * rolling restarts. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "config/config.h"

struct host;

/* Called once when a rolling restart ends: message is NULL on success. */
typedef void (*host_restart_fn)(struct host *host, unsigned generation, const char *message,
				void *data);

/* Runs the host of config_path in the foreground until it is stopped. init: the host is a
 * container's PID 1 (or stands in for it), so every orphan in the namespace is its to reap. Returns
 * the process exit code: 0 after a graceful stop, 2 when the config is bad, 1 when start-up fails.
 */
int host_main(const char *config_path, bool init);

/* A rolling restart of every service (service == NULL) or one. With reload, the config file
 * is read again first. fn is called when it ends (at once on error); a restart asked for
 * while one runs waits for it and then runs. */
void host_restart(struct host *host, const char *service, bool reload, host_restart_fn fn,
		  void *data);

/* The SPEC's status object, {"host":{…},"services":{NAME:{…}}}, as compact JSON in a malloc'd,
 * NUL-terminated buffer. Returns its length (the NUL not counted) or -ENOMEM. */
ssize_t host_status_encode(const struct host *host, char **ret_text);
