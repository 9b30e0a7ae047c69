/* supervisor: the supervisor process: accepts clients on the control socket the host bound,
 * frames NUL-terminated JSON, answers metrics itself and passes status/restart to the host.
 *
 * It runs as a child of the host (see control.c) with the listening socket at fd 3 and its
 * channel to the host at fd 4. Everything here is bounded per client: input (one request of
 * PROTOCOL_MAX_REQUEST), output (PROTOCOL_MAX_OUTPUT, then the client is dropped), time
 * (SUPERVISOR_IDLE_TIMEOUT without a request) and count (PROTOCOL_MAX_CLIENTS). */
#include "supervisor/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/limits.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/protocol.h"
#include "metrics/cpu_interval.h"
#include "metrics/metrics.h"
#include "metrics/metrics_json.h"
#include "metrics/metrics_prometheus.h"

#define SUPERVISOR_LISTEN_FD 3
#define SUPERVISOR_CHANNEL_FD 4
#define SUPERVISOR_HTTP_FD 5 /* with --prometheus: GET /metrics in Prometheus' format */

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
	bool http;	  /* fd 5 is the Prometheus HTTP socket */
	struct client *clients;
	size_t client_count;
	uint64_t next_id;
	struct loop_timer accept_timer;
	bool accept_paused;
	struct cpu_interval cpu; /* the last metrics capture, for processor_utilization_recent */
};

static void client_close(struct client *client);
static void client_process(struct client *client);
static void on_client(struct loop *loop, int fd, uint32_t events, void *data);

static void
client_update_events(struct client *client)
{
	uint32_t events = 0;
	/* Stop reading while the input is full and waiting on an answer: the kernel's buffer
	 * then pushes back on the client instead of this process's memory. */
	if (!client->eof && !client->close_after && client->input_length <= PROTOCOL_MAX_REQUEST)
		events |= EPOLLIN;
	if (client->output_sent < client->output_length)
		events |= EPOLLOUT;
	struct loop *loop = client->supervisor->loop;
	/* epoll reports a hang-up even for an empty mask: a client that left while the host
	 * works on its request would wake this process in a loop. Out of the set it waits
	 * quietly for the host's answer (or its idle deadline). */
	if (events == 0) {
		if (client->watched)
			loop_remove(loop, client->fd);
		client->watched = false;
	} else if (client->watched) {
		(void)loop_modify(loop, client->fd, events);
	} else {
		client->watched = loop_add(loop, client->fd, events, on_client, client) == 0;
	}
}

/* Writes what it can; false if the client is gone (and freed). */
static bool
client_flush(struct client *client)
{
	while (client->output_sent < client->output_length) {
		ssize_t n =
		    send(client->fd, client->output + client->output_sent,
			 client->output_length - client->output_sent, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			/* EPIPE, ECONNRESET: it left without reading (Falcon's restart client
			 * does exactly that). */
			log_debug("client: %s", strerror(errno));
			client_close(client);
			return false;
		}
		client->output_sent += (size_t)n;
	}
	if (client->output_sent == client->output_length) {
		client->output_sent = client->output_length = 0;
		if (client->close_after && !client->eof) {
			/* Closing with unread input would reset the connection and could lose
			 * the error reply: shut our side and read to the end instead. */
			client->draining = true;
			(void)shutdown(client->fd, SHUT_WR);
			(void)loop_modify(client->supervisor->loop, client->fd, EPOLLIN);
			return true;
		}
		if (client->close_after ||
		    (client->eof && !client->awaiting &&
		     protocol_frame(client->input, client->input_length) < 0)) {
			client_close(client);
			return false;
		}
	}
	client_update_events(client);
	return true;
}

/* Queues length bytes of text (a reply and its NUL) and frees text. False if the client was
 * dropped. */
