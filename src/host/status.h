/* status: the SPEC's status object of a host and its services, encoded as JSON; pure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "host/service.h"

/* What the status says of the host itself. */
struct status_host {
	pid_t pid;
	double uptime; /* seconds */
	unsigned generation;
	bool stopping;
	/* The memory.current of a service's cgroup, if it has one (cgroup.c); NULL: none. */
	bool (*service_memory)(const char *service, uint64_t *ret_bytes);
	bool memory_free_minimum; /* [host] memory_free_minimum is set */
};

/* {"host":{…},"services":{NAME:{…}}} of host and the count services, in their order, as compact
 * JSON in a malloc'd, NUL-terminated buffer. Returns its length (the NUL not counted) or
 * -ENOMEM. */
ssize_t status_encode(const struct status_host *host, struct service *const *services, size_t count,
		      char **ret_text);
