/* sdnotify: the host's own messages to its service manager (systemd's sd_notify protocol), when
 * it was started with NOTIFY_SOCKET. */
#pragma once

struct sdnotify;

/* Reads NOTIFY_SOCKET (and removes it from the environment, so that no worker inherits it).
 * Returns 0 with *ret NULL when there is none, 0 with a handle, or -errno. */
int sdnotify_open(struct sdnotify **ret);
void sdnotify_close(struct sdnotify *notify);
/* Sends one datagram ("READY=1\nSTATUS=…"); failures are logged at debug and otherwise
 * ignored: the manager's absence must not disturb the host. A NULL handle does nothing. */
void sdnotify_send(struct sdnotify *notify, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
/* The watchdog interval systemd asked for (WATCHDOG_USEC for this pid), in seconds; 0: none. */
double sdnotify_watchdog_seconds(void);
