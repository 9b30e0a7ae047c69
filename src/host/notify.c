/* notify: the sd_notify-compatible readiness socket that every worker gets as NOTIFY_SOCKET.
 *
 * One socket serves every worker: SO_PASSCRED makes the kernel attach the sender's pid to each
 * datagram, so a worker can't claim to be another. The address is one the kernel picks in the
 * abstract namespace (autobind), so there is no file to clean up, no directory that must be
 * writable and no name two hosts could both want. */
#include "host/notify.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/limits.h"
#include "lib/log.h"
#include "lib/loop.h"

/* systemd accepts datagrams up to this size too; longer ones are cut and ignored. */

struct notify {
	struct loop *loop;
	int fd;
	notify_fn fn;
	void *data;
	char address[64];
};

void
notify_parse(char *text, struct notify_message *message)
{
	for (char *line = text; line && *line;) {
		char *end = strchr(line, '\n');
		if (end)
			*end = '\0';
		if (strcmp(line, "READY=1") == 0)
			message->ready = true;
		else if (strcmp(line, "STOPPING=1") == 0)
			message->stopping = true;
		else if (strcmp(line, "RELOADING=1") == 0)
			message->reloading = true;
		else if (strcmp(line, "WATCHDOG=1") == 0)
			message->watchdog = true;
		else if (strncmp(line, "STATUS=", 7) == 0)
			message->status = line + 7;
		line = end ? end + 1 : NULL;
	}
}

static void
close_passed_fds(struct msghdr *header)
{
	/* A worker may pass fds (sd_pid_notify_with_fds); the host stores none, so each one is
	 * closed at once rather than leaked. */
	for (struct cmsghdr *c = CMSG_FIRSTHDR(header); c; c = CMSG_NXTHDR(header, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int *fds = (int *)(void *)CMSG_DATA(c);
		for (size_t i = 0; i < count; i++)
			close(fds[i]);
	}
}

static void
on_readable(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct notify *notify = data;
	(void)loop;
	(void)events;
	for (;;) {
		char text[NOTIFY_MAX_DATAGRAM + 1];
		union {
			struct cmsghdr align;
			char
			    buffer[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 16)];
		} control;
		struct iovec iov = {text, NOTIFY_MAX_DATAGRAM};
		struct msghdr header = {
		    .msg_iov = &iov,
		    .msg_iovlen = 1,
		    .msg_control = control.buffer,
		    .msg_controllen = sizeof(control.buffer),
		};
		ssize_t n = recvmsg(fd, &header, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_errno(LOG_WARN, -errno, "notify socket: recvmsg");
			if (errno == EINTR)
				continue;
			return;
		}
		close_passed_fds(&header);
		struct ucred *credentials = NULL;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&header); c; c = CMSG_NXTHDR(&header, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
			    c->cmsg_len == CMSG_LEN(sizeof(struct ucred)))
				credentials = (struct ucred *)(void *)CMSG_DATA(c);
		if (!credentials || credentials->pid <= 0) {
			log_debug("notify: datagram without credentials ignored");
			continue;
		}
		if (header.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
			log_warn("notify: oversized datagram from pid %d ignored",
				 (int)credentials->pid);
			continue;
		}
		text[n] = '\0';
		struct notify_message message = {.pid = credentials->pid};
		notify_parse(text, &message);
		notify->fn(&message, notify->data);
	}
}

int
notify_open(struct loop *loop, notify_fn fn, void *data, struct notify **ret_notify)
{
	struct notify *notify = calloc(1, sizeof(*notify));
	if (!notify)
		return -ENOMEM;
	*notify = (struct notify){.loop = loop, .fn = fn, .data = data};
	int r;
	notify->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (notify->fd < 0) {
		r = -errno;
		free(notify);
		return r;
	}
	struct sockaddr_un address = {.sun_family = AF_UNIX};
	socklen_t length = sizeof(sa_family_t); /* just the family: the kernel picks a name */
	int one = 1;
	if (setsockopt(notify->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0 ||
	    bind(notify->fd, (struct sockaddr *)&address, length) < 0) {
		r = -errno;
		goto fail;
	}
	length = sizeof(address);
	if (getsockname(notify->fd, (struct sockaddr *)&address, &length) < 0) {
		r = -errno;
		goto fail;
	}
	size_t name_length = length - offsetof(struct sockaddr_un, sun_path);
	if (name_length < 2 || name_length >= sizeof(notify->address)) {
		r = -EINVAL;
		goto fail;
	}
	/* sun_path[0] is the abstract namespace's NUL, written '@' as systemd does. */
	notify->address[0] = '@';
	memcpy(notify->address + 1, address.sun_path + 1, name_length - 1);
	notify->address[name_length] = '\0';
	r = loop_add(loop, notify->fd, EPOLLIN, on_readable, notify);
	if (r < 0)
		goto fail;
	*ret_notify = notify;
	return 0;
fail:
	close(notify->fd);
	free(notify);
	return r;
}

void
notify_close(struct notify *notify)
{
	if (!notify)
		return;
	loop_remove(notify->loop, notify->fd);
	close(notify->fd);
	free(notify);
}

const char *
notify_address(const struct notify *notify)
{
	return notify->address;
}
