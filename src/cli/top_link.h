/* top_link: one connection to a supervisor socket that stays open: NUL-terminated requests
 * out, replies in, in order, never blocking (what `top` polls its host through). */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "lib/commands.h"

struct top_link {
	int fd; /* -1: not connected */
	char *input;
	size_t length, capacity;
};

#define TOP_LINK_INIT                                                                              \
	{                                                                                          \
		.fd = -1                                                                           \
	}

/* Connects to the socket at path (non-blocking afterwards) as unixsock_connect does: waiting
 * at most timeout seconds for room (0: not at all), trusting root, this user and owner only.
 * On failure, error says what is wrong and what to do, for the user; returns -errno. */
int top_link_connect(struct top_link *link, const char *path, double timeout, uid_t owner,
		     char *error, size_t error_size);
void top_link_close(struct top_link *link);
/* Sends request (a JSON text) and its NUL. The requests are tiny and at most a few are in
 * flight, so a full socket buffer is an error (-EAGAIN), not something to queue. */
int top_link_send(struct top_link *link, const char *request);
/* top_link_send of the plain request of command, {"please":NAME}. */
int top_link_ask(struct top_link *link, enum command command);
/* Reads what has arrived. Returns 1 with the next reply in *ret_reply (a new reference), 0 if
 * no whole reply is there yet, or -errno: -ECONNRESET when the supervisor closed, -EPROTO for
 * a reply that is not JSON, -EMSGSIZE for one larger than 64 MiB. */
int top_link_receive(struct top_link *link, json_t **ret_reply);
