/* unixsock: unix socket paths: the address, and claiming a path a dead process left behind. */
#pragma once

#include <stddef.h>
#include <sys/un.h>

/* Fills a sockaddr_un for path; -ENAMETOOLONG if it does not fit. */
int unixsock_address(const char *path, struct sockaddr_un *ret_address);
/* Makes path free to bind: nothing there is fine; a socket nobody answers on is removed; a
 * socket that answers, or any other file, is an error described in error. */
int unixsock_claim(const char *path, char *error, size_t error_size);
/* Connects (blocking: a unix socket connects or fails at once) to the socket at path. On
 * failure returns -errno and writes into error what is wrong and what to do, for a user. */
int unixsock_connect(const char *path, int *ret_fd, char *error, size_t error_size);
