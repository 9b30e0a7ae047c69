/* config_diff: what differs between two configs, field by field, for a reload: the one place
 * that knows which fields a service and the [host] section have. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

/* How a service's config changed, as a reload acts on it. */
enum config_change {
	CONFIG_CHANGE_NONE,  /* every field is equal: the service is left alone */
	CONFIG_CHANGE_COUNT, /* only count differs: the service is scaled */
	CONFIG_CHANGE_OTHER, /* anything else: a rolling restart */
};

/* Compares every field of two services of the same name (the name and the line of the section
 * header are not compared). *ret_key, when not NULL, names the first key found to differ
 * other than count ("command", "env", …), or "count", or NULL when nothing does. */
enum config_change config_service_diff(const struct config_service *old,
				       const struct config_service *new, const char **ret_key);

/* Whether the listen lines differ: a reload can't rebind a running service's sockets. */
bool config_listen_differs(const struct config_service *old, const struct config_service *new);
/* Whether log_file, log_max_size, log_keep or log_lines differ: a service keeps the ring and
 * file it started with (logs.c), so these wait for a host restart, as listen does. */
bool config_logs_differ(const struct config_service *old, const struct config_service *new);

/* The [host] keys whose values differ, into ret_keys (up to size names, in key order).
 * Returns how many differ. */
size_t config_host_diff(const struct config *old, const struct config *new, const char **ret_keys,
			size_t size);
