/* listen_spec: the text of a listening address → its family, host, port or path; no I/O. */
#include "lib/listen_spec.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/un.h>

_Static_assert(LISTEN_SPEC_PATH_MAX == sizeof(((struct sockaddr_un *)0)->sun_path) - 1,
	       "LISTEN_SPEC_PATH_MAX is sun_path without its NUL");

/* 1..65535, digits only (leading zeros allowed, as they always were). */
static bool
parse_port(const char *text, uint16_t *ret_port)
{
	unsigned long value = 0;
	if (*text == '\0')
		return false;
	for (const char *c = text; *c; c++) {
		if (!isdigit((unsigned char)*c))
			return false;
		value = value * 10 + (unsigned long)(*c - '0');
		if (value > 65535)
			return false;
	}
	if (value == 0)
		return false;
	*ret_port = (uint16_t)value;
	return true;
}

static const char *
parse_unix(const char *path, struct listen_spec *spec)
{
	if (*path == '\0')
		return "the socket path is empty";
	if (strlen(path) > LISTEN_SPEC_PATH_MAX)
		return "the socket path is too long for a unix socket (at most 107 bytes)";
	spec->family = LISTEN_SPEC_UNIX;
	spec->host[0] = '\0';
	spec->port = 0;
	memcpy(spec->path, path, strlen(path) + 1);
	return NULL;
}

/* After "tcp6:": "[ADDR]:PORT" or "[ADDR%ZONE]:PORT". */
static const char *
parse_tcp6(const char *open, struct listen_spec *spec)
{
	const char *close = strchr(open, ']');
	if (*open != '[' || !close || close[1] != ':')
		return "expected tcp6:[ADDR]:PORT";
	/* An optional %zone (fe80::1%eth0) is the binder's to interpret. */
	size_t length = strcspn(open + 1, "%]");
	char address[INET6_ADDRSTRLEN];
	struct in6_addr parsed;
	if (length >= sizeof(address))
		return "not an IPv6 address";
	memcpy(address, open + 1, length);
	address[length] = '\0';
	if (inet_pton(AF_INET6, address, &parsed) != 1)
		return "not an IPv6 address";
	if (open[1 + length] == '%' && open + 2 + length == close)
		return "the zone after \"%\" is empty";
	uint16_t port;
	if (!parse_port(close + 2, &port))
		return "the port must be a number from 1 to 65535";
	size_t host_length = (size_t)(close - open - 1);
	if (host_length >= sizeof(spec->host))
		return "too long";
	spec->family = LISTEN_SPEC_TCP6;
	spec->port = port;
	spec->path[0] = '\0';
	memcpy(spec->host, open + 1, host_length);
	spec->host[host_length] = '\0';
	return NULL;
}

/* After "tcp:": "HOST:PORT", HOST a name or an IPv4 address. */
static const char *
parse_tcp(const char *host, struct listen_spec *spec)
{
	const char *colon = strrchr(host, ':');
	if (!colon)
		return "expected tcp:HOST:PORT";
	if (colon == host)
		return "the host is empty";
	if (*host == '[' || memchr(host, ':', (size_t)(colon - host)))
		return "for IPv6 use tcp6:[ADDR]:PORT";
	for (const char *c = host; c < colon; c++)
		if (!isalnum((unsigned char)*c) && !strchr(".-_", *c))
			return "the host must be a name or an IPv4 address";
	uint16_t port;
	if (!parse_port(colon + 1, &port))
		return "the port must be a number from 1 to 65535";
	size_t host_length = (size_t)(colon - host);
	if (host_length >= sizeof(spec->host))
		return "too long";
	spec->family = LISTEN_SPEC_TCP;
	spec->port = port;
	spec->path[0] = '\0';
	memcpy(spec->host, host, host_length);
	spec->host[host_length] = '\0';
	return NULL;
}

int
listen_spec_parse(const char *text, struct listen_spec *ret_spec, const char **ret_problem)
{
	/* Each kind checks everything before it writes into ret_spec, which failures leave
	 * untouched. */
	const char *problem;
	if (strncmp(text, "unix:", 5) == 0)
		problem = parse_unix(text + 5, ret_spec);
	else if (strncmp(text, "tcp6:", 5) == 0)
		problem = parse_tcp6(text + 5, ret_spec);
	else if (strncmp(text, "tcp:", 4) == 0)
		problem = parse_tcp(text + 4, ret_spec);
	else
		problem = "expected tcp:HOST:PORT, tcp6:[ADDR]:PORT or unix:PATH";
	if (problem) {
		*ret_problem = problem;
		return -EINVAL;
	}
	return 0;
}
