/* unixsock: unix socket paths: the address, claiming a path a dead process left behind, and
 * making and removing a listening socket's file so that no call by name goes elsewhere (the
 * host's side, unixsock.c); and connecting to a server the client can trust (the client's side,
 * unixsock_connect.c). */
#pragma once

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

/* Fills a sockaddr_un for path; -ENAMETOOLONG if it does not fit. */
int unixsock_address(const char *path, struct sockaddr_un *ret_address);
/* Makes path free to bind: nothing there is fine; a socket nobody answers on is removed; a
 * socket that answers (or whose queue is full: it does not wait), or any other file, is an error
 * described in error. Nothing is followed: a link at path is "not a socket". */
int unixsock_claim(const char *path, char *error, size_t error_size);
/* unixsock_connect.c, the client's side: */
/* unixsock_connect's owner when only root and the caller's own user are trusted. */
#define UNIXSOCK_NO_OWNER ((uid_t)-1)
/* Connects to the socket at path and returns the connected (blocking) fd. A listener whose
 * backlog is full is waited for at most timeout seconds (0: not at all), then -ETIMEDOUT. The
 * server must be root, the caller's effective user or owner (SO_PEERCRED), else -EPERM and
 * nothing was sent. On failure returns -errno and writes into error what is wrong and what to
 * do, for a user. */
int unixsock_connect(const char *path, double timeout, uid_t owner, int *ret_fd, char *error,
		     size_t error_size);

/* A listening socket to make. */
struct unixsock_listener {
	const char *path;
	mode_t mode; /* (mode_t)-1: as the umask makes it */
	gid_t gid;   /* (gid_t)-1: the process's */
	int backlog;
	int flags; /* SOCK_NONBLOCK or 0; always SOCK_CLOEXEC */
};
/* The file unixsock_listen made, so that it alone is removed; {0} if none. */
struct unixsock_file {
	dev_t dev;
	ino_t ino;
};
/* Claims listener->path (unixsock_claim), binds and listens there. With a mode or a group the
 * socket is made in a private directory beside path and renamed into place once its mode and
 * group are set; without, it is bound at path by bind alone. Either way no call made by name
 * can be sent to another file by a link or a rename, and the socket appears at path complete
 * and listening. Returns 0, the fd and the file, or -errno with error filled. */
int unixsock_listen(const struct unixsock_listener *listener, int *ret_fd,
		    struct unixsock_file *ret_file, char *error, size_t error_size);
/* Removes path if it is still file (a file put there since is left alone, with a warning). */
void unixsock_remove(const char *path, const struct unixsock_file *file);
