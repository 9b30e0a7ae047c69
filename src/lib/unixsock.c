/* unixsock: unix socket paths: the address, and claiming a path a dead process left behind. */
#include "lib/unixsock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"

int
unixsock_address(const char *path, struct sockaddr_un *ret_address)
{
	struct sockaddr_un address = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(address.sun_path))
		return -ENAMETOOLONG;
	strcpy(address.sun_path, path);
	*ret_address = address;
	return 0;
}

/* A socket file whose listener is gone refuses connections: only then is it removed. */
int
unixsock_claim(const char *path, char *error, size_t error_size)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(error, error_size, "%s exists and is not a socket; not replacing it",
			 path);
		return -EEXIST;
	}
	struct sockaddr_un address;
	int r = unixsock_address(path, &address);
	if (r < 0)
		return r;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (struct sockaddr *)&address, sizeof(address));
	int connect_errno = errno;
	close(fd);
	if (r == 0) {
		snprintf(error, error_size,
			 "%s: another process is answering on this socket (another host?); stop "
			 "it first or configure another path",
			 path);
		return -EADDRINUSE;
	}
	if (connect_errno != ECONNREFUSED) {
		snprintf(error, error_size, "%s: cannot tell whether it is in use: %s", path,
			 strerror(connect_errno));
		return -connect_errno;
	}
	log_info("removing stale socket %s", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int
unixsock_connect(const char *path, int *ret_fd, char *error, size_t error_size)
{
	struct sockaddr_un address;
	if (unixsock_address(path, &address) < 0) {
		snprintf(error, error_size, "%s: path too long for a unix socket", path);
		return -ENAMETOOLONG;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int r = -errno;
		snprintf(error, error_size, "socket: %s", strerror(-r));
		return r;
	}
	if (connect(fd, (struct sockaddr *)&address, sizeof(address)) < 0) {
		int r = -errno;
		close(fd);
		if (r == -ENOENT)
			snprintf(error, error_size,
				 "no socket at %s: is the host running? (-s gives another path)",
				 path);
		else if (r == -ECONNREFUSED)
			snprintf(error, error_size,
				 "%s: connection refused: the socket is stale, its host is not "
				 "running",
				 path);
		else if (r == -EACCES || r == -EPERM)
			snprintf(error, error_size,
				 "%s: permission denied: run as the host's user or a member of "
				 "its socket_group",
				 path);
		else
			snprintf(error, error_size, "%s: %s", path, strerror(-r));
		return r;
	}
	*ret_fd = fd;
	return 0;
}
