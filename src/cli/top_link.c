/* top_link: one connection to a supervisor socket that stays open (see the header). */
#include "cli/top_link.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/limits.h"
#include "lib/unixsock.h"

int
top_link_connect(struct top_link *link, const char *path, double timeout, uid_t owner, char *error,
		 size_t error_size)
{
	int fd;
	int r = unixsock_connect(path, timeout, owner, &fd, error, error_size);
	if (r < 0)
		return r;
	if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
		r = -errno;
		snprintf(error, error_size, "%s: %s", path, strerror(-r));
		close(fd);
		return r;
	}
	top_link_close(link);
	link->fd = fd;
	return 0;
}

void
top_link_close(struct top_link *link)
{
	if (link->fd >= 0)
		close(link->fd);
	free(link->input);
	*link = (struct top_link)TOP_LINK_INIT;
}

int
top_link_ask(struct top_link *link, enum command command)
{
	char request[64];
	snprintf(request, sizeof(request), "{\"please\":\"%s\"}", command_table[command].name);
	return top_link_send(link, request);
}

int
top_link_send(struct top_link *link, const char *request)
{
	size_t length = strlen(request) + 1;
	if (link->fd < 0)
		return -ENOTCONN;
	for (;;) {
		ssize_t n = send(link->fd, request, length, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		return (size_t)n == length ? 0 : -EAGAIN;
	}
}

/* Takes the first NUL-terminated reply out of the input, if there is one. */
static int
next_reply(struct top_link *link, json_t **ret_reply)
{
	char *end = link->input ? memchr(link->input, '\0', link->length) : NULL;
	if (!end)
		return 0;
	size_t length = (size_t)(end - link->input);
	json_t *reply = json_loadb(link->input, length, JSON_DECODE_ANY, NULL);
	memmove(link->input, end + 1, link->length - length - 1);
	link->length -= length + 1;
	if (!reply)
		return -EPROTO;
	*ret_reply = reply;
	return 1;
}

int
top_link_receive(struct top_link *link, json_t **ret_reply)
{
	if (link->fd < 0)
		return -ENOTCONN;
	for (;;) {
		int r = next_reply(link, ret_reply);
		if (r != 0)
			return r;
		if (link->length == link->capacity) {
			if (link->capacity >= CLIENT_MAX_REPLY)
				return -EMSGSIZE;
			size_t capacity = link->capacity ? link->capacity * 2 : 64 * 1024;
			char *bigger = realloc(link->input, capacity);
			if (!bigger)
				return -ENOMEM;
			link->input = bigger;
			link->capacity = capacity;
		}
		ssize_t n = recv(link->fd, link->input + link->length,
				 link->capacity - link->length, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		link->length += (size_t)n;
	}
}
