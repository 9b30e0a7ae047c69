/* listen: the listening sockets a service's `listen` keys name, bound by the host once and
 * passed to every worker (LISTEN_FDS), so that they outlive any generation of workers. */
#include "host/listen.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/limits.h"
#include "lib/listen_spec.h"
#include "lib/log.h"
#include "lib/unixsock.h"

/* A relative unix: path is relative to directory (the config file's). */
static void
unix_path(const struct listen_spec *spec, const char *directory, char *path, size_t size)
{
	if (spec->path[0] == '/')
		snprintf(path, size, "%s", spec->path);
	else
		snprintf(path, size, "%s/%s", directory, spec->path);
}

/* The addresses spec's host and port resolve to, with getaddrinfo's code. */
static int
resolve(const struct listen_spec *spec, struct addrinfo **ret_addresses)
{
	char port[8];
	snprintf(port, sizeof(port), "%u", (unsigned)spec->port);
	struct addrinfo hints = {
	    .ai_family = spec->family == LISTEN_SPEC_TCP6 ? AF_INET6 : AF_INET,
	    .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	return getaddrinfo(spec->host, port, &hints, ret_addresses);
}

static int
bind_and_listen(int fd, const struct sockaddr *address, socklen_t length, const char *text,
		char *error, size_t error_size)
{
	if (bind(fd, address, length) < 0) {
		int r = -errno;
		snprintf(error, error_size, "listen %s: %s%s", text, strerror(errno),
			 errno == EADDRINUSE ? " (another process has it)"
			 : errno == EACCES ? " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
					   : "");
		return r;
	}
	if (listen(fd, LISTEN_BACKLOG) < 0) {
		int r = -errno;
		snprintf(error, error_size, "listen %s: %s", text, strerror(errno));
		return r;
	}
	return 0;
}

/* Made by lib/unixsock.c: a stale socket replaced, a live one or any other file refused, bound
 * by bind alone (mode from the umask, as before) so that no call by name can be redirected. */
static int
open_unix(const char *text, const struct listen_spec *spec, const char *directory, int *ret_fd,
	  struct unixsock_file *ret_file, char *error, size_t error_size)
{
	char path[4096];
	unix_path(spec, directory, path, sizeof(path));
	struct sockaddr_un address;
	if (unixsock_address(path, &address) < 0) {
		snprintf(error, error_size, "listen %s: %s is too long for a unix socket", text,
			 path);
		return -ENAMETOOLONG;
	}
	struct unixsock_listener listener = {
	    .path = path,
	    .mode = (mode_t)-1,
	    .gid = (gid_t)-1,
	    .backlog = LISTEN_BACKLOG,
	};
	char problem[512];
	int r = unixsock_listen(&listener, ret_fd, ret_file, problem, sizeof(problem));
	if (r < 0)
		snprintf(error, error_size, "listen %s: %s", text, problem);
	return r;
}

static int
open_inet(const char *text, const struct listen_spec *spec, int *ret_fd, char *error,
	  size_t error_size)
{
	bool six = spec->family == LISTEN_SPEC_TCP6;
	struct addrinfo *addresses;
	int r = resolve(spec, &addresses);
	if (r != 0) {
		snprintf(error, error_size, "listen %s: cannot resolve \"%s\": %s", text,
			 spec->host, gai_strerror(r));
		return -EADDRNOTAVAIL;
	}
	/* The first address that resolves is bound: a host name is for convenience, one
	 * socket per `listen` line. */
	int fd = socket(addresses->ai_family, addresses->ai_socktype | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		snprintf(error, error_size, "listen %s: socket: %s", text, strerror(errno));
		freeaddrinfo(addresses);
		return r;
	}
	int one = 1;
	/* SO_REUSEADDR: a restarted host binds again at once despite TIME_WAIT connections. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (six && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)) {
		r = -errno;
		snprintf(error, error_size, "listen %s: setsockopt: %s", text, strerror(errno));
	} else {
		r = bind_and_listen(fd, addresses->ai_addr, addresses->ai_addrlen, text, error,
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
listen_open(const char *text, const char *directory, int *ret_fd, struct unixsock_file *ret_file,
	    char *error, size_t error_size)
{
	struct unixsock_file none = {0};
	if (!ret_file)
		ret_file = &none;
	*ret_file = none;
	/* config has checked text already: a problem here is a caller's mistake. */
	struct listen_spec spec;
	const char *problem;
	if (listen_spec_parse(text, &spec, &problem) < 0) {
		snprintf(error, error_size, "listen %s: %s", text, problem);
		return -EINVAL;
	}
	if (spec.family == LISTEN_SPEC_UNIX)
		return open_unix(text, &spec, directory, ret_fd, ret_file, error, error_size);
	return open_inet(text, &spec, ret_fd, error, error_size);
}

void
listen_close(const char *text, const char *directory, int fd, const struct unixsock_file *file)
{
	close(fd);
	struct listen_spec spec;
	const char *problem;
	if (listen_spec_parse(text, &spec, &problem) == 0 && spec.family == LISTEN_SPEC_UNIX) {
		char path[4096];
		unix_path(&spec, directory, path, sizeof(path));
		unixsock_remove(path, file);
	}
}

int
listen_inherit(struct listen_inherited *ret_inherited)
{
	*ret_inherited = (struct listen_inherited){0};
	const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");
	bool ours = fds && pid && atol(pid) == (long)getpid();
	(void)unsetenv("LISTEN_FDS");
	(void)unsetenv("LISTEN_PID");
	(void)unsetenv("LISTEN_FDNAMES");
	if (!ours)
		return 0;
	char *end;
	long count = strtol(fds, &end, 10);
	if (*end || count <= 0 || count > 1024)
		return 0;
	ret_inherited->fds = calloc((size_t)count, sizeof(int));
	if (!ret_inherited->fds)
		return -ENOMEM;
	for (long i = 0; i < count; i++) {
		int fd = 3 + (int)i, listening = 0;
		socklen_t length = sizeof(listening);
		/* Only what is really a listening socket: a wrong LISTEN_FDS must not make the
		 * host take (and later close) descriptors that are something else. */
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) < 0 ||
		    !listening) {
			log_warn("LISTEN_FDS: fd %d is not a listening socket; ignored", fd);
			ret_inherited->fds[i] = -1;
			continue;
		}
		/* Ours now: not to leak into workers except where a `listen` line passes it. */
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
		ret_inherited->fds[i] = fd;
	}
	ret_inherited->count = (size_t)count;
	return 0;
}

