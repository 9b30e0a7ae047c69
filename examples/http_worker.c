/* http_worker: a tiny HTTP/1.1 server for aerie's socket activation, and the example of a worker
 * that drains on SIGTERM without dropping a request. One thread, one epoll. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_LISTEN 16	      /* listening sockets, inherited or from --listen */
#define HEAD_MAX 8192	      /* a request head must fit in the input buffer, else 431 */
#define BODY_MAX (1L << 20)   /* request bodies are read and discarded; larger ones get 413 */
#define OUT_MAX 4096	      /* output buffer; pipelined requests wait for room in it */
#define RESPONSE_MAX 512      /* one response always fits in this much */
#define SLEEP_MAX_MS 60000L   /* the largest N of /sleep?ms=N */
#define DRAIN_IDLE_MS 1000L   /* default --drain-idle-ms */
#define LINGER_MS 2000	      /* after our FIN, wait this long for the client's... */
#define LINGER_MAX (64 << 10) /* ...and read at most this much of what it still sends */
#define ACCEPT_PAUSE_MS 1000  /* out of fds or memory: stop accepting for this long */
#define ACCEPT_BATCH 4	      /* accepted per wake-up: a burst spreads over the workers */

/* What epoll reports: every event's data.ptr points at one of these. */
struct source {
	enum { SOURCE_LISTENER, SOURCE_SIGNAL, SOURCE_CONN } kind;
	int fd;
};

struct request {
	char *target;	/* in the input buffer: valid until the next read */
	bool head_only; /* HEAD: the headers without the body */
	bool http10;
	bool keep;   /* the client may send another request on this connection */
	size_t body; /* Content-Length: bytes to skip before the next request */
	int error;   /* a status for a well-framed request we do not serve (405) */
};

struct conn {
	struct source src; /* first: epoll's pointer to it is a pointer to the conn */
	LIST_ENTRY(conn) all;
	LIST_ENTRY(conn) timed; /* while deadline != 0 */
	uint64_t deadline;	/* ms: the end of a /sleep, or of lingering */
	uint32_t events;	/* what epoll watches for now */
	bool sleeping;		/* the response to `pending` is due at deadline */
	bool close_after;	/* close once the output is written */
	bool peer_eof;		/* the client will send no more */
	bool lingering;		/* shut down for writing: reading to EOF before close */
	struct request pending;
	size_t discard; /* body bytes still to skip */
	size_t lingered;
	size_t in_start, in_len, out_start, out_len;
	char in[HEAD_MAX];
	char out[OUT_MAX];
};

static LIST_HEAD(, conn) conns = LIST_HEAD_INITIALIZER(conns);
static LIST_HEAD(, conn) timed_conns = LIST_HEAD_INITIALIZER(timed_conns);
static size_t n_conns;
static struct source listeners[MAX_LISTEN], signals = {SOURCE_SIGNAL, -1};
static int n_listeners, epoll_fd = -1, pid;
static bool draining, grace_over, accept_paused;
static uint64_t now, drain_deadline, accept_resume; /* ms on the monotonic clock */
static unsigned long long served;
static long drain_idle_ms = DRAIN_IDLE_MS;
static const char *worker = "-";
static char hello[256];

static uint64_t
clock_ms(void)
{
	struct timespec t;

	(void)clock_gettime(CLOCK_MONOTONIC, &t); /* cannot fail for this clock */
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static int
watch(int op, struct source *s, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = s};

	return epoll_ctl(epoll_fd, op, s->fd, &ev) < 0 ? -errno : 0;
}

/* Reads the decimal number in s[0..len): -1 if it is not one, max + 1 if it is larger than max. */
static long
parse_decimal(const char *s, size_t len, long max)
{
	long value = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (value <= max)
			value = value * 10 + (s[i] - '0');
	}
	return value > max ? max + 1 : value;
}

/* The length of the request head at p, up to and with its blank line, or 0 while it is not all
 * there. Blank lines before a request line belong to it (RFC 9112 2.2). */
