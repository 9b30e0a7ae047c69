/* http: Prometheus over HTTP: one GET /metrics per connection on the socket of [host]
 * prometheus, answered from the host's status and /proc, then closed. It sits above
 * requests.c (which asks the host and makes the exposition text) and client.c. Its clients
 * are a pool of their own (SUPERVISOR_HTTP_MAX_CLIENTS), with a short deadline
 * (SUPERVISOR_HTTP_TIMEOUT) for the whole request head. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/limits.h"
#include "supervisor/private.h"

/* An HTTP response's text, in *ret_text; its length, or -1 without memory. */
static int
http_format(const char *status, const char *body, size_t length, char **ret_text)
{
	return asprintf(ret_text,
			"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			"Connection: close\r\n\r\n%.*s",
			status,
			strncmp(status, "200", 3) == 0 ? "text/plain; version=0.0.4; charset=utf-8"
						       : "text/plain; charset=utf-8",
			length, (int)length, body);
}

/* One HTTP response, then the connection closes (HTTP/1.0 style: a scrape per connection). */
static void
http_respond(struct client *client, const char *status, const char *body, size_t length)
{
	char *text;
	int n = http_format(status, body, length, &text);
	client->close_after = true;
	if (n < 0) {
		client_close(client);
		return;
	}
	(void)client_queue(client, text, (size_t)n);
	free(text);
}

static void answer(struct client *client, const json_t *status);

/* The request head only: GET /metrics is the one thing served. */
static void
process(struct client *client)
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
	if (requests_forward(client, COMMAND_STATUS, NULL, NULL, answer) < 0) {
		static const char body[] = "the host does not answer\n";
		http_respond(client, "503 Service Unavailable", body, sizeof(body) - 1);
		return;
	}
	client_update_events(client);
}

/* The host's status has come (NULL: it could not be read): the response, then the close. */
static void
answer(struct client *client, const json_t *status)
{
	char *exposition = NULL;
	ssize_t size = !json_is_object(status) || json_object_get(status, "error")
			   ? -EIO
			   : requests_exposition(client->supervisor, status, &exposition);
	if (size >= 0) {
		http_respond(client, "200 OK", exposition, (size_t)size);
	} else {
		static const char body[] = "cannot capture metrics\n";
		http_respond(client, "500 Internal Server Error", body, sizeof(body) - 1);
	}
	free(exposition);
}

/* Input has come: the head is read while no answer is on its way or sent. */
static void
input(struct client *client)
{
	if (!client->awaiting && !client->close_after)
		process(client);
}

int
http_client_new(struct supervisor *supervisor, int fd)
{
	/* A response always closes the connection after it (close_after), so only the host's
	 * answer is ever pending. */
	static const struct client_ops ops = {
	    .input = input,
	    .waiting = requests_waiting,
	    .pending = requests_waiting,
	    .pool = CLIENT_POOL_HTTP,
	    .idle_timeout = SUPERVISOR_HTTP_TIMEOUT,
	    .request_timeout = SUPERVISOR_HTTP_TIMEOUT,
	    .request_at_connect = true,
	};
	/* TCP has no peer credentials: (uid_t)-1 stands for the uid in the log. */
	return client_new(supervisor, fd, (uid_t)-1, &ops);
}

void
http_refuse(int fd, const char *body)
{
	char *text;
	int n = http_format("503 Service Unavailable", body, strlen(body), &text);
	if (n > 0) {
		(void)send(fd, text, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
		free(text);
	}
	close(fd);
}
