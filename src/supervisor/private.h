/* private: what the files of the supervisor process share (supervisor.c, peer.c, client.c,
 * requests.c, http.c); nothing outside src/supervisor includes it. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/loop.h"
#include "lib/protocol.h"
#include "metrics/cpu_interval.h"

struct client {
	struct supervisor *supervisor;
	struct client *next;
	int fd;
	uid_t uid;
	bool eof;		  /* the client shut its side: answer what it sent, then close */
	bool close_after;	  /* stop answering once the output is flushed (after too_large) */
	bool draining;		  /* reply sent and write side shut: discard input until EOF */
	bool watched;		  /* in the loop's epoll set */
	uint64_t awaiting;	  /* id of the request the host is answering, or 0 */
	bool awaiting_prometheus; /* the host's status is for a Prometheus metrics reply */
	bool http;		  /* came on the HTTP socket: one GET, answered, closed */
	size_t output_capacity;
	struct loop_timer resume_timer; /* more requests are waiting: answer them next turn */
	char *input;			/* PROTOCOL_MAX_REQUEST + 1 bytes */
	size_t input_length;
	char *output;
	size_t output_length, output_sent;
	struct loop_timer idle_timer;
};

struct supervisor {
	struct loop *loop;
	pid_t host_pid;
	gid_t socket_gid; /* (gid_t)-1: none */
	bool http;	  /* CHANNEL_FD_HTTP is the Prometheus HTTP socket */
	struct client *clients;
	size_t client_count;
	uint64_t next_id;
	struct loop_timer accept_timer;
	bool accept_paused;
	struct cpu_interval cpu; /* the last metrics capture, for processor_utilization_recent */
};

/* supervisor.c: accepting again after a pause, once a client has gone. */
void supervisor_accept_resume(struct supervisor *supervisor);

/* peer.c: the gate. Whether the peer of fd may use the socket (the host's user, root, or a
 * member of socket_group); *ret_uid is its uid either way, for the log. */
bool peer_allowed(const struct supervisor *supervisor, int fd, uid_t *ret_uid);
/* The one reply a refused client gets, best effort; closes fd. */
void peer_refuse(int fd, enum protocol_code code, const char *message);

/* client.c: one connection. Functions that return bool return false when the client was
 * closed (and freed) meanwhile: the caller must not touch it again. */
int client_new(struct supervisor *supervisor, int fd, uid_t uid, bool http);
void client_close(struct client *client);
/* Answers every complete request in the input, in order, until one must wait for the host. */
void client_process(struct client *client);
void client_update_events(struct client *client);
/* Queues length bytes (replies with their NULs), copied; the caller keeps text. */
bool client_queue(struct client *client, const char *text, size_t length);
/* Queues one reply (and its NUL); takes the reference; NULL is "out of memory". */
bool client_reply(struct client *client, json_t *reply);

/* requests.c: a parsed request, to its handler. */
bool requests_dispatch(struct client *client, const struct protocol_request *request);
/* Passes a request to the host; its reply comes to requests_on_channel. Returns 0 or -errno. */
int requests_forward(struct client *client, enum command command, const char *service);
/* The channel's fd is readable: the host's replies. */
void requests_on_channel(struct loop *loop, int fd, uint32_t events, void *data);
/* The exposition text for the host's status; its length, or -errno when /proc or memory fail. */
ssize_t requests_exposition(struct supervisor *supervisor, const json_t *status, char **ret_text);

/* http.c: a client of the Prometheus socket. */
void http_process(struct client *client);
/* The host's status has come (NULL: it could not be read): the response, then the close. */
void http_answer(struct client *client, const json_t *status);