static size_t
head_length(const char *p, size_t n)
{
	size_t pos = 0;
	bool seen_line = false;

	while (pos < n) {
		const char *nl = memchr(p + pos, '\n', n - pos);
		size_t len;

		if (!nl)
			return 0;
		len = (size_t)(nl - (p + pos));
		pos += len + 1;
		if (len == 0 || (len == 1 && nl[-1] == '\r')) {
			if (seen_line)
				return pos;
		} else {
			seen_line = true;
		}
	}
	return 0;
}

/* Whether the comma-separated list holds token, ignoring case ("Connection: Keep-Alive, TE"). */
static bool
has_token(const char *list, const char *token)
{
	size_t n = strlen(token);

	while (*list) {
		size_t len;

		list += strspn(list, " \t,");
		len = strcspn(list, ",");
		while (len > 0 && (list[len - 1] == ' ' || list[len - 1] == '\t'))
			len--;
		if (len == n && strncasecmp(list, token, n) == 0)
			return true;
		list += strcspn(list, ",");
	}
	return false;
}

static int
parse_request_line(char *line, struct request *r)
{
	char *target = strchr(line, ' '), *version;

	if (!target)
		return -1;
	*target++ = '\0';
	version = strchr(target, ' ');
	if (!version || *target != '/')
		return -1;
	*version++ = '\0';
	if (strncmp(version, "HTTP/1.", 7) != 0 || (version[7] != '0' && version[7] != '1') ||
	    version[8])
		return -1;
	r->target = target;
	r->http10 = version[7] == '0';
	r->head_only = strcmp(line, "HEAD") == 0;
	if (!r->head_only && strcmp(line, "GET") != 0)
		r->error = 405;
	return 0;
}

/* Parses the complete head p[0..n), NUL-terminating its lines in place. Returns 0, or the status
 * of an error after which the next request's start is unknown: the connection closes. */
static int
parse_head(char *p, size_t n, struct request *ret)
{
	struct request r = {0};
	bool close = false, keep_alive = false;
	char *line, *next;

	for (line = p; line < p + n; line = next) {
		char *nl = memchr(line, '\n', (size_t)(p + n - line)), *colon, *value, *tail;

		next = nl + 1;
		*nl = '\0';
		if (nl > line && nl[-1] == '\r')
			nl[-1] = '\0';
		if (!r.target) {
			if (*line && parse_request_line(line, &r) < 0)
				return 400;
			continue;
		}
		if (!*line)
			break;
		colon = strchr(line, ':');
		if (!colon || colon == line)
			return 400;
		*colon = '\0';
		value = colon + 1 + strspn(colon + 1, " \t");
		tail = value + strlen(value);
		while (tail > value && (tail[-1] == ' ' || tail[-1] == '\t'))
			*--tail = '\0';
		if (strcasecmp(line, "Content-Length") == 0) {
			long length = parse_decimal(value, strlen(value), BODY_MAX);

			if (length < 0)
				return 400;
			if (length > BODY_MAX)
				return 413;
			r.body = (size_t)length;
		} else if (strcasecmp(line, "Transfer-Encoding") == 0) {
			return 501; /* chunked request bodies: not worth it in a GET-only server */
		} else if (strcasecmp(line, "Connection") == 0) {
			close |= has_token(value, "close");
			keep_alive |= has_token(value, "keep-alive");
		}
	}
	r.keep = !close && (!r.http10 || keep_alive);
	*ret = r;
	return 0;
}

/* The N of "ms=N" in a query string, or -1 if it is missing or out of range. */
static long
query_ms(const char *query)
{
	while (query && *query) {
		size_t len = strcspn(query, "&");

		if (strncmp(query, "ms=", 3) == 0) {
			long ms = parse_decimal(query + 3, len - 3, SLEEP_MAX_MS);

			return ms > SLEEP_MAX_MS ? -1 : ms;
		}
		query += len + (query[len] == '&');
	}
	return -1;
}