static bool
client_queue(struct client *client, char *text, size_t length)
{
	size_t pending = client->output_length - client->output_sent;
	if (pending + length > PROTOCOL_MAX_OUTPUT) {
		log_warn("client uid %u: dropped, %zu reply bytes unread", (unsigned)client->uid,
			 pending);
		free(text);
		client_close(client);
		return false;
	}
	if (client->output_sent > 0) {
		memmove(client->output, client->output + client->output_sent, pending);
		client->output_length = pending;
		client->output_sent = 0;
	}
	if (client->output_length + length > client->output_capacity) {
		/* Doubling: a burst of replies costs linear copying, not quadratic. */
		size_t capacity = client->output_capacity ? client->output_capacity : 4096;
		while (capacity < client->output_length + length)
			capacity *= 2;
		char *output = realloc(client->output, capacity);
		if (!output) {
			free(text);
			client_close(client);
			return false;
		}
		client->output = output;
		client->output_capacity = capacity;
	}
	memcpy(client->output + client->output_length, text, length);
	client->output_length += length;
	free(text);
	return client_flush(client);
}

/* Queues one reply (and its NUL); takes the reference. False if the client was dropped. */
static bool
client_reply(struct client *client, json_t *reply)
{
	char *text = NULL;
	ssize_t length = reply ? protocol_encode(reply, &text) : -ENOMEM;
	json_decref(reply);
	if (length < 0) {
		static const char fallback[] =
		    "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
		text = strdup(fallback);
		if (!text) {
			client_close(client);
			return false;
		}
		length = (ssize_t)sizeof(fallback);
	}
	return client_queue(client, text, (size_t)length);
}

/* The host's tree, encoded straight into the reply (see metrics_json.c for why). */
static bool
client_reply_metrics(struct client *client)
{
	struct metrics_tree tree;
	int r = metrics_capture(client->supervisor->host_pid, METRICS_WALK_CHILDREN, &tree);
	if (r < 0) {
		char message[128];
		snprintf(message, sizeof(message), "cannot read /proc for the host: %s",
			 strerror(-r));
		return client_reply(client, protocol_error("metrics_failed", message));
	}
	/* Over the time since the last capture by any client: one baseline for all, whose
	 * windows cpu_interval.c keeps at least CPU_INTERVAL_MIN_SECONDS long. Out of memory
	 * leaves the lifetime values, which the encoder then gives. */
	(void)cpu_interval_update(&client->supervisor->cpu, &tree);
	char *text;
	ssize_t length = metrics_json_encode(&tree, &text);
	metrics_tree_free(&tree);
	if (length < 0)
		return client_reply(client, NULL);
	return client_queue(client, text, (size_t)length + 1); /* with its NUL */
}

/* The host's tree in Prometheus' text format, labelled from the host's status; sent as one JSON
 * string so that the framing stays the same. */
/* The exposition text for the host's status; -errno when /proc or memory fail. */
static ssize_t
prometheus_text(struct supervisor *supervisor, const json_t *status, char **ret_text)
{
	struct metrics_tree tree;
	int r = metrics_capture(supervisor->host_pid, METRICS_WALK_CHILDREN, &tree);
	if (r < 0)
		return r;
	ssize_t length =
	    metrics_prometheus_format(&tree, status, supervisor->host_pid, getpid(), ret_text);
	metrics_tree_free(&tree);
	return length;
}

static json_t *
prometheus_reply(struct supervisor *supervisor, const json_t *status)
{
	if (json_object_get(status, "error"))
		return json_incref((json_t *)status);
	char *text;
	ssize_t length = prometheus_text(supervisor, status, &text);
	if (length == -ENOMEM)
		return NULL;
	if (length < 0)
		return protocol_error("metrics_failed", "cannot read /proc for the host");
	json_t *reply = json_stringn(text, (size_t)length);
	free(text);
	return reply;
}

/* Falcon's form: the signal goes to the host, which is this process's parent. */
static json_t *
signal_reply(struct supervisor *supervisor, const struct protocol_request *request)
{
	if (getppid() != supervisor->host_pid)
		return protocol_error("host_unavailable", "the host is gone");
	if (kill(supervisor->host_pid, request->signal) < 0) {
		char message[128];
		snprintf(message, sizeof(message), "cannot signal the host: %s", strerror(errno));
		return protocol_error("signal_failed", message);
	}
	return json_pack("{s:b,s:s}", "ok", 1, "signal", request->signal_name);
}

