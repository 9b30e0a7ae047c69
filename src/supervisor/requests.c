/* requests: the clients of the control socket: the NUL framing of their requests, and what the
 * supervisor process does with each, through a table indexed by enum command: metrics answered
 * here from /proc, Falcon's signal form of restart sent to the host, and the rest passed to the
 * host on the channel, whose replies come back here. Below it is client.c, the connection. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/channel.h"
#include "lib/limits.h"
#include "lib/log.h"
#include "metrics/metrics.h"
#include "metrics/metrics_json.h"
#include "metrics/metrics_prometheus.h"
#include "supervisor/private.h"

/* Answers request on client; false if the client was closed meanwhile. */
typedef bool (*request_fn)(struct client *client, const struct protocol_request *request);

static void process(struct client *client);
static void poll_host(struct supervisor *supervisor);

/* Queues one reply (and its NUL); takes the reference; NULL is "out of memory". False if the
 * client was closed meanwhile. */
static bool
reply_json(struct client *client, json_t *reply)
{
	char *text = NULL;
	ssize_t length = reply ? protocol_encode(reply, &text) : -ENOMEM;
	json_decref(reply);
	if (length < 0) {
		size_t fallback_length;
		const char *fallback = protocol_out_of_memory(&fallback_length);
		return client_queue(client, fallback, fallback_length);
	}
	bool alive = client_queue(client, text, (size_t)length);
	free(text);
	return alive;
}

/* The host's tree, encoded straight into the reply (see metrics_json.c for why). */
static bool
reply_metrics(struct client *client)
{
	const struct metrics_tree *tree;
	bool fresh;
	poll_host(client->supervisor);
	int r = capture_tree(client->supervisor, &tree, &fresh);
	if (r < 0) {
		char message[128];
		snprintf(message, sizeof(message), "cannot read /proc for the host: %s",
			 strerror(-r));
		return reply_json(client, protocol_error(PROTOCOL_CODE_METRICS_FAILED, message));
	}
	/* Over the time since the last capture by any client: one baseline for all, whose
	 * windows cpu_interval.c keeps at least CPU_INTERVAL_MIN_SECONDS long; a tree shared
	 * within a turn has had it. Out of memory leaves the lifetime values, which the encoder
	 * then gives. */
	if (fresh)
		(void)cpu_interval_update(&client->supervisor->cpu, (struct metrics_tree *)tree);
	char *text;
	ssize_t length = metrics_json_encode(tree, &text);
	if (length < 0)
		return reply_json(client, NULL);
	bool alive = client_queue(client, text, (size_t)length + 1); /* with its NUL */
	free(text);
	return alive;
}

/* The error reply for a request the host could not be given. */
static bool
reply_unforwarded(struct client *client)
{
	return reply_json(
	    client, protocol_error(PROTOCOL_CODE_HOST_UNAVAILABLE, "the host does not answer"));
}

/* The host's tree in Prometheus' text format, labelled from the host's status; sent as one JSON
 * string so that the framing stays the same. */
static json_t *
prometheus_reply(struct supervisor *supervisor, const json_t *status)
{
	if (json_object_get(status, "error"))
		return json_incref((json_t *)status);
	char *text;
	ssize_t length = requests_exposition(supervisor, status, &text);
	if (length == -ENOMEM)
		return NULL;
	if (length < 0)
		return protocol_error(PROTOCOL_CODE_METRICS_FAILED,
				      "cannot read /proc for the host");
	json_t *reply = json_stringn(text, (size_t)length);
	free(text);
	return reply;
}

/* The host's status has come for a Prometheus metrics request. */
static void
answer_prometheus(struct client *client, const json_t *status)
{
	if (reply_json(client, status ? prometheus_reply(client->supervisor, status)
				      : protocol_error(PROTOCOL_CODE_INTERNAL, "bad reply")))
		process(client);
}

static bool
request_metrics(struct client *client, const struct protocol_request *request)
{
	if (!request->prometheus)
		return reply_metrics(client);
	/* Labels come from the host's status: ask for it first. */
	if (requests_forward(client, COMMAND_STATUS, NULL, NULL, answer_prometheus) < 0)
		return reply_unforwarded(client);
	return true;
}

/* Passes the request to the host as it is. */
static bool
request_host(struct client *client, const struct protocol_request *request)
{
	if (requests_forward(client, request->command, request->service, NULL, NULL) < 0)
		return reply_unforwarded(client);
	return true;
}

/* What a request carries besides its service, for the host. */
static struct channel_arguments
arguments_of(const struct protocol_request *request)
{
	return (struct channel_arguments){
	    .signal = request->signal,
	    .worker = request->worker,
	    .count = request->count,
	    .lines = request->lines,
	    .flags = request->follow ? CHANNEL_FOLLOW : 0,
	};
}