static const char *
reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 413:
		return "Content Too Large";
	case 431:
		return "Request Header Fields Too Large";
	default:
		return "Not Implemented";
	}
}

static void
conn_set_deadline(struct conn *c, uint64_t deadline)
{
	if (c->deadline)
		LIST_REMOVE(c, timed);
	c->deadline = deadline;
	if (deadline)
		LIST_INSERT_HEAD(&timed_conns, c, timed);
}

/* Whether another complete request follows the one being answered. */
static bool
next_request_buffered(const struct conn *c)
{
	size_t avail = c->in_len - c->in_start;

	return c->discard <= avail &&
	       head_length(c->in + c->in_start + c->discard, avail - c->discard) > 0;
}

/* Appends a response to the output. While draining (or after the client's EOF) it is the last
 * one, unless another complete request is already buffered: that one is answered too rather
 * than dropped, and the last response says "Connection: close". */
static void
respond(struct conn *c, int status, const struct request *req)
{
	char error_body[64];
	const char *body = hello;
	bool keep = req->keep && !((draining || c->peer_eof) && !next_request_buffered(c));
	int n;

	if (status != 200) {
		snprintf(error_body, sizeof(error_body), "%d %s\n", status, reason(status));
		body = error_body;
	}
	n = snprintf(c->out + c->out_len, OUT_MAX - c->out_len,
		     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
		     "X-Worker-Pid: %d\r\n%s%s\r\n%s",
		     status, reason(status), strlen(body), pid,
		     status == 405 ? "Allow: GET, HEAD\r\n" : "",
		     !keep	   ? "Connection: close\r\n"
		     : req->http10 ? "Connection: keep-alive\r\n"
				   : "",
		     req->head_only ? "" : body);
	/* Cannot be cut short: conn_process leaves RESPONSE_MAX bytes of room, hello is small. */
	c->out_len += (size_t)n;
	c->close_after = !keep;
	served++;
}

static void
conn_route(struct conn *c, struct request *req)
{
	char *query = strchr(req->target, '?');
	long ms;

	if (query)
		*query++ = '\0';
	if (req->error) {
		respond(c, req->error, req);
	} else if (strcmp(req->target, "/") == 0) {
		respond(c, 200, req);
	} else if (strcmp(req->target, "/sleep") == 0) {
		ms = query_ms(query);
		if (ms < 0) {
			respond(c, 400, req);
			return;
		}
		/* Later requests wait in the input buffer, so that responses stay in order. */
		c->sleeping = true;
		c->pending = *req;
		conn_set_deadline(c, now + (uint64_t)ms);
	} else {
		respond(c, 404, req);
	}
}

/* Answers the buffered requests in order until one has to wait (a /sleep, a full output buffer,
 * a partial request) or the connection is to be closed. */
static void
conn_process(struct conn *c)
{
	while (!c->sleeping && !c->close_after && OUT_MAX - c->out_len >= RESPONSE_MAX) {
		size_t avail = c->in_len - c->in_start, head;
		size_t skip = c->discard < avail ? c->discard : avail;
		struct request req;
		int status;

		c->in_start += skip;
		c->discard -= skip;
		avail -= skip;
		head = head_length(c->in + c->in_start, avail);
		if (head == 0) {
			/* Move the partial head to the front to make room for its rest. */
			memmove(c->in, c->in + c->in_start, avail);
			c->in_start = 0;
			c->in_len = avail;
			if (avail == HEAD_MAX)
				respond(c, 431, &(struct request){0});
			return;
		}
		status = parse_head(c->in + c->in_start, head, &req);
		c->in_start += head;
		if (status) {
			respond(c, status, &(struct request){0});
			return;
		}
		c->discard = req.body;
		conn_route(c, &req);
	}
}

static void
conn_free(struct conn *c)
{
	conn_set_deadline(c, 0);
	LIST_REMOVE(c, all);
	n_conns--;
	close(c->src.fd); /* also takes it out of epoll: nobody else has this socket */
	free(c);
}

