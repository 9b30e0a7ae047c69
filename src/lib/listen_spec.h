/* listen_spec: "tcp:HOST:PORT", "tcp6:[ADDR]:PORT", "unix:PATH" → its parts; pure, no I/O. */
#pragma once

/* One parser for config (which checks a spec, with messages for the user) and the host (which
 * binds it and matches it with sockets inherited from systemd), so they cannot disagree. */

#include <stdint.h>

#include "lib/limits.h"

enum listen_family { LISTEN_SPEC_TCP, LISTEN_SPEC_TCP6, LISTEN_SPEC_UNIX };

/* The longest path of a unix socket: sun_path less its terminating NUL. */
#define LISTEN_SPEC_PATH_MAX 107

struct listen_spec {
	enum listen_family family;
	/* tcp: a name or an IPv4 address; tcp6: the address with its %zone if any, without the
	 * brackets. Empty for unix. A spec is never longer than a config line, nor its host. */
	char host[CONFIG_MAX_LINE + 1];
	uint16_t port; /* 1..65535; 0 for unix */
	/* unix: as written, relative or absolute; empty for tcp and tcp6. */
	char path[LISTEN_SPEC_PATH_MAX + 1];
};

/* Parses text. Checks the form only: names are resolved, relative paths placed and sockets bound
 * by whoever binds. Returns 0 and fills *ret_spec, or -EINVAL with *ret_problem set to a static
 * message for a user ("the port must be a number from 1 to 65535"); ret_spec is untouched on
 * failure. */
int listen_spec_parse(const char *text, struct listen_spec *ret_spec, const char **ret_problem);
