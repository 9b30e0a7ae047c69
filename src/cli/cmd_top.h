/* cmd_top: `aerie supervisor top`, a live view of a host (see cmd_top.c). */
#pragma once

/* Polls the supervisor at socket every interval seconds and draws a full-screen view; when
 * stdin or stdout is not a terminal, prints one snapshot instead, waiting up to timeout
 * seconds for it. Returns the exit code. */
int cmd_top(const char *socket, double interval, double timeout);
