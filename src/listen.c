/* listen: the listening sockets a service's `listen` keys name, bound by the host once and
 * passed to every worker (LISTEN_FDS), so that they outlive any generation of workers. */
#include "listen.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unixsock.h"

static void
unix_path(const char *spec, const char *directory, char *path, size_t size)
{
	const char *name = spec + strlen("unix:");
	if (name[0] == '/')
		snprintf(path, size, "%s", name);
	else
		snprintf(path, size, "%s/%s", directory, name);
}

static int
bind_and_listen(int fd, const struct sockaddr *address, socklen_t length, const char *spec,
		char *error, size_t error_size)
{
	if (bind(fd, address, length) < 0) {
		int r = -errno;
		snprintf(error, error_size, "listen %s: %s%s", spec, strerror(errno),
			 errno == EADDRINUSE ? " (another process has it)"
			 : errno == EACCES ? " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
					   : "");
		return r;
	}
	if (listen(fd, LISTEN_BACKLOG) < 0) {
		int r = -errno;
		snprintf(error, error_size, "listen %s: %s", spec, strerror(errno));
		return r;
	}
	return 0;
}

static int
open_unix(const char *spec, const char *directory, int *ret_fd, char *error, size_t error_size)
{
	char path[4096];
	unix_path(spec, directory, path, sizeof(path));
	struct sockaddr_un address;
	if (unixsock_address(path, &address) < 0) {
		snprintf(error, error_size, "listen %s: %s is too long for a unix socket", spec,
			 path);
		return -ENAMETOOLONG;
	}
	error[0] = '\0';
	int r = unixsock_claim(path, error, error_size);
	if (r < 0) {
		if (!error[0])
			snprintf(error, error_size, "listen %s: %s", spec, strerror(-r));
		return r;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		snprintf(error, error_size, "listen %s: socket: %s", spec, strerror(errno));
		return r;
	}
	r = bind_and_listen(fd, (struct sockaddr *)&address, sizeof(address), spec, error,
			    error_size);
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

/* Splits "tcp:HOST:PORT" / "tcp6:[ADDR]:PORT" (validated by config) into host and port. */
static void
split_inet(const char *spec, bool six, char *host, size_t host_size, const char **ret_port)
{
	const char *start = spec + (six ? strlen("tcp6:[") : strlen("tcp:"));
	const char *end = six ? strchr(start, ']') : strrchr(start, ':');
	size_t length = (size_t)(end - start);
	if (length >= host_size)
		length = host_size - 1;
	memcpy(host, start, length);
	host[length] = '\0';
	*ret_port = six ? end + 2 : end + 1;
}

static int
open_inet(const char *spec, bool six, int *ret_fd, char *error, size_t error_size)
{
	char host[256];
	const char *port;
	split_inet(spec, six, host, sizeof(host), &port);
	struct addrinfo hints = {
	    .ai_family = six ? AF_INET6 : AF_INET,
	    .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	struct addrinfo *addresses;
	int r = getaddrinfo(host, port, &hints, &addresses);
	if (r != 0) {
		snprintf(error, error_size, "listen %s: cannot resolve \"%s\": %s", spec, host,
			 gai_strerror(r));
		return -EADDRNOTAVAIL;
	}
	/* The first address that resolves is bound: a host name is for convenience, one
	 * socket per `listen` line. */
	int fd = socket(addresses->ai_family, addresses->ai_socktype | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		snprintf(error, error_size, "listen %s: socket: %s", spec, strerror(errno));
		freeaddrinfo(addresses);
		return r;
	}
	int one = 1;
	/* SO_REUSEADDR: a restarted host binds again at once despite TIME_WAIT connections. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (six && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)) {
		r = -errno;
		snprintf(error, error_size, "listen %s: setsockopt: %s", spec, strerror(errno));
	} else {
		r = bind_and_listen(fd, addresses->ai_addr, addresses->ai_addrlen, spec, error,
				    error_size);
	}
	freeaddrinfo(addresses);
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

int
listen_open(const char *spec, const char *directory, int *ret_fd, char *error, size_t error_size)
{
	if (strncmp(spec, "unix:", 5) == 0)
		return open_unix(spec, directory, ret_fd, error, error_size);
	if (strncmp(spec, "tcp6:", 5) == 0)
		return open_inet(spec, true, ret_fd, error, error_size);
	if (strncmp(spec, "tcp:", 4) == 0)
		return open_inet(spec, false, ret_fd, error, error_size);
	snprintf(error, error_size, "listen %s: unknown kind of socket", spec);
	return -EINVAL;
}

void
listen_close(const char *spec, const char *directory, int fd)
{
	close(fd);
	if (strncmp(spec, "unix:", 5) == 0) {
		char path[4096];
		unix_path(spec, directory, path, sizeof(path));
		(void)unlink(path);
	}
}