static bool
same_address(const struct sockaddr_storage *a, socklen_t a_length, const struct sockaddr_storage *b,
	     socklen_t b_length)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	if (a->ss_family == AF_UNIX)
		return a_length == b_length && memcmp(a, b, a_length) == 0;
	return false;
}

/* The address text names, as bind() would get it. */
static int
spec_address(const char *text, const char *directory, struct sockaddr_storage *ret_address,
	     socklen_t *ret_length)
{
	struct listen_spec spec;
	const char *problem;
	if (listen_spec_parse(text, &spec, &problem) < 0)
		return -EINVAL;
	memset(ret_address, 0, sizeof(*ret_address));
	if (spec.family == LISTEN_SPEC_UNIX) {
		char path[4096];
		unix_path(&spec, directory, path, sizeof(path));
		struct sockaddr_un address;
		if (unixsock_address(path, &address) < 0)
			return -ENAMETOOLONG;
		memcpy(ret_address, &address, sizeof(address));
		*ret_length =
		    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
		return 0;
	}
	struct addrinfo *addresses;
	if (resolve(&spec, &addresses) != 0)
		return -EADDRNOTAVAIL;
	memcpy(ret_address, addresses->ai_addr, addresses->ai_addrlen);
	*ret_length = addresses->ai_addrlen;
	freeaddrinfo(addresses);
	return 0;
}

int
listen_adopt(struct listen_inherited *inherited, const char *text, const char *directory)
{
	if (inherited->count == 0)
		return -1;
	struct sockaddr_storage wanted;
	socklen_t wanted_length;
	if (spec_address(text, directory, &wanted, &wanted_length) < 0)
		return -1;
	for (size_t i = 0; i < inherited->count; i++) {
		if (inherited->fds[i] < 0)
			continue;
		struct sockaddr_storage bound;
		socklen_t bound_length = sizeof(bound);
		memset(&bound, 0, sizeof(bound));
		if (getsockname(inherited->fds[i], (struct sockaddr *)&bound, &bound_length) < 0)
			continue;
		if (same_address(&bound, bound_length, &wanted, wanted_length)) {
			int fd = inherited->fds[i];
			inherited->fds[i] = -1;
			return fd;
		}
	}
	return -1;
}

void
listen_inherited_release(struct listen_inherited *inherited)
{
	for (size_t i = 0; i < inherited->count; i++) {
		if (inherited->fds[i] < 0)
			continue;
		log_warn("socket fd %d from the service manager matches no listen line: closed",
			 inherited->fds[i]);
		close(inherited->fds[i]);
	}
	free(inherited->fds);
	*inherited = (struct listen_inherited){0};
}