/* Writes what it can of the output. Returns 0, or -errno when the connection is broken. */
static int
conn_flush(struct conn *c)
{
	while (c->out_start < c->out_len) {
		ssize_t n =
		    send(c->src.fd, c->out + c->out_start, c->out_len - c->out_start, MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			c->out_start += (size_t)n;
	}
	memmove(c->out, c->out + c->out_start, c->out_len - c->out_start);
	c->out_len -= c->out_start;
	c->out_start = 0;
	return 0;
}

/* Tells epoll what c waits for. Frees c if it cannot. */
static void
conn_watch(struct conn *c)
{
	uint32_t want = 0;

	if (c->lingering || (!c->peer_eof && !c->close_after && c->in_len < HEAD_MAX))
		want |= EPOLLIN;
	if (c->out_len > 0)
		want |= EPOLLOUT;
	if (want != c->events) {
		if (watch(EPOLL_CTL_MOD, &c->src, want) < 0) {
			conn_free(c);
			return;
		}
		c->events = want;
	}
}

/* Everything is answered and written. Closing now could make the kernel answer unread input
 * with a reset, which may destroy our last response on its way: so send our FIN, and read and
 * drop what still comes until the client's FIN (or LINGER_MS, or LINGER_MAX bytes). */
static void
conn_close(struct conn *c)
{
	if (c->peer_eof || shutdown(c->src.fd, SHUT_WR) < 0) {
		conn_free(c);
		return;
	}
	c->lingering = true;
	conn_set_deadline(c, now + LINGER_MS);
	conn_watch(c);
}

static void
conn_linger(struct conn *c)
{
	for (;;) {
		ssize_t n = read(c->src.fd, c->in, sizeof(c->in));

		if (n > 0 && (c->lingered += (size_t)n) < LINGER_MAX)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		conn_free(c); /* EOF, an error, or enough */
		return;
	}
}

/* Moves c on as far as it goes without waiting: answers, writes, closes. */
static void
conn_update(struct conn *c)
{
	conn_process(c);
	if (conn_flush(c) < 0) {
		conn_free(c); /* EPIPE, ECONNRESET: this connection only */
		return;
	}
	/* With nothing left to write or wait for, c waits for a (rest of a) request. */
	if (c->out_len == 0 && !c->sleeping &&
	    (c->close_after || c->peer_eof || (draining && grace_over))) {
		conn_close(c);
		return;
	}
	conn_watch(c);
}

static void
conn_event(struct conn *c, uint32_t events)
{
	ssize_t n;

	if (c->lingering) {
		conn_linger(c);
		return;
	}
	/* HUP without our SHUT_WR, or ERR: reset or gone; nothing we write can arrive. */
	if (events & (EPOLLERR | EPOLLHUP)) {
		conn_free(c);
		return;
	}
	if ((events & EPOLLIN) && !c->peer_eof && c->in_len < HEAD_MAX) {
		n = read(c->src.fd, c->in + c->in_len, HEAD_MAX - c->in_len);
		if (n > 0) {
			c->in_len += (size_t)n;
		} else if (n == 0) {
			c->peer_eof = true;
		} else if (errno != EAGAIN && errno != EINTR) {
			conn_free(c);
			return;
		}
	}
	conn_update(c);
}

static void
conn_new(int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (!c) {
		close(fd);
		return;
	}
	c->src = (struct source){SOURCE_CONN, fd};
	c->events = EPOLLIN;
	if (watch(EPOLL_CTL_ADD, &c->src, c->events) < 0) {
		free(c);
		close(fd);
		return;
	}
	/* Each response goes out in one send: Nagle would only delay pipelined ones. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	LIST_INSERT_HEAD(&conns, c, all);
	n_conns++;
}

/* An fd leaves an epoll set only when every fd for its open file description is closed, and the
 * host holds one for each listening socket: so take them out explicitly. */
static int
listeners_watch(bool on)
{
	for (int i = 0; i < n_listeners; i++) {
		int r = watch(on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, &listeners[i],
			      EPOLLIN | EPOLLEXCLUSIVE); /* one worker woken per connection */

		if (r < 0 && on)
			return r;
	}
	return 0;
}

static void
accept_some(struct source *l)
{
	for (int i = 0; i < ACCEPT_BATCH && !draining && !accept_paused; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			conn_new(fd);
		} else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			   errno == ENOMEM) {
			/* Level-triggered, the socket stays readable: pause rather than spin. */
			(void)listeners_watch(false);
			accept_paused = true;
			accept_resume = now + ACCEPT_PAUSE_MS;
		} else if (errno != EINTR && errno != ECONNABORTED) {
			return; /* EAGAIN: another worker took it */
		}
	}
}

