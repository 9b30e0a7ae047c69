/* unixsock_connect: the client's side of a unix socket: connecting within a deadline to a
 * server the client can trust (see unixsock.h). */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/limits.h"
#include "lib/loop.h"
#include "lib/unixsock.h"

/* The peer of a connected socket is trusted if root or the caller's own user serves it (neither
 * can gain anything by lying to us), or the owner the caller named. Anyone else could have
 * bound the path (a world-writable directory, a path given by mistake) and answer with made-up
 * state: ssh-agent and systemd's private sockets apply the same rule to their peers. */
static int
check_peer(int fd, const char *path, uid_t owner, char *error, size_t error_size)
{
	struct ucred peer;
	socklen_t length = sizeof(peer);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) < 0) {
		int r = -errno;
		snprintf(error, error_size, "%s: cannot tell who serves it: %s", path,
			 strerror(-r));
		return r;
	}
	if (peer.uid == 0 || peer.uid == geteuid() ||
	    (owner != UNIXSOCK_NO_OWNER && peer.uid == owner))
		return 0;
	const struct passwd *user = getpwuid(peer.uid);
	char uid[16];
	snprintf(uid, sizeof(uid), "%u", (unsigned)peer.uid);
	snprintf(error, error_size,
		 "%s is served by user %s (uid %u), not by root or you: refusing to trust its "
		 "answers. Check who made that socket; if that user runs your host, add --owner %s",
		 path, user ? user->pw_name : uid, (unsigned)peer.uid, user ? user->pw_name : uid);
	return -EPERM;
}

/* A unix socket's connect() has no EINPROGRESS: when the listener's backlog is full it sleeps
 * until an accept makes room, for as long as SO_SNDTIMEO allows (then EAGAIN), or fails at
 * once with EAGAIN if the socket is non-blocking. So the kernel does the waiting, woken by the
 * listener's accept, and the bound is the send timeout. */
static int
connect_within(int fd, const struct sockaddr_un *address, double timeout)
{
	double deadline = loop_now_seconds() + timeout;
	for (;;) {
		double left = deadline - loop_now_seconds();
		if (left <= 0)
			return -EAGAIN;
		if (left > UNIXSOCK_MAX_WAIT)
			left = UNIXSOCK_MAX_WAIT;
		/* 0 would mean no limit: the shortest is a microsecond (the kernel rounds it to a
		 * tick). */
		struct timeval wait = {.tv_sec = (time_t)left,
				       .tv_usec =
					   (suseconds_t)((left - (double)(time_t)left) * 1e6)};
		if (wait.tv_sec == 0 && wait.tv_usec == 0)
			wait.tv_usec = 1;
		if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &wait, sizeof(wait)) < 0)
			return -errno;
		int r = connect(fd, (const struct sockaddr *)address, sizeof(*address));
		r = r < 0 ? -errno : 0;
		if (r == -EINTR || (r == -EAGAIN && loop_now_seconds() < deadline))
			continue; /* a signal, or the longest wait at a time is over */
		/* Later sends are as before: the callers poll before they send. */
		struct timeval none = {0};
		if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof(none)) < 0 && r == 0)
			return -errno;
		return r;
	}
}

/* connect() refuses what is not a socket as it refuses a socket nobody listens on; a file
 * (a config given by mistake) is told apart here, for the message. */
static bool
is_socket(const char *path)
{
	struct stat st;
	return stat(path, &st) < 0 || S_ISSOCK(st.st_mode);
}

int
unixsock_connect(const char *path, double timeout, uid_t owner, int *ret_fd, char *error,
		 size_t error_size)
{
	struct sockaddr_un address;
	if (unixsock_address(path, &address) < 0) {
		snprintf(error, error_size, "%s: path too long for a unix socket", path);
		return -ENAMETOOLONG;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (timeout > 0 ? 0 : SOCK_NONBLOCK), 0);
	if (fd < 0) {
		int r = -errno;
		snprintf(error, error_size, "socket: %s", strerror(-r));
		return r;
	}
	int r = 0;
	if (timeout > 0) {
		r = connect_within(fd, &address, timeout);
	} else if (connect(fd, (struct sockaddr *)&address, sizeof(address)) < 0) {
		r = -errno;
	} else if (fcntl(fd, F_SETFL, 0) < 0) {
		r = -errno; /* connected: blocking again, as the other way returns it */
	}
	if (r < 0) {
		close(fd);
		if (r == -ENOENT)
			snprintf(error, error_size,
				 "no socket at %s: is the host running? (-s gives another path)",
				 path);
		else if (r == -ECONNREFUSED && !is_socket(path))
			snprintf(error, error_size,
				 "%s is not a socket: give the host's supervisor socket (-s PATH, "
				 "or -c CONFIG for the one its config names)",
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
		else if (r == -EAGAIN && timeout > 0)
			snprintf(error, error_size,
				 "%s: cannot connect within %g s: nothing accepts on it (a host "
				 "that hangs, or its queue is full); try again or look at its host",
				 path, timeout);
		else if (r == -EAGAIN)
			snprintf(error, error_size,
				 "%s: cannot connect now: nothing accepts on it (a host that "
				 "hangs, or its queue is full)",
				 path);
		else
			snprintf(error, error_size, "%s: %s", path, strerror(-r));
		return r == -EAGAIN ? -ETIMEDOUT : r;
	}
	r = check_peer(fd, path, owner, error, error_size);
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}
