/* unixsock: unix socket paths: the address, claiming a path a dead process left behind, and
 * connecting to a server the client can trust. */
#pragma once

#include <stddef.h>
#include <sys/types.h>
#include <sys/un.h>

/* Fills a sockaddr_un for path; -ENAMETOOLONG if it does not fit. */
int unixsock_address(const char *path, struct sockaddr_un *ret_address);
/* Makes path free to bind: nothing there is fine; a socket nobody answers on is removed; a
 * socket that answers, or any other file, is an error described in error. */
int unixsock_claim(const char *path, char *error, size_t error_size);
/* unixsock_connect's owner when only root and the caller's own user are trusted. */
#define UNIXSOCK_NO_OWNER ((uid_t)-1)
/* Connects to the socket at path and returns the connected (blocking) fd. A listener whose
 * backlog is full is waited for at most timeout seconds (0: not at all), then -ETIMEDOUT. The
 * server must be root, the caller's effective user or owner (SO_PEERCRED), else -EPERM and
 * nothing was sent. On failure returns -errno and writes into error what is wrong and what to
 * do, for a user. */
int unixsock_connect(const char *path, double timeout, uid_t owner, int *ret_fd, char *error,
		     size_t error_size);