/* sd_notify by hand, as examples/worker.c does: one datagram to the address in NOTIFY_SOCKET. */
static void
notify(const char *message)
{
	const char *address = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t length = address ? strlen(address) : 0;
	int fd;

	if (length == 0)
		return;
	if ((address[0] != '/' && address[0] != '@') || length >= sizeof(sa.sun_path)) {
		fprintf(stderr, "http_worker: NOTIFY_SOCKET \"%s\": not a socket path\n", address);
		return;
	}
	memcpy(sa.sun_path, address, length);
	if (address[0] == '@')
		sa.sun_path[0] = '\0'; /* the abstract namespace: no NUL at the end either */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, message, strlen(message), MSG_NOSIGNAL, (struct sockaddr *)&sa,
			     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + length)) < 0)
		fprintf(stderr, "http_worker: sd_notify %.*s: %s\n", (int)strcspn(message, "\n"),
			message, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* SIGTERM or SIGINT: stop accepting at once and answer everything already received. */
static void
drain_start(void)
{
	draining = true;
	notify("STOPPING=1");
	/* The host keeps its copy of each socket: new connections queue there for the next
	 * generation instead of being refused. */
	(void)listeners_watch(false);
	for (int i = 0; i < n_listeners; i++)
		close(listeners[i].fd);
	n_listeners = 0;
	printf("http_worker %s draining %zu connections\n", worker, n_conns);
	/* An idle keep-alive client may have a request on its way: give it a moment. */
	drain_deadline = now + (uint64_t)drain_idle_ms;
}

static void
run_timers(void)
{
	struct conn *c, *next;

	/* Unsorted, as in redis's ae.c: O(n) in the connections that have a deadline. */
	for (c = LIST_FIRST(&timed_conns); c; c = next) {
		next = LIST_NEXT(c, timed);
		if (c->deadline > now)
			continue;
		conn_set_deadline(c, 0);
		if (c->lingering) {
			conn_free(c);
		} else {
			c->sleeping = false;
			respond(c, 200, &c->pending);
			conn_update(c);
		}
	}
	if (draining && !grace_over && drain_deadline <= now) {
		grace_over = true;
		for (c = LIST_FIRST(&conns); c; c = next) {
			next = LIST_NEXT(c, all);
			if (!c->lingering)
				conn_update(c); /* closes those still without a complete request */
		}
	}
	if (accept_paused && !draining && accept_resume <= now)
		accept_paused = listeners_watch(true) < 0;
}

static int
next_timeout(void)
{
	uint64_t first = UINT64_MAX;
	struct conn *c;

	for (c = LIST_FIRST(&timed_conns); c; c = LIST_NEXT(c, timed))
		if (c->deadline < first)
			first = c->deadline;
	if (draining && !grace_over && drain_deadline < first)
		first = drain_deadline;
	if (accept_paused && !draining && accept_resume < first)
		first = accept_resume;
	if (first == UINT64_MAX)
		return -1;
	return first <= now ? 0 : first - now > INT_MAX ? INT_MAX : (int)(first - now);
}

/* Binds "tcp:HOST:PORT" (HOST may be empty or "*" for any, or an [IPv6] address). */
static int
listen_tcp(const char *spec)
{
	struct addrinfo hints = {.ai_flags = AI_PASSIVE, .ai_socktype = SOCK_STREAM}, *ai, *list;
	const char *port = strrchr(spec, ':');
	char host[256];
	size_t len;
	int fd = -1, one = 1, r;

	if (strncmp(spec, "tcp:", 4) != 0 || port < spec + 4 || port - spec - 4 >= 256) {
		fprintf(stderr, "http_worker: --listen \"%s\": want tcp:HOST:PORT\n", spec);
		return -1;
	}
	len = (size_t)(port - spec - 4);
	memcpy(host, spec + 4, len);
	host[len] = '\0';
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		memmove(host, host + 1, len - 2);
		host[len - 2] = '\0';
	}
	r = getaddrinfo(*host && strcmp(host, "*") ? host : NULL, port + 1, &hints, &list);
	if (r != 0) {
		fprintf(stderr, "http_worker: --listen %s: %s\n", spec, gai_strerror(r));
		return -1;
	}
	for (ai = list; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd >= 0 &&
		    (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		     bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0)) {
			r = errno;
			close(fd);
			fd = -1;
			errno = r;
		}
	}
	if (fd < 0)
		fprintf(stderr, "http_worker: --listen %s: %s\n", spec, strerror(errno));
	freeaddrinfo(list);
	return fd;
}