/* The same as request_host, with what the request carries besides its service. */
static bool
request_host_arguments(struct client *client, const struct protocol_request *request)
{
	struct channel_arguments arguments = arguments_of(request);
	if (requests_forward(client, request->command, request->service, &arguments, NULL) < 0)
		return reply_unforwarded(client);
	return true;
}

/* The host answers with the last lines; with follow, its batches come after the reply until
 * this client leaves (see host/logs.c for the window that bounds them). */
static bool
request_logs(struct client *client, const struct protocol_request *request)
{
	struct channel_arguments arguments = arguments_of(request);
	if (requests_forward(client, request->command, request->service, &arguments, NULL) < 0)
		return reply_unforwarded(client);
	client->follow_asked = request->follow;
	return true;
}

/* With a signal, Falcon's form: the signal goes to the host, which is this process's parent. */
static bool
request_restart(struct client *client, const struct protocol_request *request)
{
	if (!request->signal)
		return request_host(client, request);
	struct supervisor *supervisor = client->supervisor;
	if (getppid() != supervisor->host_pid)
		return reply_json(
		    client, protocol_error(PROTOCOL_CODE_HOST_UNAVAILABLE, "the host is gone"));
	if (kill(supervisor->host_pid, request->signal) < 0) {
		char message[128];
		snprintf(message, sizeof(message), "cannot signal the host: %s", strerror(errno));
		return reply_json(client, protocol_error(PROTOCOL_CODE_SIGNAL_FAILED, message));
	}
	return reply_json(client, json_pack("{s:b,s:s}", "ok", 1, "signal", request->signal_name));
}

/* The supervisor process's half of command_table. */
static const request_fn handlers[COMMAND_COUNT] = {
    [COMMAND_METRICS] = request_metrics,
    [COMMAND_RESTART] = request_restart,
    [COMMAND_STATUS] = request_host,
    [COMMAND_RELOAD] = request_host,
    [COMMAND_STOP] = request_host_arguments,
    [COMMAND_START] = request_host_arguments,
    [COMMAND_SCALE] = request_host_arguments,
    [COMMAND_SIGNAL] = request_host_arguments,
    [COMMAND_LOGS] = request_logs,
};

/* A parsed request, to its handler. */
static bool
dispatch(struct client *client, const struct protocol_request *request)
{
	request_fn handler = handlers[request->command];
	if (handler)
		return handler(client, request);
	/* A command the host answers needs no handler here: it is passed on as it is. */
	if (command_table[request->command].answerer == COMMAND_BY_HOST)
		return request_host(client, request);
	return reply_json(client,
			  protocol_error(PROTOCOL_CODE_INTERNAL, "this command has no handler"));
}

/* Answers every complete request in the input, in order, until one must wait for the host. */
static void
process(struct client *client)
{
	/* A following client asks nothing more: what it sends is left unread. */
	for (unsigned answered = 0; !client->awaiting && !client->following && !client->close_after;
	     answered++) {
		if (answered == SUPERVISOR_REQUESTS_PER_TURN) {
			/* Fairness: a client that pipelined thousands of requests gets the rest
			 * on the next turns of the loop, after the other clients' events. */
			client_continue(client);
			break;
		}
		ssize_t framed = protocol_frame(client->input, client->input_length);
		if (framed == PROTOCOL_FRAME_MORE)
			break;
		if (framed == PROTOCOL_FRAME_TOO_LARGE) {
			client->close_after = true;
			(void)reply_json(client, protocol_error(PROTOCOL_CODE_TOO_LARGE,
								"request larger than 65536 bytes; "
								"closing the connection"));
			return;
		}
		size_t length = (size_t)framed;
		struct protocol_request request;
		json_t *error = NULL;
		int r = protocol_parse(client->input, length, &request, &error);
		/* The request is taken out of the input before it is answered: an answer may
		 * flush, and a flush looks at what is left to decide whether to close. */
		memmove(client->input, client->input + length + 1,
			client->input_length - length - 1);
		client->input_length -= length + 1;
		if (r < 0 ? !reply_json(client, error) : !dispatch(client, &request))
			return;
	}
	if (!client->awaiting && !client->following && client->eof && client->output_length == 0) {
		client_close(client);
		return;
	}
	client_update_events(client);
}

bool
requests_waiting(const struct client *client)
{
	return client->awaiting != 0 || client->following != 0;
}

/* A request still in the input, or one the host answers, keeps a client open at EOF, and so
 * does a follow (a client may shut its side once it asked). */
static bool
pending(const struct client *client)
{
	return client->awaiting || client->following ||
	       protocol_frame(client->input, client->input_length) >= 0;
}

/* Tells the host the batches this client had are written, so that it sends more; while the
 * channel cannot take it the ack stays owed, sent when the channel is writable. */
