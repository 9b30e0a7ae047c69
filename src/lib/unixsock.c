/* unixsock: unix socket paths: the address, claiming a path a dead process left behind, and
 * making and removing a listening socket's file so that no call by name goes elsewhere. */
#include "lib/unixsock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/pathat.h"

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

/* Whether a listener answers on the socket file at name in directory. Connected through an
 * O_PATH descriptor of the file that was looked at, not through its name again: what answers
 * is that file's socket, whatever the name is by then. Non-blocking: a listener whose queue is
 * full (a host that accepts no more) makes connect fail at once with EAGAIN, where a blocking
 * connect would wait for room with the host's signals blocked, so that not even SIGTERM could
 * end it. Returns 1 (someone listens), 0 (nobody: stale) or -errno with error filled. */
static int
probe_at(int directory, const char *name, const struct stat *st, const char *path, char *error,
	 size_t error_size)
{
	int file = openat(directory, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (file < 0)
		return errno == ENOENT ? 0 : -errno;
	struct stat now;
	int r = fstat(file, &now) < 0 ? -errno : 0;
	if (r == 0 && (now.st_dev != st->st_dev || now.st_ino != st->st_ino)) {
		snprintf(error, error_size, "%s changed while it was looked at; try again", path);
		r = -EAGAIN;
	}
	int fd = r < 0 ? -1 : socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (r == 0 && fd < 0)
		r = -errno;
	if (r < 0) {
		close(file);
		return r;
	}
	struct sockaddr_un address = {.sun_family = AF_UNIX};
	snprintf(address.sun_path, sizeof(address.sun_path), "/proc/self/fd/%d", file);
	r = connect(fd, (struct sockaddr *)&address, sizeof(address)) < 0 ? -errno : 0;
	close(fd);
	close(file);
	if (r == 0 || r == -EAGAIN || r == -EINPROGRESS) {
		snprintf(error, error_size,
			 "%s: another process is answering on this socket (another host?)%s; stop "
			 "it first or configure another path",
			 path, r == -EAGAIN ? ", with its queue full" : "");
		return 1;
	}
	if (r != -ECONNREFUSED) {
		snprintf(error, error_size, "%s: cannot tell whether it is in use: %s", path,
			 strerror(-r));
		return r;
	}
	return 0;
}

/* unixsock_claim, on path's directory and last name (unixsock_listen claims this way too). */
static int
claim_at(int directory, const char *name, const char *path, char *error, size_t error_size)
{
	struct stat st;
	if (fstatat(directory, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(error, error_size, "%s exists and is not a socket; not replacing it",
			 path);
		return -EEXIST;
	}
	int r = probe_at(directory, name, &st, path, error, error_size);
	if (r != 0)
		return r > 0 ? -EADDRINUSE : r;
	/* unlinkat removes the name, never what a link points to; and only while the name is
	 * still the socket that refused. */
	struct stat now;
	if (fstatat(directory, name, &now, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (now.st_dev != st.st_dev || now.st_ino != st.st_ino) {
		snprintf(error, error_size, "%s changed while it was looked at; try again", path);
		return -EAGAIN;
	}
	log_info("removing stale socket %s", path);
	if (unlinkat(directory, name, 0) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* A socket file whose listener is gone refuses connections: only then is it removed. */
int
unixsock_claim(const char *path, char *error, size_t error_size)
{
	int directory;
	const char *name;
	int r = pathat_open_parent(path, &directory, &name);
	if (r < 0)
		return r;
	r = claim_at(directory, name, path, error, error_size);
	close(directory);
	return r;
}

/* Binds fd where bind can be pointed at a directory: through /proc/self/fd, by the socket's
 * own name if that fits in sun_path, else by a short one (the name only shows in getsockname). */
static int
bind_at(int fd, int directory, const char *name, const char **ret_name)
{
	struct sockaddr_un address = {.sun_family = AF_UNIX};
	int n = snprintf(address.sun_path, sizeof(address.sun_path), "/proc/self/fd/%d/%s",
			 directory, name);
	if (n < 0 || (size_t)n >= sizeof(address.sun_path)) {
		name = "socket";
		snprintf(address.sun_path, sizeof(address.sun_path), "/proc/self/fd/%d/%s",
			 directory, name);
	}
	*ret_name = name;
	return bind(fd, (struct sockaddr *)&address, sizeof(address)) < 0 ? -errno : 0;
}

/* In the private directory: bound, given its group and mode, listening; by names in a
 * directory only this process can enter, so no name can be a link or another file. */
static int
make_in(int fd, int private_fd, const char *name, const struct unixsock_listener *listener,
	const char **ret_name, struct stat *ret_st)
{
	/* Owner-only until its group and mode are set, even for the instant between. */
	mode_t old_umask = umask(0177);
	int r = bind_at(fd, private_fd, name, ret_name);
	umask(old_umask);
	if (r < 0)
		return r;
	if (listener->gid != (gid_t)-1 &&
	    fchownat(private_fd, *ret_name, (uid_t)-1, listener->gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (fchmodat(private_fd, *ret_name, listener->mode, 0) < 0 ||
	    listen(fd, listener->backlog) < 0 ||
	    fstatat(private_fd, *ret_name, ret_st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

/* The socket made in a directory of its own beside path, then renamed into place: bind and
 * chmod/chown take names, and a user who may write path's directory could otherwise swap a
 * link in between, to have root change any file (OpenSSH's ssh-agent binds in a mkdtemp
 * directory for the same reason). mkdtemp beside it keeps the rename on one file system;
 * RENAME_NOREPLACE never replaces what appeared at path meanwhile. */
static int
listen_private(int fd, int directory, const char *name, const struct unixsock_listener *listener,
	       struct stat *ret_st, char *error, size_t error_size)
{
	const char *path = listener->path;
	char template[PATH_MAX];
	snprintf(template, sizeof(template), "/proc/self/fd/%d/.%s.XXXXXX", directory, name);
	if (!mkdtemp(template)) {
		int r = -errno;
		snprintf(error, error_size, "%s: cannot make a directory beside it: %s", path,
			 strerror(errno));
		return r;
	}
	const char *private_name = strrchr(template, '/') + 1;
	/* Taken by its fd at once and checked: another user who renamed ours away and put a
	 * directory or link of theirs in its place is refused here. */
	int private_fd =
	    openat(directory, private_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	int r = 0;
	if (private_fd < 0 || fstat(private_fd, &st) < 0)
		r = -errno;
	else if (st.st_uid != geteuid() || (st.st_mode & 077)) {
		snprintf(error, error_size, "%s: the directory made beside it was replaced", path);
		r = -EPERM;
	}
	const char *bound = name;
	if (r == 0) {
		r = make_in(fd, private_fd, name, listener, &bound, ret_st);
		if (r < 0)
			snprintf(error, error_size, "%s: %s", path, strerror(-r));
	}
	if (r == 0 && renameat2(private_fd, bound, directory, name, RENAME_NOREPLACE) < 0) {
		r = -errno;
		/* File systems without RENAME_NOREPLACE: link, which never replaces either. */
		if (r == -EINVAL)
			r = linkat(private_fd, bound, directory, name, 0) < 0 ? -errno : 0;
		if (r == -EEXIST)
			snprintf(error, error_size,
				 "%s: a file appeared there while the socket was made (another "
				 "host starting?); not replacing it",
				 path);
		else if (r < 0)
			snprintf(error, error_size, "%s: %s", path, strerror(-r));
	}
	if (private_fd >= 0) {
		(void)unlinkat(private_fd, bound, 0); /* left after a failure or a link */
		close(private_fd);
	}
	(void)unlinkat(directory, private_name, AT_REMOVEDIR);
	return r;
}

/* Whether the socket file at name in directory is fd's own: a connection to it lands in fd's
 * queue (and is taken from it at once). *ret_st is that file's. */
static bool
is_own_socket(int fd, int directory, const char *name, struct stat *ret_st)
{
	if (fstatat(directory, name, ret_st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISSOCK(ret_st->st_mode))
		return false;
	char scratch[1];
	if (probe_at(directory, name, ret_st, "", scratch, sizeof(scratch)) != 1)
		return false;
	struct pollfd pending = {.fd = fd, .events = POLLIN};
	if (poll(&pending, 1, 0) != 1)
		return false;
	int accepted = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (accepted < 0)
		return false;
	close(accepted);
	return true;
}

/* Bound at path itself, by bind alone: bind never follows a link at the last name (anything
 * there is EADDRINUSE) and the file gets its mode from the umask there and then, so no other
 * call by name follows; the socket keeps its real name for getsockname, which workers check
 * (systemd's sd_is_socket_unix). Then checked to be fd's own, in case a directory on the way
 * was replaced between the look at path and the bind. */
static int
listen_in_place(int fd, int directory, const char *name, const struct unixsock_listener *listener,
		struct stat *ret_st, char *error, size_t error_size)
{
	struct sockaddr_un address;
	int r = unixsock_address(listener->path, &address);
	if (r == 0 && bind(fd, (struct sockaddr *)&address, sizeof(address)) < 0)
		r = -errno;
	if (r == 0 && listen(fd, listener->backlog) < 0)
		r = -errno;
	if (r < 0) {
		snprintf(error, error_size, "%s: %s", listener->path, strerror(-r));
		return r;
	}
	if (!is_own_socket(fd, directory, name, ret_st)) {
		snprintf(error, error_size,
			 "%s: the socket bound there is not at that name any more (was a directory "
			 "on the way replaced?)",
			 listener->path);
		return -EAGAIN;
	}
	return 0;
}

int
unixsock_listen(const struct unixsock_listener *listener, int *ret_fd,
		struct unixsock_file *ret_file, char *error, size_t error_size)
{
	const char *path = listener->path;
	int directory;
	const char *name;
	error[0] = '\0';
	int r = pathat_open_parent(path, &directory, &name);
	if (r < 0) {
		snprintf(error, error_size, "%s: %s", path, strerror(-r));
		return r;
	}
	r = claim_at(directory, name, path, error, error_size);
	int fd = r < 0 ? -1 : socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | listener->flags, 0);
	if (r == 0 && fd < 0) {
		r = -errno;
		snprintf(error, error_size, "socket: %s", strerror(errno));
	}
	struct stat st;
	if (r == 0 && listener->mode == (mode_t)-1 && listener->gid == (gid_t)-1)
		r = listen_in_place(fd, directory, name, listener, &st, error, error_size);
	else if (r == 0)
		r = listen_private(fd, directory, name, listener, &st, error, error_size);
	close(directory);
	if (r < 0) {
		if (!error[0])
			snprintf(error, error_size, "%s: %s", path, strerror(-r));
		if (fd >= 0)
			close(fd);
		return r;
	}
	*ret_fd = fd;
	*ret_file = (struct unixsock_file){st.st_dev, st.st_ino};
	return 0;
}

void
unixsock_remove(const char *path, const struct unixsock_file *file)
{
	int directory;
	const char *name;
	if (file->ino == 0 || pathat_open_parent(path, &directory, &name) < 0)
		return;
	/* Only the file that was made: whatever another user put at the name since, or at the
	 * end of a directory swapped on the way, is not the host's to remove. */
	struct stat st;
	if (fstatat(directory, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISSOCK(st.st_mode) && st.st_dev == file->dev && st.st_ino == file->ino)
			(void)unlinkat(directory, name, 0);
		else
			log_warn("%s is no longer the socket the host made: left alone", path);
	}
	close(directory);
}
