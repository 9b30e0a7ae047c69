/* listen: the listening sockets a service's `listen` keys name, bound by the host once and
 * passed to every worker (LISTEN_FDS), so that they outlive any generation of workers. */
#pragma once

#include <stddef.h>

#include "lib/unixsock.h"

/* Binds text, a listen spec as config has checked it (lib/listen_spec.h: "tcp:HOST:PORT",
 * "tcp6:[ADDR]:PORT", "unix:PATH"; a relative PATH is relative to directory) and listens.
 * Returns 0 and an O_CLOEXEC fd, and for a unix socket its file in *ret_file (if not NULL;
 * {0} otherwise), or -errno with error filled. */
int listen_open(const char *text, const char *directory, int *ret_fd,
		struct unixsock_file *ret_file, char *error, size_t error_size);
/* Closes fd; for a unix socket also removes its file, if it is still file. */
void listen_close(const char *text, const char *directory, int fd,
		  const struct unixsock_file *file);

/* Sockets handed to the host by its own service manager (systemd socket activation:
 * LISTEN_FDS, LISTEN_PID), adopted by the `listen` lines whose address they are bound to. */
struct listen_inherited {
	int *fds; /* -1 once adopted */
	size_t count;
};

/* Takes LISTEN_FDS for this pid (and removes the variables from the environment, so that no
 * worker mistakes them for its own). No sockets is not an error. */
int listen_inherit(struct listen_inherited *ret_inherited);
/* The inherited socket bound to the address of text (a listen spec), taken out of inherited;
 * -1 if none. */
int listen_adopt(struct listen_inherited *inherited, const char *text, const char *directory);
/* Closes the inherited sockets no `listen` line wanted (logged), and frees the list. */
void listen_inherited_release(struct listen_inherited *inherited);
