/* channel: the messages between the host and its supervisor process, and how the host starts
 * that process. One message per datagram on a SOCK_SEQPACKET pair, framed the same way in both
 * directions: a fixed header, then its payload (OpenBSD's imsg, in miniature). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/commands.h"
#include "lib/protocol.h"

/* The supervisor process is `aerie supervisor-process --host-pid PID --socket-gid GID
 * [--prometheus]` (GID -1: no socket_group), with these fds: the host hands them to
 * worker_spawn in this order, which puts them from fd 3 on as systemd's LISTEN_FDS are. */
#define CHANNEL_PROCESS_COMMAND "supervisor-process"
#define CHANNEL_OPTION_HOST_PID "host-pid"
#define CHANNEL_OPTION_SOCKET_GID "socket-gid"
#define CHANNEL_OPTION_PROMETHEUS "prometheus"
enum channel_fd {
	CHANNEL_FD_FIRST = 3,
	CHANNEL_FD_CONTROL = CHANNEL_FD_FIRST, /* the control socket, listening, non-blocking */
	CHANNEL_FD_HOST,		       /* the supervisor process's end of the channel */
	CHANNEL_FD_HTTP, /* with --prometheus: a listening TCP socket for GET /metrics */
};

/* What a message is. A request's type is its enum command, one that command_table says the
 * host answers; the host's answer to it is a CHANNEL_REPLY with the same id. */
enum channel_type {
	/* 0 … COMMAND_COUNT - 1: requests */
	CHANNEL_REPLY = 0x10000,
};

/* Native byte order and layout: both ends are the same executable on the same machine. */
struct channel_header {
	uint32_t type;	 /* enum channel_type, or a request's enum command */
	uint32_t length; /* of the payload that follows the header */
	uint64_t id;	 /* the supervisor process's number for the request; never 0 */
};

/* The largest payload: a request's is the service it names, "" for all; a reply's is the JSON
 * text the client gets, with its NUL, which can't be longer than a client may leave unread. */
#define CHANNEL_MAX_REQUEST PROTOCOL_MAX_SERVICE
#define CHANNEL_MAX_REPLY PROTOCOL_MAX_OUTPUT

struct channel_message {
	struct channel_header header;
	/* A request: its command and the service it names, NUL-terminated ("" for all). */
	enum command command;
	char service[CHANNEL_MAX_REQUEST + 1];
	/* A reply: its JSON text and the NUL after it, both inside the parsed buffer; length
	 * counts the NUL, so that the supervisor passes it to the client as the frame it is. */
	const char *reply;
	size_t reply_length;
};

/* Sends one message: the header and length bytes of payload, in one datagram, without
 * blocking (a full channel means a stuck peer: the message is dropped rather than the loop
 * stopped). Returns 0, or -errno: -EAGAIN, -EMSGSIZE (too large for the socket's buffer). */
int channel_send(int fd, uint32_t type, uint64_t id, const void *payload, size_t length);

/* Checks one datagram: a whole header, a length that matches, a known type, a nonzero id, a
 * payload within its bound; a request's service NUL-free; a reply's JSON text ending in its
 * one NUL. Pure. Returns 0 and fills *ret_message (whose reply points into buffer), or
 * -EBADMSG leaving it untouched. */
int channel_parse(const void *buffer, size_t length, struct channel_message *ret_message);
