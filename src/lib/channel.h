/* channel: the messages between the host and its supervisor process, and how the host starts
 * that process. One message per datagram on a SOCK_SEQPACKET pair, framed the same way in both
 * directions: a fixed header, then its payload (OpenBSD's imsg, in miniature). A message too
 * large for a datagram travels in a sealed memfd instead, and the host queues what the
 * supervisor process cannot take yet rather than drop it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/commands.h"
#include "lib/limits.h"
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
	/* The host asks whether the supervisor process's loop still turns; it answers with a
	 * CHANNEL_PONG of the same id. Both have no payload. */
	CHANNEL_PING,
	CHANNEL_PONG,
	/* A reply too large for one datagram: this datagram has no payload and carries one fd
	 * (SCM_RIGHTS), a memfd sealed against any change, which holds the whole CHANNEL_REPLY
	 * message, header and payload, with the same id. */
	CHANNEL_FILE,
	/* `logs -f` (host/logs.c): a batch of line frames for the client of the request with
	 * this id, each JSON text ending in its NUL, at most CHANNEL_MAX_DATAGRAM bytes; the
	 * supervisor process answers each with a CHANNEL_LOGS_ACK (no payload) once it wrote the
	 * batch to the client, and sends CHANNEL_LOGS_CANCEL (no payload) when the client left. */
	CHANNEL_LOGS,
	CHANNEL_LOGS_ACK,
	CHANNEL_LOGS_CANCEL,
};

/* Native byte order and layout: both ends are the same executable on the same machine. */
struct channel_header {
	uint32_t type;	 /* enum channel_type, or a request's enum command */
	uint32_t length; /* of the payload that follows the header */
	uint64_t id;	 /* the supervisor process's number for the request; never 0 */
};

/* What a request carries besides its service, after the service and a NUL: stop, start, scale
 * and signal's arguments, and logs' (which worker, how many lines, whether to follow). A
 * request without them has them all zero but worker, which is -1. */
struct channel_arguments {
	int32_t signal; /* signal: the signal for the workers */
	int32_t worker; /* signal, logs: a worker's index, or -1 for every worker */
	uint32_t count; /* scale: the new count */
	uint32_t lines; /* logs: how many of the last lines */
	uint32_t flags; /* logs: CHANNEL_FOLLOW */
};
#define CHANNEL_FOLLOW 1u

/* The largest payload: a request's is the service it names, "" for all, optionally followed by
 * a NUL and a struct channel_arguments; a reply's is the JSON text the client gets, with its
 * NUL (see limits.h). */
#define CHANNEL_MAX_REQUEST (PROTOCOL_MAX_SERVICE + 1 + sizeof(struct channel_arguments))
#define CHANNEL_MAX_REPLY CHANNEL_REPLY_MAX

struct channel_message {
	struct channel_header header;
	/* A request: its command and the service it names, NUL-terminated ("" for all). */
	enum command command;
	char service[PROTOCOL_MAX_SERVICE + 1];
	struct channel_arguments arguments; /* {0, -1, 0, 0, 0} when the request carried none */
	/* A reply: its JSON text and the NUL after it, both inside the parsed buffer; length
	 * counts the NUL, so that the supervisor passes it to the client as the frame it is. */
	const char *reply;
	size_t reply_length;
};

/* Sends one message: the header and length bytes of payload, in one datagram, without
 * blocking. Returns 0, or -errno: -EAGAIN (the peer has not taken what came before),
 * -EMSGSIZE or -ENOBUFS (too large for one datagram). The supervisor process sends its few
 * small messages with it; the host sends through a channel_queue. */
int channel_send(int fd, uint32_t type, uint64_t id, const void *payload, size_t length);

/* Checks one datagram: a whole header, a length that matches, a known type, a nonzero id, a
 * payload within its bound; a request's service NUL-free; a reply's JSON text ending in its
 * one NUL; no payload for a ping, a pong or a file. Pure. Returns 0 and fills *ret_message
 * (whose reply points into buffer), or -EBADMSG leaving it untouched. */
int channel_parse(const void *buffer, size_t length, struct channel_message *ret_message);

/* The host's side: the messages the supervisor process has not taken yet, in order. Nothing
 * is dropped and nothing blocks: a message that does not go out at once waits here until the
 * channel is writable again (EPOLLOUT, then channel_queue_flush). The owner bounds it by
 * reading no more requests while it holds more than CHANNEL_QUEUE_MAX_MESSAGES or
 * CHANNEL_QUEUE_MAX_BYTES. Zero-initialised is empty. */
struct channel_queued;
struct channel_queue {
	struct channel_queued *head, *tail;
	size_t count;
	size_t bytes; /* payloads held, in memory or in memfds */
};

/* Sends a message after those queued before it: at once if the channel takes it, else it is
 * queued. A payload over CHANNEL_MAX_DATAGRAM (or one the socket refuses as too large) goes
 * as a CHANNEL_FILE. Returns 0 (sent or queued), or -errno: -EMSGSIZE (over
 * CHANNEL_MAX_REPLY) or -ENOMEM, and nothing was queued; or what sending failed with, -EPIPE
 * or -ECONNRESET when the peer is gone. */
int channel_queue_send(struct channel_queue *queue, int fd, uint32_t type, uint64_t id,
		       const void *payload, size_t length);
/* Sends what the channel takes now. Returns 0 when the queue is empty, -EAGAIN when some is
 * left (wait for EPOLLOUT), or -errno (the peer is gone). */
int channel_queue_flush(struct channel_queue *queue, int fd);
/* Whether the owner should stop reading requests until the queue drains. */
bool channel_queue_full(const struct channel_queue *queue);
/* Frees what is queued (the peer is gone). */
void channel_queue_clear(struct channel_queue *queue);

/* The supervisor process's side: one message received whole, checked by channel_parse; a
 * CHANNEL_FILE comes out as the CHANNEL_REPLY in its memfd, which must be sealed, of a bounded
 * size, and carry the datagram's id. message points into storage this owns. */
struct channel_received {
	struct channel_message message;
	void *data;
	size_t size;
	bool mapped; /* data is the memfd's mapping, else malloc'ed */
};
/* Receives the next message without blocking. Returns 0 (free it with channel_received_free),
 * -EAGAIN (none now), -EPIPE (the peer closed the channel), -EBADMSG (a malformed message,
 * taken off the channel and discarded, with any fd it carried) or -ENOMEM (likewise). */
int channel_receive(int fd, struct channel_received *ret_received);
void channel_received_free(struct channel_received *received);