/* Passes a request to the host; the reply comes on the channel. */
static json_t *
forward(struct client *client, const struct protocol_request *request)
{
	struct supervisor *supervisor = client->supervisor;
	uint64_t id = ++supervisor->next_id;
	json_t *message = request->command == COMMAND_STATUS
			      ? json_pack("{s:I,s:s}", "id", (json_int_t)id, "please", "status")
			      : json_pack("{s:I,s:s}", "id", (json_int_t)id, "please", "restart");
	if (message && request->command == COMMAND_RESTART && request->service[0] &&
	    json_object_set_new(message, "service", json_string(request->service)) < 0) {
		json_decref(message);
		message = NULL;
	}
	char *text = message ? json_dumps(message, JSON_COMPACT) : NULL;
	json_decref(message);
	if (!text)
		return protocol_error("internal", "out of memory");
	ssize_t n = send(SUPERVISOR_CHANNEL_FD, text, strlen(text), MSG_NOSIGNAL);
	free(text);
	if (n < 0)
		return protocol_error("host_unavailable", "the host does not answer");
	client->awaiting = id;
	return NULL;
}

/* One HTTP response, then the connection closes (HTTP/1.0 style: a scrape per connection). */
static void
http_respond(struct client *client, const char *status, const char *body, size_t length)
{
	char *text;
	int n = asprintf(&text,
			 "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n%.*s",
			 status,
			 strncmp(status, "200", 3) == 0 ? "text/plain; version=0.0.4; charset=utf-8"
							: "text/plain; charset=utf-8",
			 length, (int)length, body);
	client->close_after = true;
	if (n < 0) {
		client_close(client);
		return;
	}
	(void)client_queue(client, text, (size_t)n);
}

/* The request head only: GET /metrics is the one thing served. */
static void
http_process(struct client *client)
{
	char *end = memmem(client->input, client->input_length, "\r\n\r\n", 4);
	if (!end) {
		if (client->input_length > SUPERVISOR_HTTP_MAX_HEAD) {
			static const char body[] = "request head too large\n";
			http_respond(client, "431 Request Header Fields Too Large", body,
				     sizeof(body) - 1);
		} else if (client->eof) {
			client_close(client);
		} else {
			client_update_events(client);
		}
		return;
	}
	*end = '\0';
	char method[8] = "", path[64] = "";
	if (sscanf(client->input, "%7s %63s HTTP/", method, path) != 2 || path[0] != '/') {
		static const char body[] = "bad request\n";
		http_respond(client, "400 Bad Request", body, sizeof(body) - 1);
		return;
	}
	client->input_length = 0; /* one request per connection; what follows is ignored */
	if (strcmp(method, "GET") != 0) {
		static const char body[] = "only GET\n";
		http_respond(client, "405 Method Not Allowed", body, sizeof(body) - 1);
		return;
	}
	if (strcmp(path, "/metrics") != 0 && strncmp(path, "/metrics?", 9) != 0) {
		static const char body[] = "not found: try /metrics\n";
		http_respond(client, "404 Not Found", body, sizeof(body) - 1);
		return;
	}
	struct protocol_request request = {.command = COMMAND_STATUS};
	json_t *error = forward(client, &request);
	if (error) {
		json_decref(error);
		static const char body[] = "the host does not answer\n";
		http_respond(client, "503 Service Unavailable", body, sizeof(body) - 1);
		return;
	}
	client->awaiting_prometheus = true;
	client_update_events(client);
}

/* Answers every complete request in the input, in order, until one must wait for the host. */
static void
client_process(struct client *client)
{
	if (client->http) {
		if (!client->awaiting && !client->close_after)
			http_process(client);
		return;
	}
	for (unsigned answered = 0; !client->awaiting && !client->close_after; answered++) {
		if (answered == SUPERVISOR_REQUESTS_PER_TURN) {
			/* Fairness: a client that pipelined thousands of requests gets the rest
			 * on the next turns of the loop, after the other clients' events. */
			(void)loop_timer_start(client->supervisor->loop, &client->resume_timer, 0);
			break;
		}
		ssize_t framed = protocol_frame(client->input, client->input_length);
		if (framed == PROTOCOL_FRAME_MORE)
			break;
		if (framed == PROTOCOL_FRAME_TOO_LARGE) {
			client->close_after = true;
			client_reply(client,
				     protocol_error("too_large", "request larger than 65536 bytes; "
								 "closing the connection"));
			return;
		}
		size_t length = (size_t)framed;
		struct protocol_request request;
		json_t *reply = NULL;
		bool metrics = false;
		if (protocol_parse(client->input, length, &request, &reply) == 0) {
			if (request.command == COMMAND_METRICS && request.prometheus) {
				/* Labels come from the host's status: ask for it first. */
				request.command = COMMAND_STATUS;
				reply = forward(client, &request);
				client->awaiting_prometheus = !reply;
			} else if (request.command == COMMAND_METRICS)
				metrics = true;
			else if (request.command == COMMAND_RESTART && request.signal)
				reply = signal_reply(client->supervisor, &request);
			else
				reply = forward(client, &request);
		}
		memmove(client->input, client->input + length + 1,
			client->input_length - length - 1);
		client->input_length -= length + 1;
		if (metrics && !client_reply_metrics(client))
			return;
		if (reply && !client_reply(client, reply))
			return;
	}
	if (!client->awaiting && client->eof && client->output_length == 0) {
		client_close(client);
		return;
	}
	client_update_events(client);
}

