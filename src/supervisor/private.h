/* private: what the files of the supervisor process share; nothing outside src/supervisor
 * includes it.
 *
 * The files are layers, each calling only those below it; read them top to bottom:
 *   supervisor.c  main, the loop, accepting clients and pausing when out of fds
 *   peer.c        (beside it) the gate: who may connect, and the reply a refused peer gets
 *   http.c        Prometheus over HTTP: one GET /metrics per connection
 *   requests.c    the NUL framing of requests, their handlers, the channel to the host
 *   client.c      one connection: its bounded buffers, reading, writing, closing, idle deadline
 *   sandbox.c     (called once by supervisor.c) what the process gives up before it serves
 * Where a lower layer must reach a higher one (a connection's input, a client gone, the host's
 * answer), it calls a function pointer the higher layer gave it. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/loop.h"
#include "lib/protocol.h"
#include "metrics/cpu_interval.h"

struct client;

/* What the layer above does with a connection. client.c moves bytes and knows nothing of
 * requests or HTTP: it asks through these instead of calling requests.c or http.c, so that it
 * stays the bottom layer. */
struct client_ops {
	/* Input has come, the client shut its side, or client_continue's next turn is here. */
	void (*input)(struct client *client);
	/* Whether an answer is on its way from elsewhere (the host): no reason to be idle. */
	bool (*waiting)(const struct client *client);
	/* Whether something is left to answer: at EOF with all output sent, the client closes
	 * unless so. */
	bool (*pending)(const struct client *client);
};

/* The host's answer to a request passed on by requests_forward; status is its reply decoded
 * (NULL when it is not JSON). */
typedef void (*requests_answer_fn)(struct client *client, const json_t *status);

struct client {
	/* The connection's, kept by client.c. */
	struct supervisor *supervisor;
	const struct client_ops *ops;
	struct client *next;
	int fd;
	uid_t uid;
	bool eof;	  /* the client shut its side: answer what it sent, then close */
	bool close_after; /* stop answering once the output is flushed (after too_large) */
	bool draining;	  /* reply sent and write side shut: discard input until EOF */
	bool watched;	  /* in the loop's epoll set */
	size_t output_capacity;
	struct loop_timer resume_timer; /* more requests are waiting: answer them next turn */
	char *input;			/* PROTOCOL_MAX_REQUEST + 1 bytes */
	size_t input_length;
	char *output;
	size_t output_length, output_sent;
	struct loop_timer idle_timer;
	/* The requests', kept by requests.c and http.c. */
	uint64_t awaiting;	      /* id of the request the host is answering, or 0 */
	requests_answer_fn on_answer; /* for the host's answer; NULL: passed on as it is */
};

struct supervisor {
	struct loop *loop;
	pid_t host_pid;
	gid_t socket_gid; /* (gid_t)-1: none */
	bool http;	  /* CHANNEL_FD_HTTP is the Prometheus HTTP socket */
	struct client *clients;
	size_t client_count;
	/* A client has closed: an fd is free again. The accepting layer sets it, so that
	 * client.c, below, need not call up into supervisor.c. */
	void (*client_gone)(struct supervisor *supervisor);
	uint64_t next_id;
	struct loop_timer accept_timer;
	bool accept_paused;
	struct cpu_interval cpu; /* the last metrics capture, for processor_utilization_recent */
};

/* sandbox.c: gives up, once started, what serving does not need: capabilities but
 * CAP_SYS_PTRACE, new privileges, files outside /proc, syscalls outside an allow-list (which
 * lets it kill only host_pid, with HUP, INT, TERM or USR1). Returns 0, or -errno (logged). */
int sandbox_apply(pid_t host_pid);

/* peer.c: the gate. Whether the peer of fd may use the socket (the host's user, root, or a
 * member of socket_group); *ret_uid is its uid either way, for the log. */
bool peer_allowed(const struct supervisor *supervisor, int fd, uid_t *ret_uid);
/* The one reply a refused client gets, best effort; closes fd. */
void peer_refuse(int fd, enum protocol_code code, const char *message);

/* http.c: a connection of the Prometheus socket. Returns 0 or -errno (fd then still open). */
int http_client_new(struct supervisor *supervisor, int fd);

/* requests.c: a connection of the control socket, of NUL-framed requests; uid is its peer's.
 * Returns 0 or -errno (fd then still open). */
int requests_client_new(struct supervisor *supervisor, int fd, uid_t uid);
/* Whether client waits for the host's answer. */
bool requests_waiting(const struct client *client);
/* Passes a request to the host; its reply goes to on_answer, or as it is to the client when
 * NULL. Returns 0 or -errno. */
int requests_forward(struct client *client, enum command command, const char *service,
		     requests_answer_fn on_answer);
/* The channel's fd is readable: the host's replies. */
void requests_on_channel(struct loop *loop, int fd, uint32_t events, void *data);
/* The exposition text for the host's status; its length, or -errno when /proc or memory fail. */
ssize_t requests_exposition(struct supervisor *supervisor, const json_t *status, char **ret_text);

/* client.c: one connection. Functions that return bool return false when the client was
 * closed (and freed) meanwhile: the caller must not touch it again. */
int client_new(struct supervisor *supervisor, int fd, uid_t uid, const struct client_ops *ops);
void client_close(struct client *client);
void client_update_events(struct client *client);
/* Calls ops->input again on the next turn of the loop, after the other clients' events. */
void client_continue(struct client *client);
/* Queues length bytes (replies with their NULs), copied; the caller keeps text. */
bool client_queue(struct client *client, const char *text, size_t length);
