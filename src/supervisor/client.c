/* client: one connection to the supervisor process, the bottom layer: its bounded input and
 * output buffers, reading, writing, closing and its deadlines. Everything here is bounded per
 * client: input (one request of PROTOCOL_MAX_REQUEST), output (PROTOCOL_MAX_OUTPUT, then the
 * client is dropped) and time, by two deadlines its pool's ops set: one without input
 * (idle_timeout), one from a request's first byte to its end (request_timeout), which bytes
 * that trickle in do not renew. What the input means is for the layer above, through the
 * client's ops (requests.c, http.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/limits.h"
#include "lib/log.h"
#include "supervisor/private.h"

static void on_client(struct loop *loop, int fd, uint32_t events, void *data);

void
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

/* Sends what the socket takes of data now; -1 if the client is gone (and freed). */
static ssize_t
send_some(struct client *client, const char *data, size_t length)
{
	size_t sent = 0;
	while (sent < length) {
		ssize_t n =
		    send(client->fd, data + sent, length - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			/* EPIPE, ECONNRESET: it left without reading (Falcon's restart client
			 * does exactly that). */
			log_debug("client: %s", strerror(errno));
			client_close(client);
			return -1;
		}
		sent += (size_t)n;
	}
	return (ssize_t)sent;
}

/* Writes what it can; false if the client is gone (and freed). */
static bool
client_flush(struct client *client)
{
	ssize_t sent = send_some(client, client->output + client->output_sent,
				 client->output_length - client->output_sent);
	if (sent < 0)
		return false;
	client->output_sent += (size_t)sent;
	if (client->output_sent == client->output_length) {
		client->output_sent = client->output_length = 0;
		if (client->ops->drained)
			client->ops->drained(client);
		if (client->close_after && !client->eof) {
			/* Closing with unread input would reset the connection and could lose
			 * the error reply: shut our side and read to the end instead. */
			client->draining = true;
			(void)shutdown(client->fd, SHUT_WR);
			(void)loop_modify(client->supervisor->loop, client->fd, EPOLLIN);
			return true;
		}
		if (client->close_after || (client->eof && !client->ops->pending(client))) {
			client_close(client);
			return false;
		}
	}
	client_update_events(client);
	return true;
}

bool
client_queue(struct client *client, const char *text, size_t length)
{
	size_t pending = client->output_length - client->output_sent;
	/* Nothing queued before it: the reply goes to the socket from where it was written, and
	 * only what the socket does not take now is copied (a metrics reply of 200 processes,
	 * 130 KB, usually fits whole). */
	if (pending == 0) {
		ssize_t sent = send_some(client, text, length);
		if (sent < 0)
			return false;
		text += sent;
		length -= (size_t)sent;
		if (length == 0)
			return client_flush(client); /* what follows a reply sent whole */
	}
	/* The bound is on what the client leaves unread, not on one reply: a reply on its own is
	 * queued however large (a metrics tree of huge command lines), and a client that lets
	 * replies pile up unread is dropped. */
	if (pending > 0 && pending + length > PROTOCOL_MAX_OUTPUT) {
		log_warn("client uid %u: dropped, %zu reply bytes unread", (unsigned)client->uid,
			 pending);
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
			client_close(client);
			return false;
		}
		client->output = output;
		client->output_capacity = capacity;
	}
	memcpy(client->output + client->output_length, text, length);
	client->output_length += length;
	return client_flush(client);
}

void
client_continue(struct client *client)
{
	(void)loop_timer_start(client->supervisor->loop, &client->resume_timer, 0);
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
		/* Empty input: the previous requests are answered, these bytes start the next
		 * one, and its time. (Left over after a request, they belong to one whose time
		 * is already running.) */
		if (client->input_length == 0 && !client->ops->request_at_connect)
			(void)loop_timer_start(loop, &client->request_timer,
					       client->ops->request_timeout);
		client->input_length += (size_t)n;
		(void)loop_timer_start(loop, &client->idle_timer, client->ops->idle_timeout);
	}
	client->ops->input(client);
}

static void
on_resume(struct loop *loop, void *data)
{
	struct client *client = data;
	(void)loop;
	client->ops->input(client);
}

static void
on_idle(struct loop *loop, void *data)
{
	struct client *client = data;
	(void)loop;
	if (client->ops->waiting(client)) {
		/* The host is still working on it (a long rolling restart). */
		(void)loop_timer_start(loop, &client->idle_timer, client->ops->idle_timeout);
		return;
	}
	log_debug("client uid %u: idle, closing", (unsigned)client->uid);
	client_close(client);
}

/* A request's time is up. Whatever is still in the input is then a request that does not
 * end (a slow loris): input that comes byte by byte would renew the idle deadline forever. */
static void
on_request_timeout(struct loop *loop, void *data)
{
	struct client *client = data;
	if (client->ops->pending(client)) {
		/* A complete request waits its turn, or the host is working on one. */
		(void)loop_timer_start(loop, &client->request_timer, client->ops->request_timeout);
		return;
	}
	if (client->input_length == 0)
		return; /* answered: the next request's first byte starts its time */
	log_debug("client uid %u: request not complete within %.0f s, closing",
		  (unsigned)client->uid, client->ops->request_timeout);
	client_close(client);
}

int
client_new(struct supervisor *supervisor, int fd, uid_t uid, const struct client_ops *ops)
{
	struct client *client = calloc(1, sizeof(*client));
	char *input = malloc(PROTOCOL_MAX_REQUEST + 1);
	int r =
	    client && input ? loop_add(supervisor->loop, fd, EPOLLIN, on_client, client) : -ENOMEM;
	if (r < 0) {
		free(client);
		free(input);
		return r;
	}
	*client = (struct client){.supervisor = supervisor,
				  .ops = ops,
				  .next = supervisor->clients,
				  .fd = fd,
				  .uid = uid,
				  .watched = true,
				  .input = input};
	loop_timer_init(&client->resume_timer, on_resume, client);
	loop_timer_init(&client->idle_timer, on_idle, client);
	loop_timer_init(&client->request_timer, on_request_timeout, client);
	(void)loop_timer_start(supervisor->loop, &client->idle_timer, ops->idle_timeout);
	if (ops->request_at_connect)
		(void)loop_timer_start(supervisor->loop, &client->request_timer,
				       ops->request_timeout);
	supervisor->clients = client;
	supervisor->pool_count[ops->pool]++;
	return 0;
}

void
client_close(struct client *client)
{
	struct supervisor *supervisor = client->supervisor;
	for (struct client **p = &supervisor->clients; *p; p = &(*p)->next)
		if (*p == client) {
			*p = client->next;
			break;
		}
	supervisor->pool_count[client->ops->pool]--;
	if (client->ops->closed)
		client->ops->closed(client);
	loop_timer_stop(supervisor->loop, &client->idle_timer);
	loop_timer_stop(supervisor->loop, &client->request_timer);
	loop_timer_stop(supervisor->loop, &client->resume_timer);
	if (client->watched)
		loop_remove(supervisor->loop, client->fd);
	close(client->fd);
	free(client->input);
	free(client->output);
	free(client);
	supervisor->client_gone(supervisor);
}