static void
on_client(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct client *client = data;
	(void)loop;
	if (events & EPOLLOUT && !client_flush(client))
		return;
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	if (client->draining) {
		char discard[4096];
		ssize_t n;
		while ((n = recv(fd, discard, sizeof(discard), MSG_DONTWAIT)) > 0)
			;
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			client_close(client);
		return;
	}
	while (!client->eof && client->input_length <= PROTOCOL_MAX_REQUEST) {
		ssize_t n = recv(fd, client->input + client->input_length,
				 PROTOCOL_MAX_REQUEST + 1 - client->input_length, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			client_close(client);
			return;
		}
		if (n == 0) {
			client->eof = true;
			break;
		}
		client->input_length += (size_t)n;
		(void)loop_timer_start(loop, &client->idle_timer, SUPERVISOR_IDLE_TIMEOUT);
	}
	client_process(client);
}

static void
on_resume(struct loop *loop, void *data)
{
	(void)loop;
	client_process(data);
}

static void
on_idle(struct loop *loop, void *data)
{
	struct client *client = data;
	(void)loop;
	if (client->awaiting) {
		/* The host is still working on it (a long rolling restart). */
		(void)loop_timer_start(loop, &client->idle_timer, SUPERVISOR_IDLE_TIMEOUT);
		return;
	}
	log_debug("client uid %u: idle, closing", (unsigned)client->uid);
	client_close(client);
}

static void
client_close(struct client *client)
{
	struct supervisor *supervisor = client->supervisor;
	for (struct client **p = &supervisor->clients; *p; p = &(*p)->next)
		if (*p == client) {
			*p = client->next;
			break;
		}
	supervisor->client_count--;
	loop_timer_stop(supervisor->loop, &client->idle_timer);
	loop_timer_stop(supervisor->loop, &client->resume_timer);
	if (client->watched)
		loop_remove(supervisor->loop, client->fd);
	close(client->fd);
	free(client->input);
	free(client->output);
	free(client);
	if (supervisor->accept_paused && !loop_timer_armed(&supervisor->accept_timer)) {
		supervisor->accept_paused = false;
		(void)loop_modify(supervisor->loop, SUPERVISOR_LISTEN_FD, EPOLLIN);
		if (supervisor->http)
			(void)loop_modify(supervisor->loop, SUPERVISOR_HTTP_FD, EPOLLIN);
	}
}

/* Whether pid is in group gid, from the Groups: line of /proc/PID/status (SO_PEERCRED carries
 * only the primary group). */
static bool
in_supplementary_group(pid_t pid, gid_t gid)
{
	char path[64], line[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *file = fopen(path, "re");
	if (!file)
		return false;
	bool found = false;
	while (!found && fgets(line, sizeof(line), file)) {
		if (strncmp(line, "Groups:", 7) != 0)
			continue;
		for (char *p = line + 7, *end;; p = end) {
			unsigned long value = strtoul(p, &end, 10);
			if (end == p)
				break;
			if ((gid_t)value == gid)
				found = true;
		}
		break;
	}
	fclose(file);
	return found;
}

/* The socket file's mode and group are the gate; this is the second lock: the host's user,
 * root, or a member of socket_group. */
static bool
peer_allowed(const struct supervisor *supervisor, int fd, uid_t *ret_uid)
{
	struct ucred credentials;
	socklen_t length = sizeof(credentials);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) < 0)
		return false;
	*ret_uid = credentials.uid;
	if (credentials.uid == 0 || credentials.uid == getuid())
		return true;
	if (supervisor->socket_gid == (gid_t)-1)
		return false;
	return credentials.gid == supervisor->socket_gid ||
	       in_supplementary_group(credentials.pid, supervisor->socket_gid);
}

