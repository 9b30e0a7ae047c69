/* listen: the listening sockets a service's `listen` keys name, bound by the host once and
 * passed to every worker (LISTEN_FDS), so that they outlive any generation of workers. */
#pragma once

#include <stddef.h>

/* Backlog: connections the kernel queues while no worker accepts (during a restart). */
#define LISTEN_BACKLOG 4096

/* Binds spec ("tcp:HOST:PORT", "tcp6:[ADDR]:PORT", "unix:PATH"; a relative PATH is relative
 * to directory) and listens. Returns 0 and an O_CLOEXEC fd, or -errno with error filled. */
int listen_open(const char *spec, const char *directory, int *ret_fd, char *error,
		size_t error_size);
/* Closes fd; for a unix socket also removes its file. */
void listen_close(const char *spec, const char *directory, int fd);
