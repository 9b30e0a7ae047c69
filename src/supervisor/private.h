/* private: what the files of the supervisor process share; nothing outside src/supervisor
 * includes it.
 *
 * The files are layers, each calling only those below it; read them top to bottom:
 *   supervisor.c  main, the loop, accepting clients into their pool, pausing when out of fds
 *   peer.c        (beside it) the gate: who may connect, the reply a refused peer gets, and
 *                 the rate-limited log of refusals
 *   http.c        Prometheus over HTTP: one GET /metrics per connection
 *   requests.c    the NUL framing of requests, their handlers, the channel to the host
 *   client.c      one connection: its bounded buffers, reading, writing, closing, its deadlines
 *   sandbox.c     (called once by supervisor.c) what the process gives up before it serves
 * Where a lower layer must reach a higher one (a connection's input, a client gone, the host's
 * answer), it calls a function pointer the higher layer gave it. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/channel.h"
#include "lib/limits.h"
#include "lib/loop.h"
#include "lib/protocol.h"
#include "metrics/cpu_interval.h"

struct client;

/* The connections of each listening socket are counted apart, so that the Prometheus socket
 * (TCP: anyone who can reach the address) can never take the operator's control socket. */
enum client_pool {
	CLIENT_POOL_CONTROL,
	CLIENT_POOL_HTTP,
	CLIENT_POOL_COUNT,
};

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
	enum client_pool pool;
	/* Seconds without input before the client is closed, unless an answer is on its way. */
	double idle_timeout;
	/* Seconds from a request's first byte to its end, unless an answer is on its way: input
	 * that trickles in renews the idle deadline, never this one. */
	double request_timeout;
	/* The request's time runs from the connection (HTTP: the client speaks first, once). */
	bool request_at_connect;
	/* Optional: all output queued so far has been written (a `logs -f` batch is through). */
	void (*drained)(struct client *client);
	/* Optional: the client is being closed (its follow ends). */
	void (*closed)(struct client *client);
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
	struct loop_timer request_timer; /* the unfinished request in input must end by then */
	/* The requests', kept by requests.c and http.c. */
	uint64_t awaiting;	      /* id of the request the host is answering, or 0 */
	requests_answer_fn on_answer; /* for the host's answer; NULL: passed on as it is */
	bool follow_asked;	      /* the awaited request is a `logs -f` */
	uint64_t following; /* that request's id once answered: the host's batches come to it */
	unsigned acks_owed; /* batches queued here that the host has not been told are written */
};

struct supervisor {
	struct loop *loop;
	pid_t host_pid;
	gid_t socket_gid; /* (gid_t)-1: none */
	bool http;	  /* CHANNEL_FD_HTTP is the Prometheus HTTP socket */
	struct client *clients;
	size_t pool_count[CLIENT_POOL_COUNT]; /* clients connected, per pool */
	/* A client has closed: an fd is free again. The accepting layer sets it, so that
	 * client.c, below, need not call up into supervisor.c. */
	void (*client_gone)(struct supervisor *supervisor);
	uint64_t next_id;
	uint64_t pong_owed; /* a ping the channel could not take the answer to yet, or 0 */
	/* Replies of the host read between two requests, delivered from the loop (requests.c). */
	struct requests_inbox *inbox, **inbox_tail;
	struct loop_timer inbox_timer;
	struct loop_timer accept_timer;
	bool accept_paused;
	struct cpu_interval cpu; /* the last metrics capture, for processor_utilization_recent */
	/* capture.c: the reader of metrics requests, its fd budget, and when it goes idle. */
	struct metrics_reader *metrics;
	size_t metrics_max_fds;
	struct loop_timer metrics_idle;
	struct metrics_tree metrics_turn; /* this turn's capture, if metrics_shared */
	bool metrics_shared;
	/* Refused peers counted since their last log line, kept by peer.c. */
	struct {
		struct loop_timer timer; /* the next summary */
		struct {
			uid_t uid;
			unsigned long more; /* refusals since the line that logged it */
		} uids[SUPERVISOR_REFUSED_LOG_UIDS];
		size_t count;
		unsigned long others; /* refusals of uids that found the table full */
	} refused;
};

/* capture.c: the host's tree for a metrics request, with threads and kept fds that go once
 * requests stop. Init before the sandbox (it reads RLIMIT_NOFILE). The tree is the capture's
 * until the loop waits again: every metrics request served in one turn shares it, and fresh
 * says whether this request took it. */
void capture_init(struct supervisor *supervisor);
int capture_tree(struct supervisor *supervisor, const struct metrics_tree **ret_tree,
		 bool *ret_fresh);
void capture_close(struct supervisor *supervisor);

/* sandbox.c: gives up, once started, what serving does not need: capabilities but
 * CAP_SYS_PTRACE, new privileges, files outside /proc, syscalls outside an allow-list (which
 * lets it kill only host_pid, with HUP, INT, TERM or USR1). Returns 0, or -errno (logged). */
int sandbox_apply(pid_t host_pid);

/* peer.c: the gate. Whether the peer of fd may use the socket (the host's user, root, or a
 * member of socket_group); *ret_uid is its uid either way, for the log. */
bool peer_allowed(const struct supervisor *supervisor, int fd, uid_t *ret_uid);
/* Whether uid is root or the host's user: the operator, for whom slots are kept. */
bool peer_is_operator(uid_t uid);
/* The one reply a refused client gets, best effort; closes fd. */
void peer_refuse(int fd, enum protocol_code code, const char *message);
/* Logs a peer refused for its uid: the first time in full, then a count per
 * SUPERVISOR_REFUSED_LOG_INTERVAL, so that a loop of connections cannot flood the log. */
void peer_log_refused(struct supervisor *supervisor, uid_t uid);
/* peer_log_refused's state: set up before the loop runs; at the end, the counts not yet
 * logged are. */
void peer_log_init(struct supervisor *supervisor);
void peer_log_finish(struct supervisor *supervisor);

/* http.c: a connection of the Prometheus socket. Returns 0 or -errno (fd then still open). */
int http_client_new(struct supervisor *supervisor, int fd);
/* The one response a connection not taken gets (503), best effort; closes fd. */
void http_refuse(int fd, const char *body);

/* requests.c: a connection of the control socket, of NUL-framed requests; uid is its peer's.
 * Returns 0 or -errno (fd then still open). */
int requests_client_new(struct supervisor *supervisor, int fd, uid_t uid);
/* Whether client waits for the host's answer. */
bool requests_waiting(const struct client *client);
/* Passes a request to the host; its reply goes to on_answer, or as it is to the client when
 * NULL. Returns 0 or -errno. */
int requests_forward(struct client *client, enum command command, const char *service,
		     const struct channel_arguments *arguments, requests_answer_fn on_answer);
/* The channel's fd is readable: the host's replies and pings. */
void requests_on_channel(struct loop *loop, int fd, uint32_t events, void *data);
/* Before the loop runs, and after: what requests.c keeps of the channel. */
void requests_init(struct supervisor *supervisor);
void requests_close(struct supervisor *supervisor);
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