/* Takes the sockets at fd 3... as sd_listen_fds does: LISTEN_FDS is ours only if LISTEN_PID is
 * our pid (it may have been meant for our parent). Returns 0 or -1 after saying why. */
static int
listeners_inherit(void)
{
	const char *fds = getenv("LISTEN_FDS"), *listen_pid = getenv("LISTEN_PID");
	long n = fds ? parse_decimal(fds, strlen(fds), MAX_LISTEN) : -1;

	if (!fds || !listen_pid) {
		fputs("http_worker: LISTEN_FDS and LISTEN_PID are not set: run me from aerie with "
		      "a listening socket, or pass --listen tcp:HOST:PORT\n",
		      stderr);
		return -1;
	}
	if (parse_decimal(listen_pid, strlen(listen_pid), INT_MAX) != pid) {
		fprintf(stderr,
			"http_worker: LISTEN_PID=%s is not our pid %d: the sockets are "
			"not meant for us\n",
			listen_pid, pid);
		return -1;
	}
	if (n < 1 || n > MAX_LISTEN) {
		fprintf(stderr, "http_worker: LISTEN_FDS=%s: want 1..%d\n", fds, MAX_LISTEN);
		return -1;
	}
	for (int fd = 3; fd < 3 + n; fd++) {
		int accepting = 0, flags = fcntl(fd, F_GETFL);
		socklen_t size = sizeof(accepting);

		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &size) < 0 ||
		    !accepting) {
			fprintf(stderr, "http_worker: fd %d is not a listening socket\n", fd);
			return -1;
		}
		/* O_NONBLOCK is on the open file description, so it applies to the host and the
		 * other workers too: fine, all of them accept without blocking. */
		if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
		    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
			fprintf(stderr, "http_worker: fd %d: %s\n", fd, strerror(errno));
			return -1;
		}
		listeners[n_listeners++] = (struct source){SOURCE_LISTENER, fd};
	}
	return 0;
}

static const char usage_text[] =
    "Usage: http_worker [OPTION]...\n"
    "A tiny HTTP/1.1 server for aerie. It serves the listening sockets at fd 3... (LISTEN_FDS,\n"
    "LISTEN_PID), sends READY=1 to NOTIFY_SOCKET, and on SIGTERM or SIGINT stops accepting,\n"
    "answers every request it has received, and exits 0.\n"
    "  GET /             hello from worker AERIE_WORKER pid PID generation AERIE_GENERATION\n"
    "  GET /sleep?ms=N   the same, N ms later (N <= 60000)\n"
    "\n"
    "  -l, --listen tcp:HOST:PORT  bind this address instead (repeatable)\n"
    "  -d, --drain-idle-ms MS      when stopping, how long an idle keep-alive connection may\n"
    "                              still send one request (default 1000)\n"
    "  -h, --help                  show this help\n"
    "\n"
    "Exit status: 0 after a graceful stop, 2 on bad usage or without sockets, 1 on a system "
    "error.\n";