static void
send_acks(struct client *client)
{
	while (client->acks_owed > 0 && client->output_length == client->output_sent) {
		int r = channel_send(CHANNEL_FD_HOST, CHANNEL_LOGS_ACK, client->following, NULL, 0);
		if (r == -EAGAIN) {
			(void)loop_modify(client->supervisor->loop, CHANNEL_FD_HOST,
					  EPOLLIN | EPOLLOUT);
			return;
		}
		client->acks_owed--;
	}
}

static void
on_drained(struct client *client)
{
	if (client->following)
		send_acks(client);
}

static void
on_closed(struct client *client)
{
	/* Best effort: a cancel the channel cannot take is made up for by the host's bound on
	 * followers. */
	if (client->following)
		(void)channel_send(CHANNEL_FD_HOST, CHANNEL_LOGS_CANCEL, client->following, NULL,
				   0);
}

static struct client *
find_following(struct supervisor *supervisor, uint64_t id)
{
	for (struct client *client = supervisor->clients; client; client = client->next)
		if (client->following == id)
			return client;
	return NULL;
}

/* A batch of the host's for a following client: queued, and acked once written. */
static void
deliver_logs(struct supervisor *supervisor, const struct channel_message *message)
{
	struct client *client = find_following(supervisor, message->header.id);
	if (!client) {
		(void)channel_send(CHANNEL_FD_HOST, CHANNEL_LOGS_CANCEL, message->header.id, NULL,
				   0);
		return;
	}
	client->acks_owed++;
	/* client_queue writes at once what the socket takes, and on_drained acks then. */
	(void)client_queue(client, message->reply, message->reply_length);
}

int
requests_client_new(struct supervisor *supervisor, int fd, uid_t uid)
{
	static const struct client_ops ops = {
	    .input = process,
	    .waiting = requests_waiting,
	    .pending = pending,
	    .pool = CLIENT_POOL_CONTROL,
	    .idle_timeout = SUPERVISOR_IDLE_TIMEOUT,
	    .request_timeout = SUPERVISOR_REQUEST_TIMEOUT,
	    .drained = on_drained,
	    .closed = on_closed,
	};
	return client_new(supervisor, fd, uid, &ops);
}

int
requests_forward(struct client *client, enum command command, const char *service,
		 const struct channel_arguments *arguments, requests_answer_fn on_answer)
{
	struct supervisor *supervisor = client->supervisor;
	uint64_t id = ++supervisor->next_id;
	/* The service, then (when there are arguments) a NUL and the arguments. */
	char payload[CHANNEL_MAX_REQUEST];
	size_t length = service ? strlen(service) : 0;
	if (length > PROTOCOL_MAX_SERVICE)
		return -EINVAL;
	if (length)
		memcpy(payload, service, length);
	if (arguments) {
		payload[length++] = '\0';
		memcpy(payload + length, arguments, sizeof(*arguments));
		length += sizeof(*arguments);
	}
	int r = channel_send(CHANNEL_FD_HOST, (uint32_t)command, id, payload, length);
	if (r < 0) {
		/* The client's error reply says it; a flood of them is no news for the log. */
		log_errno(LOG_DEBUG, r, "channel: request not passed to the host");
		return r;
	}
	client->awaiting = id;
	client->on_answer = on_answer;
	return 0;
}

ssize_t
requests_exposition(struct supervisor *supervisor, const json_t *status, char **ret_text)
{
	const struct metrics_tree *tree;
	bool fresh;
	poll_host(supervisor);
	int r = capture_tree(supervisor, &tree, &fresh);
	if (r < 0)
		return r;
	return metrics_prometheus_format(tree, status, supervisor->host_pid, getpid(), ret_text);
}

static struct client *
find_awaiting(struct supervisor *supervisor, uint64_t id)
{
	for (struct client *client = supervisor->clients; client; client = client->next)
		if (client->awaiting == id)
			return client;
	return NULL;
}

/* One reply of the host, to the client that waits for it. */
static void
answer(struct supervisor *supervisor, const struct channel_message *message)
{
	struct client *client = find_awaiting(supervisor, message->header.id);
	if (!client)
		return; /* for a client that has left */
	client->awaiting = 0;
	requests_answer_fn on_answer = client->on_answer;
	client->on_answer = NULL;
	if (client->follow_asked) {
		client->follow_asked = false;
		/* An error reply ends it; else the host's batches follow with this id. */
		if (strncmp(message->reply, "{\"error\"", 8) != 0)
			client->following = message->header.id;
	}
	if (!on_answer) {
		/* Passed on as the host wrote it, with the frame's NUL. */
		if (client_queue(client, message->reply, message->reply_length))
			process(client);
		return;
	}
	/* The one who asked says what the answer becomes: a function pointer, because one of
	 * them, http.c, is the layer above this file. */
	json_t *status =
	    json_loadb(message->reply, message->reply_length - 1, JSON_DECODE_ANY, NULL);
	on_answer(client, status);
	json_decref(status);
}