/* Best effort: the one reply a refused client gets before the close. */
static void
refuse(int fd, const char *code, const char *message)
{
	char *text = NULL;
	json_t *reply = protocol_error(code, message);
	ssize_t length = reply ? protocol_encode(reply, &text) : -1;
	json_decref(reply);
	if (length > 0)
		(void)send(fd, text, (size_t)length, MSG_DONTWAIT | MSG_NOSIGNAL);
	free(text);
	close(fd);
}

static void
on_accept_timer(struct loop *loop, void *data)
{
	struct supervisor *supervisor = data;
	supervisor->accept_paused = false;
	(void)loop_modify(loop, SUPERVISOR_LISTEN_FD, EPOLLIN);
	if (supervisor->http)
		(void)loop_modify(loop, SUPERVISOR_HTTP_FD, EPOLLIN);
}

static void
on_accept(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct supervisor *supervisor = data;
	(void)events;
	for (;;) {
		int client_fd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (client_fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* Out of fds: stop accepting for a while rather than spin; the
				 * kernel keeps queueing meanwhile. */
				log_warn("accept: %s; pausing for %.0f s", strerror(errno),
					 SUPERVISOR_ACCEPT_PAUSE);
				supervisor->accept_paused = true;
				(void)loop_modify(loop, fd, 0);
				(void)loop_timer_start(loop, &supervisor->accept_timer,
						       SUPERVISOR_ACCEPT_PAUSE);
			} else if (errno != EAGAIN) {
				log_errno(LOG_WARN, -errno, "accept");
			}
			return;
		}
		uid_t uid = (uid_t)-1;
		bool http = fd == SUPERVISOR_HTTP_FD;
		/* TCP has no peer credentials: the HTTP socket's bind address is its gate. */
		if (!http && !peer_allowed(supervisor, client_fd, &uid)) {
			log_warn("client uid %d refused: not the host's user, root or in "
				 "socket_group",
				 (int)uid);
			refuse(client_fd, "permission_denied",
			       "not allowed: connect as the host's user, root or a member of its "
			       "socket_group");
			continue;
		}
		if (supervisor->client_count >= PROTOCOL_MAX_CLIENTS) {
			refuse(client_fd, "too_many_clients",
			       "too many clients connected (64); try again later");
			continue;
		}
		struct client *client = calloc(1, sizeof(*client));
		char *input = malloc(PROTOCOL_MAX_REQUEST + 1);
		if (!client || !input ||
		    loop_add(loop, client_fd, EPOLLIN, on_client, client) < 0) {
			free(client);
			free(input);
			refuse(client_fd, "internal", "out of memory");
			continue;
		}
		*client = (struct client){.supervisor = supervisor,
					  .next = supervisor->clients,
					  .fd = client_fd,
					  .uid = uid,
					  .watched = true,
					  .http = http,
					  .input = input};
		loop_timer_init(&client->resume_timer, on_resume, client);
		loop_timer_init(&client->idle_timer, on_idle, client);
		(void)loop_timer_start(loop, &client->idle_timer, SUPERVISOR_IDLE_TIMEOUT);
		supervisor->clients = client;
		supervisor->client_count++;
	}
}

static struct client *
find_awaiting(struct supervisor *supervisor, uint64_t id)
{
	for (struct client *client = supervisor->clients; client; client = client->next)
		if (client->awaiting == id)
			return client;
	return NULL;
}

