/* supervisor: the supervisor process: its loop, its signals, and accepting clients on the
 * control socket the host bound (and on the Prometheus socket), pausing when out of fds.
 *
 * It runs as a child of the host (see host/control.c) with the fds and argv of lib/channel.h.
 * This file is the top layer (private.h draws them all): beside it peer.c, the gate; below it
 * http.c, Prometheus over HTTP; requests.c, the framing of requests, each command's handler and
 * the channel to the host; and client.c, a connection's buffers. Clients are bounded in count
 * here, per pool: the control socket's (PROTOCOL_MAX_CLIENTS, of which some are kept for the
 * operator, and fewer per other uid) apart from the Prometheus socket's
 * (SUPERVISOR_HTTP_MAX_CLIENTS); in input, output and time in client.c. */
#include "supervisor/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/channel.h"
#include "lib/limits.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "supervisor/private.h"

static void
accept_resume(struct supervisor *supervisor)
{
	supervisor->accept_paused = false;
	(void)loop_modify(supervisor->loop, CHANNEL_FD_CONTROL, EPOLLIN);
	if (supervisor->http)
		(void)loop_modify(supervisor->loop, CHANNEL_FD_HTTP, EPOLLIN);
}

/* Set as supervisor->client_gone: client.c, the bottom layer, calls it on each close. */
static void
on_client_gone(struct supervisor *supervisor)
{
	/* A client gone is an fd free: no need to wait out the pause. */
	if (supervisor->accept_paused && !loop_timer_armed(&supervisor->accept_timer))
		accept_resume(supervisor);
}

static void
on_accept_timer(struct loop *loop, void *data)
{
	(void)loop;
	accept_resume(data);
}

/* Why the control socket has no room for one more client of uid, in ret_message; false if it
 * has. Refused peers never get this far: they take no slot. */
static bool
control_full(const struct supervisor *supervisor, uid_t uid, char *ret_message, size_t size)
{
	size_t connected = supervisor->pool_count[CLIENT_POOL_CONTROL];
	if (connected >= PROTOCOL_MAX_CLIENTS) {
		snprintf(ret_message, size, "too many clients connected (%d); try again later",
			 PROTOCOL_MAX_CLIENTS);
		return true;
	}
	/* The operator always finds a slot, as PostgreSQL keeps superuser_reserved_connections:
	 * members of socket_group, however many and however they behave, cannot lock it out. */
	if (peer_is_operator(uid))
		return false;
	if (connected >= PROTOCOL_MAX_CLIENTS - SUPERVISOR_OPERATOR_RESERVED) {
		snprintf(ret_message, size,
			 "too many clients connected (%d); the last %d are kept for root and the "
			 "host's user; try again later",
			 PROTOCOL_MAX_CLIENTS - SUPERVISOR_OPERATOR_RESERVED,
			 SUPERVISOR_OPERATOR_RESERVED);
		return true;
	}
	size_t mine = 0;
	for (const struct client *client = supervisor->clients; client; client = client->next)
		if (client->ops->pool == CLIENT_POOL_CONTROL && client->uid == uid)
			mine++;
	if (mine >= SUPERVISOR_MAX_CLIENTS_PER_UID) {
		snprintf(ret_message, size,
			 "too many connections from uid %d (%d); close one and try again", (int)uid,
			 SUPERVISOR_MAX_CLIENTS_PER_UID);
		return true;
	}
	return false;
}

/* A connection of the Prometheus socket: TCP has no peer credentials, so the socket's bind
 * address is its gate, and its own pool keeps it from the control socket's slots. */
static void
accept_http(struct supervisor *supervisor, int fd)
{
	if (supervisor->pool_count[CLIENT_POOL_HTTP] >= SUPERVISOR_HTTP_MAX_CLIENTS)
		http_refuse(fd, "too many connections; try again later\n");
	else if (http_client_new(supervisor, fd) < 0)
		http_refuse(fd, "out of memory\n");
}

static void
accept_control(struct supervisor *supervisor, int fd)
{
	uid_t uid = (uid_t)-1;
	if (!peer_allowed(supervisor, fd, &uid)) {
		peer_log_refused(supervisor, uid);
		peer_refuse(fd, PROTOCOL_CODE_PERMISSION_DENIED,
			    "not allowed: connect as the host's user, root or a member of its "
			    "socket_group");
		return;
	}
	char message[160];
	if (control_full(supervisor, uid, message, sizeof(message)))
		peer_refuse(fd, PROTOCOL_CODE_TOO_MANY_CLIENTS, message);
	else if (requests_client_new(supervisor, fd, uid) < 0)
		peer_refuse(fd, PROTOCOL_CODE_INTERNAL, "out of memory");
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
		if (fd == CHANNEL_FD_HTTP)
			accept_http(supervisor, client_fd);
		else
			accept_control(supervisor, client_fd);
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
	struct supervisor supervisor = {.host_pid = host_pid,
					.socket_gid = socket_gid,
					.http = http,
					.client_gone = on_client_gone};
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
	if (http &&
	    fcntl(CHANNEL_FD_HTTP, F_SETFL, fcntl(CHANNEL_FD_HTTP, F_GETFL) | O_NONBLOCK) < 0) {
		log_errno(LOG_ERROR, -errno, "supervisor: the Prometheus socket");
		return 1;
	}
	int r = loop_new(&supervisor.loop);
	if (r < 0)
		return 1;
	loop_timer_init(&supervisor.accept_timer, on_accept_timer, &supervisor);
	peer_log_init(&supervisor);
	requests_init(&supervisor);
	capture_init(&supervisor);
	static const int signals[] = {SIGTERM, SIGINT};
	if (loop_signals(supervisor.loop, signals, 2, on_signal, NULL) < 0 ||
	    loop_add(supervisor.loop, CHANNEL_FD_CONTROL, EPOLLIN, on_accept, &supervisor) < 0 ||
	    loop_add(supervisor.loop, CHANNEL_FD_HOST, EPOLLIN, requests_on_channel, &supervisor) <
		0 ||
	    (http &&
	     loop_add(supervisor.loop, CHANNEL_FD_HTTP, EPOLLIN, on_accept, &supervisor) < 0)) {
		log_errno(LOG_ERROR, -errno, "supervisor: cannot watch its sockets");
		r = -1;
	} else if (sandbox_apply(host_pid) < 0) {
		r = -1; /* logged; the host starts another */
	} else {
		r = loop_run(supervisor.loop);
	}
	for (struct client *client = supervisor.clients, *next; client; client = next) {
		next = client->next;
		client_close(client);
	}
	loop_timer_stop(supervisor.loop, &supervisor.accept_timer);
	peer_log_finish(&supervisor);
	requests_close(&supervisor);
	capture_close(&supervisor);
	loop_free(supervisor.loop);
	cpu_interval_free(&supervisor.cpu);
	return r < 0 ? 1 : 0;
}