/* Returns -1 to go on, or the exit status. */
static int
parse_options(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"drain-idle-ms", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	int c, fd;

	while ((c = getopt_long(argc, argv, "l:d:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (n_listeners == MAX_LISTEN) {
				fprintf(stderr, "http_worker: at most %d --listen\n", MAX_LISTEN);
				return 2;
			}
			fd = listen_tcp(optarg);
			if (fd < 0)
				return 2;
			listeners[n_listeners++] = (struct source){SOURCE_LISTENER, fd};
			break;
		case 'd':
			drain_idle_ms = parse_decimal(optarg, strlen(optarg), 3600000);
			if (drain_idle_ms < 0 || drain_idle_ms > 3600000) {
				fprintf(stderr, "http_worker: --drain-idle-ms: want 0..3600000\n");
				return 2;
			}
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			fputs("Try 'http_worker --help'.\n", stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "http_worker: unexpected argument \"%s\"\n", argv[optind]);
		return 2;
	}
	return n_listeners == 0 && listeners_inherit() < 0 ? 2 : -1;
}

int
main(int argc, char **argv)
{
	const char *generation = getenv("AERIE_GENERATION");
	char ready[128];
	sigset_t stop;
	int r;

	(void)setvbuf(stdout, NULL, _IOLBF, 0);
	pid = (int)getpid();
	if (getenv("AERIE_WORKER"))
		worker = getenv("AERIE_WORKER");
	snprintf(hello, sizeof(hello), "hello from worker %.64s pid %d generation %.64s\n", worker,
		 pid, generation ? generation : "-");
	r = parse_options(argc, argv);
	if (r >= 0)
		return r;
	r = 0;

	/* Stop signals are read from a signalfd. An ignored signal is dropped even while
	 * blocked, so undo any SIG_IGN we inherited. SIGPIPE: a closed stdout is no reason to die;
	 * sockets use MSG_NOSIGNAL anyway. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	if (sigprocmask(SIG_BLOCK, &stop, NULL) < 0 || signal(SIGTERM, SIG_DFL) == SIG_ERR ||
	    signal(SIGINT, SIG_DFL) == SIG_ERR || signal(SIGPIPE, SIG_IGN) == SIG_ERR ||
	    (signals.fd = signalfd(-1, &stop, SFD_NONBLOCK | SFD_CLOEXEC)) < 0 ||
	    (epoll_fd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    watch(EPOLL_CTL_ADD, &signals, EPOLLIN) || (r = listeners_watch(true)) < 0) {
		fprintf(stderr, "http_worker: setting up: %s\n", strerror(r < 0 ? -r : errno));
		return 1;
	}
	snprintf(ready, sizeof(ready), "READY=1\nSTATUS=serving on %d sockets", n_listeners);
	notify(ready);
	printf("http_worker %s pid %d serving on %d sockets\n", worker, pid, n_listeners);

	while (!draining || n_conns > 0) {
		struct epoll_event events[64];
		int n;

		now = clock_ms();
		n = epoll_wait(epoll_fd, events, 64, next_timeout());
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "http_worker: epoll_wait: %s\n", strerror(errno));
			return 1;
		}
		now = clock_ms();
		for (int i = 0; i < n; i++) {
			struct source *s = events[i].data.ptr;
			struct signalfd_siginfo info;

			if (s->kind == SOURCE_CONN)
				conn_event((struct conn *)s, events[i].events);
			else if (s->kind == SOURCE_LISTENER)
				accept_some(s);
			else if (read(signals.fd, &info, sizeof(info)) > 0 && !draining)
				drain_start();
		}
		run_timers();
	}
	printf("http_worker %s served %llu requests\n", worker, served);
	close(signals.fd);
	close(epoll_fd);
	return 0;
}