static void
on_channel(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct supervisor *supervisor = data;
	(void)events;
	for (;;) {
		/* One datagram per reply, as large as the host made it (a status of thousands of
		 * workers): its size first, then a buffer that fits. */
		ssize_t size = recv(fd, NULL, 0, MSG_DONTWAIT | MSG_PEEK | MSG_TRUNC);
		if (size < 0 && errno == EINTR)
			continue;
		if (size < 0 && errno == EAGAIN)
			return;
		char *buffer = size > 0 ? malloc((size_t)size + 1) : NULL;
		if (size > 0 && !buffer) {
			(void)recv(fd, NULL, 0, MSG_DONTWAIT | MSG_TRUNC); /* drop it */
			log_error("channel: no memory for a %zd byte reply", size);
			continue;
		}
		ssize_t n = size > 0 ? recv(fd, buffer, (size_t)size, MSG_DONTWAIT) : size;
		if (n <= 0) {
			free(buffer);
			log_info("the host closed the channel; exiting");
			loop_quit(loop);
			return;
		}
		/* "<id> <reply JSON>" (see control.c's send_reply). */
		buffer[n] = '\0';
		char *end;
		unsigned long long id = strtoull(buffer, &end, 10);
		struct client *client =
		    *end == ' ' && id > 0 ? find_awaiting(supervisor, (uint64_t)id) : NULL;
		if (!client) {
			free(buffer); /* for a client that has left */
			continue;
		}
		client->awaiting = 0;
		char *text = end + 1;
		size_t length = (size_t)(buffer + n - text);
		if (!client->http && !client->awaiting_prometheus) {
			/* Passed on as the host wrote it, with the frame's NUL. */
			memmove(buffer, text, length + 1);
			if (client_queue(client, buffer, length + 1))
				client_process(client);
			continue;
		}
		json_t *reply = json_loadb(text, length, JSON_DECODE_ANY, NULL);
		free(buffer);
		client->awaiting_prometheus = false;
		if (client->http) {
			char *exposition = NULL;
			ssize_t size = !json_is_object(reply) || json_object_get(reply, "error")
					   ? -EIO
					   : prometheus_text(supervisor, reply, &exposition);
			if (size >= 0)
				http_respond(client, "200 OK", exposition, (size_t)size);
			else
				http_respond(client, "500 Internal Server Error",
					     "cannot capture metrics\n", 23);
			free(exposition);
		} else if (client_reply(client, reply ? prometheus_reply(supervisor, reply)
						      : protocol_error("internal", "bad reply"))) {
			client_process(client);
		}
		json_decref(reply);
	}
}

static void
on_signal(struct loop *loop, int signal, void *data)
{
	(void)signal; /* TERM or INT */
	(void)data;
	loop_quit(loop);
}

int
supervisor_main(pid_t host_pid, gid_t socket_gid, bool http)
{
	struct supervisor supervisor = {
	    .host_pid = host_pid, .socket_gid = socket_gid, .http = http};
	/* Dies with the host; and if the host is already gone, there is nobody to serve. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != host_pid) {
		fprintf(stderr, "aerie supervisor-process: the host %d is not its parent\n",
			(int)host_pid);
		return 1;
	}
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		return 1;
	/* Accepting runs until EAGAIN: the listening sockets must not block (the control socket
	 * is made so by the host; the HTTP one is bound like a service's, blocking). */
	if (http && fcntl(SUPERVISOR_HTTP_FD, F_SETFL,
			  fcntl(SUPERVISOR_HTTP_FD, F_GETFL) | O_NONBLOCK) < 0) {
		log_errno(LOG_ERROR, -errno, "supervisor: the Prometheus socket");
		return 1;
	}
	int r = loop_new(&supervisor.loop);
	if (r < 0)
		return 1;
	loop_timer_init(&supervisor.accept_timer, on_accept_timer, &supervisor);
	static const int signals[] = {SIGTERM, SIGINT};
	if (loop_signals(supervisor.loop, signals, 2, on_signal, NULL) < 0 ||
	    loop_add(supervisor.loop, SUPERVISOR_LISTEN_FD, EPOLLIN, on_accept, &supervisor) < 0 ||
	    loop_add(supervisor.loop, SUPERVISOR_CHANNEL_FD, EPOLLIN, on_channel, &supervisor) <
		0 ||
	    (http &&
	     loop_add(supervisor.loop, SUPERVISOR_HTTP_FD, EPOLLIN, on_accept, &supervisor) < 0)) {
		log_errno(LOG_ERROR, -errno, "supervisor: cannot watch its sockets");
		r = -1;
	} else {
		r = loop_run(supervisor.loop);
	}
	for (struct client *client = supervisor.clients, *next; client; client = next) {
		next = client->next;
		client_close(client);
	}
	loop_timer_stop(supervisor.loop, &supervisor.accept_timer);
	loop_free(supervisor.loop);
	cpu_interval_free(&supervisor.cpu);
	return r < 0 ? 1 : 0;
}
