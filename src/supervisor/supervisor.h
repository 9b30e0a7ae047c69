/* supervisor: the supervisor process: accepts clients on the control socket the host bound,
 * frames NUL-terminated JSON, answers metrics itself and passes status/restart to the host. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* Serves on the fds of lib/channel.h (the listening socket, the channel to the host) until
 * SIGTERM or the host goes away. socket_gid: members may connect besides the host's user and
 * root; (gid_t)-1 for none. http: CHANNEL_FD_HTTP is a TCP socket serving GET /metrics
 * (Prometheus). Returns the exit code. */
int supervisor_main(pid_t host_pid, gid_t socket_gid, bool http);

/* `aerie supervisor-process --check-sandbox=PROBE [PATH]`: applies the sandbox the supervisor
 * process serves in, then makes PROBE's call (supervisor/sandbox.c lists them; "none": prints the
 * lines of /proc/self/status that show the sandbox; "read": opens PATH). A call the filter
 * refuses kills the process (SIGSYS). Returns the exit code: 0 refused with an error (or none
 * printed), 1 not refused, 2 no such probe. */
int sandbox_check(const char *probe, const char *path);