/* Answers the host's ping; false while the channel cannot take it (the host has not read what
 * came before), when it is owed and sent once the channel is writable. */
static bool
answer_ping(struct supervisor *supervisor, uint64_t id)
{
	int r = channel_send(CHANNEL_FD_HOST, CHANNEL_PONG, id, NULL, 0);
	supervisor->pong_owed = r == -EAGAIN ? id : 0;
	if (r < 0 && r != -EAGAIN)
		log_errno(LOG_DEBUG, r, "channel: pong");
	if (r == -EAGAIN)
		(void)loop_modify(supervisor->loop, CHANNEL_FD_HOST, EPOLLIN | EPOLLOUT);
	return r != -EAGAIN;
}

/* A reply of the host read but not delivered yet. */
struct requests_inbox {
	struct requests_inbox *next;
	struct channel_received received;
};

/* Reads what the host sent: a ping is answered at once, a reply kept in the inbox. Returns
 * false once the host has closed the channel. */
static bool
read_channel(struct supervisor *supervisor)
{
	for (;;) {
		struct channel_received received;
		int r = channel_receive(CHANNEL_FD_HOST, &received);
		if (r == -EAGAIN)
			return true;
		if (r == -EPIPE)
			return false;
		if (r < 0) {
			log_errno(LOG_WARN, r, "channel: a message from the host ignored");
			continue;
		}
		uint32_t type = received.message.header.type;
		bool kept = type == CHANNEL_REPLY || type == CHANNEL_LOGS;
		struct requests_inbox *entry = kept ? malloc(sizeof(*entry)) : NULL;
		if (entry) {
			*entry = (struct requests_inbox){.received = received};
			*supervisor->inbox_tail = entry;
			supervisor->inbox_tail = &entry->next;
			continue;
		}
		if (type == CHANNEL_PING)
			(void)answer_ping(supervisor, received.message.header.id);
		else if (kept)
			log_error("channel: no memory for a reply of the host");
		else
			log_warn("channel: a message of type %u from the host ignored",
				 (unsigned)type);
		channel_received_free(&received);
	}
}

/* Reads the channel and hands each reply to the client that waits for it. */
static void
run_channel(struct supervisor *supervisor)
{
	bool open = read_channel(supervisor);
	while (supervisor->inbox) {
		struct requests_inbox *entry = supervisor->inbox;
		supervisor->inbox = entry->next;
		if (!supervisor->inbox)
			supervisor->inbox_tail = &supervisor->inbox;
		if (entry->received.message.header.type == CHANNEL_LOGS)
			deliver_logs(supervisor, &entry->received.message);
		else
			answer(supervisor, &entry->received.message);
		channel_received_free(&entry->received);
		free(entry);
	}
	if (!open) {
		log_info("the host closed the channel; exiting");
		loop_quit(supervisor->loop);
	}
}

/* Called before each capture of /proc, the long part of a turn of this loop (30 metrics
 * requests of a large tree can take seconds): the host's ping is answered meanwhile, so that
 * a busy supervisor is not taken for a hung one. Replies read are delivered from the loop,
 * where no request is being answered. */
static void
poll_host(struct supervisor *supervisor)
{
	if (!read_channel(supervisor) || supervisor->inbox)
		(void)loop_timer_start(supervisor->loop, &supervisor->inbox_timer, 0);
}

static void
on_inbox_timer(struct loop *loop, void *data)
{
	(void)loop;
	run_channel(data);
}

void
requests_init(struct supervisor *supervisor)
{
	supervisor->inbox_tail = &supervisor->inbox;
	loop_timer_init(&supervisor->inbox_timer, on_inbox_timer, supervisor);
}

void
requests_close(struct supervisor *supervisor)
{
	loop_timer_stop(supervisor->loop, &supervisor->inbox_timer);
	while (supervisor->inbox) {
		struct requests_inbox *entry = supervisor->inbox;
		supervisor->inbox = entry->next;
		channel_received_free(&entry->received);
		free(entry);
	}
	supervisor->inbox_tail = &supervisor->inbox;
}

void
requests_on_channel(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct supervisor *supervisor = data;
	if (events & EPOLLOUT) {
		(void)loop_modify(loop, fd, EPOLLIN); /* set again below by what is still owed */
		if (supervisor->pong_owed)
			(void)answer_ping(supervisor, supervisor->pong_owed);
		for (struct client *client = supervisor->clients; client; client = client->next)
			if (client->acks_owed)
				send_acks(client);
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		run_channel(supervisor);
}
