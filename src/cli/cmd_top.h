/* cmd_top: `aerie supervisor top`, a live view of a host (see cmd_top.c). */
#pragma once

#include <sys/types.h>

/* Polls the supervisor at socket every interval seconds and draws a full-screen view; when
 * stdin or stdout is not a terminal, prints one snapshot instead, waiting up to timeout
 * seconds for it. The first connection waits up to timeout, later ones not at all; each
 * trusts only a socket served by root, this user or owner (UNIXSOCK_NO_OWNER: no other).
 * Returns the exit code. */
int cmd_top(const char *socket, double interval, double timeout, uid_t owner);
