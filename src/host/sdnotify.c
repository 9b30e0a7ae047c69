/* sdnotify: the host's own messages to its service manager (systemd's sd_notify protocol), when
 * it was started with NOTIFY_SOCKET. Hand-written: it is one sendto(), and libsystemd would be a
 * dependency for that alone. */
#include "host/sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/log.h"

struct sdnotify {
	int fd;
	struct sockaddr_un address;
	socklen_t address_length;
};

int
sdnotify_open(struct sdnotify **ret)
{
	const char *path = getenv("NOTIFY_SOCKET");
	*ret = NULL;
	if (!path || !*path)
		return 0;
	size_t length = strlen(path);
	struct sdnotify *notify = calloc(1, sizeof(*notify));
	if (!notify)
		return -ENOMEM;
	if ((path[0] != '/' && path[0] != '@') || length >= sizeof(notify->address.sun_path)) {
		log_warn("NOTIFY_SOCKET=%s is not a unix socket path; not notifying", path);
		free(notify);
		(void)unsetenv("NOTIFY_SOCKET");
		return 0;
	}
	notify->address.sun_family = AF_UNIX;
	memcpy(notify->address.sun_path, path, length);
	if (path[0] == '@')
		notify->address.sun_path[0] = '\0'; /* abstract namespace */
	notify->address_length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + length);
	notify->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (notify->fd < 0) {
		int r = -errno;
		free(notify);
		return r;
	}
	(void)unsetenv("NOTIFY_SOCKET");
	*ret = notify;
	return 0;
}

void
sdnotify_close(struct sdnotify *notify)
{
	if (!notify)
		return;
	close(notify->fd);
	free(notify);
}

void
sdnotify_send(struct sdnotify *notify, const char *format, ...)
{
	if (!notify)
		return;
	char text[1024];
	va_list args;
	va_start(args, format);
	int n = vsnprintf(text, sizeof(text), format, args);
	va_end(args);
	if (n < 0)
		return;
	size_t length = (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1;
	if (sendto(notify->fd, text, length, MSG_NOSIGNAL, (struct sockaddr *)&notify->address,
		   notify->address_length) < 0)
		log_debug("sd_notify %.*s: %s", (int)strcspn(text, "\n"), text, strerror(errno));
}

double
sdnotify_watchdog_seconds(void)
{
	const char *usec = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	if (!usec)
		return 0;
	if (pid && atol(pid) != (long)getpid())
		return 0;
	char *end;
	unsigned long long value = strtoull(usec, &end, 10);
	if (*end || value == 0)
		return 0;
	return (double)value / 1e6;
}
