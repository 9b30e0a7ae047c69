/* control: the host's side of the supervisor endpoint: binds the control socket, runs the
 * supervisor process (which parses all client input) and answers its requests.
 *
 * The split is Falcon's (its supervisor is a child process) made strict, like OpenBSD's
 * privilege separation: the host never reads a byte from a client. The supervisor process
 * accepts on the socket the host bound, frames and parses requests, answers metrics itself and
 * passes status/restart to the host as one small binary message on a SOCK_SEQPACKET pair
 * (lib/channel.h), which is all the host reads from it: no JSON. Replies it cannot take at once
 * wait in a queue, never dropped and never blocking the host. If it crashes, the host restarts
 * it (with a backoff while it fails at once); if it hangs, it stops answering the host's pings
 * and is killed and restarted. The listening socket stays open in the host, so the kernel
 * queues new connections meanwhile. The pings come with clients, not with the clock: the host
 * watches its listening sockets (one-shot) and a connection starts a round, a ping and a check
 * CONTROL_PING_INTERVAL later, after which it watches again; nobody connecting, nobody is
 * kept waiting by a hang, and an idle host and supervisor process wake for nothing. */
#include "host/control.h"

#include <errno.h>
#include <grp.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/guard.h"
#include "host/listen.h"
#include "host/worker.h"
#include "lib/channel.h"
#include "lib/limits.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/protocol.h"
#include "lib/unixsock.h"

struct control {
	struct loop *loop;
	control_fn fn;
	control_follow_fn follow; /* NULL: acks and cancels are dropped */
	void *data;
	char *socket_path;
	struct unixsock_file socket_file; /* what control_close removes */
	int listen_fd;
	int http_fd;	/* [host] prometheus: GET /metrics, served by the supervisor too; or -1 */
	int channel_fd; /* host's end of the pair shared with the running supervisor */
	unsigned epoch; /* counts supervisor spawns: replies for an older one are dropped */
	bool stopping;
	struct channel_queue queue; /* what the supervisor has not taken yet, in order */
	uint64_t ping_id;	    /* the last ping sent, or 0 */
	bool ping_answered;
	struct loop_timer ping_timer; /* armed while a round runs */
	bool clients_watched;	      /* listen_fd and http_fd are in the loop (one-shot) */
	double restart_delay;	      /* before the next start after a quick failure; 0: at once */
	char executable[4096];
	char host_pid_text[16];
	char socket_gid_text[16];
	struct worker process; /* the supervisor process, spawned like a worker */
	struct loop_timer restart_timer;
};

/* socket_group as a gid: a group's name, else a number (as the config checked it: 0 to
 * 4294967294, (gid_t)-1 being "no group"), never read as a signed int. */
static int
socket_gid(const struct config *config, gid_t *ret_gid, char *error, size_t error_size)
{
	const char *text = config->socket_group;
	struct group *group = getgrnam(text);
	if (group) {
		*ret_gid = group->gr_gid;
		return 0;
	}
	char *end;
	errno = 0;
	unsigned long number = strtoul(text, &end, 10);
	if (text[0] < '0' || text[0] > '9' || *end || errno || number >= (gid_t)-1) {
		snprintf(error, error_size, "%s: socket_group: no group named \"%s\"", config->path,
			 text);
		return -ENOENT;
	}
	*ret_gid = (gid_t)number;
	return 0;
}

static int
bind_socket(struct control *control, const struct config *config, char *error, size_t error_size)
{
	gid_t gid = (gid_t)-1;
	if (config->socket_group) {
		int r = socket_gid(config, &gid, error, error_size);
		if (r < 0)
			return r;
	}
	/* Made aside and renamed into place with its mode and group set (lib/unixsock.h): no
	 * chmod or chown by name that a link swapped into the directory could send elsewhere. */
	struct unixsock_listener listener = {
	    .path = config->supervisor_path,
	    .mode = config->socket_mode,
	    .gid = gid,
	    .backlog = CONTROL_LISTEN_BACKLOG,
	    .flags = SOCK_NONBLOCK,
	};
	int r = unixsock_listen(&listener, &control->listen_fd, &control->socket_file, error,
				error_size);
	if (r < 0)
		return r;
	if (gid == (gid_t)-1)
		snprintf(control->socket_gid_text, sizeof(control->socket_gid_text), "-1");
	else
		snprintf(control->socket_gid_text, sizeof(control->socket_gid_text), "%u",
			 (unsigned)gid);
	return 0;
}

static void on_channel(struct loop *loop, int fd, uint32_t events, void *data);

/* Back-pressure: while the supervisor has more than the queue's bounds to take, the host reads
 * no more of its requests (each of which would add a reply), and it is woken when the
 * channel can take more. The loop is never blocked. */
static void
update_channel_events(struct control *control)
{
	if (control->channel_fd < 0)
		return;
	uint32_t events = channel_queue_full(&control->queue) ? 0 : EPOLLIN;
	if (control->queue.head)
		events |= EPOLLOUT;
	(void)loop_modify(control->loop, control->channel_fd, events);
}

/* Sends a message to the supervisor after those it has not taken yet. */
static int
channel_post(struct control *control, uint32_t type, uint64_t id, const void *payload,
	     size_t length)
{
	if (control->channel_fd < 0)
		return -ENOTCONN;
	int r = channel_queue_send(&control->queue, control->channel_fd, type, id, payload, length);
	update_channel_events(control);
	return r;
}

void
control_reply(struct control *control, struct control_ticket ticket, const char *json,
	      size_t length)
{
	if (ticket.epoch != control->epoch || control->stopping)
		return; /* its supervisor process, and the client with it, are gone */
	/* A reply goes out as the host wrote it, with its NUL (the client's frame) and the id
	 * in the channel's header, so that the supervisor passes it on without parsing it
	 * again (with 100 workers that was half the time of a status request). */
	int r = channel_post(control, CHANNEL_REPLY, ticket.id, json, length + 1);
	if (r == -EMSGSIZE) {
		/* Over what the supervisor accepts: the client gets an error rather than
		 * nothing (an error reply is small, so this does not come back here). */
		log_warn("supervisor channel: a reply of %zu bytes is over the bound of %d",
			 length + 1, CHANNEL_MAX_REPLY);
		control_reply_error(control, ticket, PROTOCOL_CODE_TOO_LARGE,
				    "reply too large to pass on");
	} else if (r < 0) {
		/* The supervisor is gone (its exit is on its way to the reaper) or memory ran
		 * out: there is no one to give the reply to. */
		log_errno(r == -ENOMEM ? LOG_ERROR : LOG_DEBUG, r,
			  "supervisor channel: reply lost");
	}
}

int
control_send_logs(struct control *control, struct control_ticket ticket, const char *frames,
		  size_t length)
{
	if (!control_ticket_live(control, ticket))
		return -ESTALE;
	return channel_post(control, CHANNEL_LOGS, ticket.id, frames, length);
}

bool
control_ticket_live(const struct control *control, struct control_ticket ticket)
{
	return ticket.epoch == control->epoch && !control->stopping && control->channel_fd >= 0;
}

void
control_reply_error(struct control *control, struct control_ticket ticket, enum protocol_code code,
		    const char *message)
{
	json_t *reply = protocol_error(code, message);
	char *text = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
	json_decref(reply);
	if (!text) {
		log_error("supervisor channel: out of memory encoding a reply");
		return;
	}
	control_reply(control, ticket, text, strlen(text));
	free(text);
}

/* One message of the supervisor process: a request, or the answer to a ping. */
static void
take_message(struct control *control, const char *buffer, size_t length)
{
	struct channel_message message;
	if (channel_parse(buffer, length, &message) < 0 ||
	    (message.header.type >= COMMAND_COUNT && message.header.type != CHANNEL_PONG &&
	     message.header.type != CHANNEL_LOGS_ACK &&
	     message.header.type != CHANNEL_LOGS_CANCEL)) {
		log_warn("supervisor channel: malformed message ignored");
		return;
	}
	uint32_t type = message.header.type;
	if (type == CHANNEL_LOGS_ACK || type == CHANNEL_LOGS_CANCEL) {
		struct control_ticket ticket = {message.header.id, control->epoch};
		if (control->follow)
			control->follow(ticket, type == CHANNEL_LOGS_ACK);
		return;
	}
	if (message.header.type == CHANNEL_PONG) {
		if (message.header.id == control->ping_id)
			control->ping_answered = true;
		return;
	}
	struct control_request request = {
	    .command = message.command,
	    .ticket = {message.header.id, control->epoch},
	    .service = message.service[0] ? message.service : NULL,
	    .arguments = message.arguments,
	};
	control->fn(control, &request, control->data);
}

/* Reads what the supervisor process sent, until the channel is empty or the queue full (each
 * request read adds a reply). Several datagrams a call: an idle ping's answer costs one call,
 * not a second one to find the channel empty. Returns false when the channel is gone. */
static bool
read_channel(struct control *control, int fd)
{
	while (!channel_queue_full(&control->queue)) {
		/* One byte more than the largest request: a longer one shows as truncated, and
		 * channel_parse refuses it. Without room for control data, any fd the
		 * supervisor attached is closed by the kernel, never installed here. */
		_Alignas(struct channel_header) char
		    buffers[CHANNEL_RECEIVE_BATCH]
			   [sizeof(struct channel_header) + CHANNEL_MAX_REQUEST + 1];
		struct iovec parts[CHANNEL_RECEIVE_BATCH];
		struct mmsghdr messages[CHANNEL_RECEIVE_BATCH];
		for (size_t i = 0; i < CHANNEL_RECEIVE_BATCH; i++) {
			parts[i] = (struct iovec){buffers[i], sizeof(buffers[i])};
			messages[i] =
			    (struct mmsghdr){.msg_hdr = {.msg_iov = &parts[i], .msg_iovlen = 1}};
		}
		int n = recvmmsg(fd, messages, CHANNEL_RECEIVE_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		for (int i = 0; i < n && messages[i].msg_len > 0; i++) {
			take_message(control, buffers[i], messages[i].msg_len);
			if (control->channel_fd != fd)
				return false; /* the answer found the supervisor gone */
		}
		if (n <= 0 || messages[n - 1].msg_len == 0) {
			/* The supervisor process is gone (a datagram of nothing is the end of the
			 * channel); its exit is handled by the reaper. */
			loop_remove(control->loop, fd);
			return false;
		}
		if (n < CHANNEL_RECEIVE_BATCH)
			return true;
	}
	return true;
}

static void
on_channel(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct control *control = data;
	(void)loop;
	if (events & EPOLLOUT) {
		int r = channel_queue_flush(&control->queue, fd);
		if (r == -EPIPE || r == -ECONNRESET) {
			/* The supervisor process is gone, as in read_channel. */
			channel_queue_clear(&control->queue);
			loop_remove(control->loop, fd);
			return;
		}
		if (r < 0 && r != -EAGAIN)
			log_errno(LOG_WARN, r, "supervisor channel");
	}
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !read_channel(control, fd))
		return;
	update_channel_events(control);
}

static void
close_channel(struct control *control)
{
	loop_timer_stop(control->loop, &control->ping_timer);
	channel_queue_clear(&control->queue);
	if (control->channel_fd < 0)
		return;
	loop_remove(control->loop, control->channel_fd);
	close(control->channel_fd);
	control->channel_fd = -1;
}

/* The wait before the next start: none after a run of CONTROL_STABLE_SECONDS, else
 * CONTROL_RESTART_DELAY doubled for each quick failure in a row, up to a cap (as a worker's
 * restart_delay, and systemd's RestartSteps=/RestartMaxDelaySec=, do): a supervisor that
 * cannot start must not cost the host a spawn a second for ever. */
static double
next_restart_delay(struct control *control, bool stable)
{
	if (stable) {
		control->restart_delay = 0;
		return 0;
	}
	double delay = control->restart_delay > 0 ? control->restart_delay : CONTROL_RESTART_DELAY;
	control->restart_delay = fmin(delay * 2, CONTROL_RESTART_DELAY_MAX);
	return delay;
}

static void on_client_waiting(struct loop *loop, int fd, uint32_t events, void *data);

/* (Re)arms the one-shot watch of the listening sockets: the next connection starts a round. */
static void
watch_clients(struct control *control)
{
	const uint32_t events = EPOLLIN | EPOLLONESHOT;
	int fds[] = {control->listen_fd, control->http_fd};
	for (size_t i = 0; i < sizeof(fds) / sizeof(*fds); i++) {
		if (fds[i] < 0)
			continue;
		int r = control->clients_watched
			    ? loop_modify(control->loop, fds[i], events)
			    : loop_add(control->loop, fds[i], events, on_client_waiting, control);
		if (r < 0)
			log_errno(LOG_WARN, r,
				  "supervisor: cannot watch for clients (a hang of it "
				  "goes unnoticed)");
	}
	control->clients_watched = true;
}

/* The end of a round: a supervisor whose loop did not turn (stopped, or stuck in a loop) is
 * killed, process group and all, and its exit brings the normal respawn, as a worker that
 * misses its health_timeout is (systemd's WatchdogSec= does the same with its services);
 * one that answered is watched again. */
static void
on_ping_timer(struct loop *loop, void *data)
{
	(void)loop;
	struct control *control = data;
	if (control->process.pid == 0 || control->channel_fd < 0)
		return; /* its restart starts the watch again */
	if (!control->ping_answered) {
		log_warn("supervisor[%d] has not answered for %.0f s; killing it",
			 (int)control->process.pid, CONTROL_PING_INTERVAL);
		worker_kill(&control->process, SIGKILL);
		return;
	}
	watch_clients(control);
}

/* A client is at a listening socket (or was: the supervisor may have taken it already):
 * a round starts unless one runs. */
static void
on_client_waiting(struct loop *loop, int fd, uint32_t events, void *data)
{
	(void)fd;
	(void)events;
	struct control *control = data;
	if (loop_timer_armed(&control->ping_timer) || control->process.pid == 0 ||
	    control->channel_fd < 0)
		return;
	control->ping_id++;
	control->ping_answered = false;
	int r = channel_post(control, CHANNEL_PING, control->ping_id, NULL, 0);
	if (r < 0)
		log_errno(LOG_DEBUG, r, "supervisor channel: ping");
	(void)loop_timer_start(loop, &control->ping_timer, CONTROL_PING_INTERVAL);
}

static void
schedule_restart(struct control *control, double delay)
{
	(void)loop_timer_start(control->loop, &control->restart_timer, delay);
}

static void
spawn_supervisor(struct control *control)
{
	int pair[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0) {
		double delay = next_restart_delay(control, false);
		log_errno(LOG_ERROR, -errno, "supervisor: socketpair; retrying in %.0f s", delay);
		schedule_restart(control, delay);
		return;
	}
	bool http = control->http_fd >= 0;
	char *argv[] = {control->executable,
			CHANNEL_PROCESS_COMMAND,
			"--" CHANNEL_OPTION_HOST_PID,
			control->host_pid_text,
			"--" CHANNEL_OPTION_SOCKET_GID,
			control->socket_gid_text,
			http ? "--" CHANNEL_OPTION_PROMETHEUS : NULL,
			NULL};
	int fds[] = {
	    [CHANNEL_FD_CONTROL - CHANNEL_FD_FIRST] = control->listen_fd,
	    [CHANNEL_FD_HOST - CHANNEL_FD_FIRST] = pair[1],
	    [CHANNEL_FD_HTTP - CHANNEL_FD_FIRST] = control->http_fd,
	};
	struct worker_exec exec = {
	    .argv = argv,
	    .service_name = "supervisor",
	    .listen_fds = fds,
	    .listen_count = http ? 3 : 2,
	    .listen_names = http ? "control:channel:prometheus" : "control:channel",
	};
	control->process.started_at = loop_now_seconds();
	int r = worker_spawn(&control->process, control->loop, &exec);
	close(pair[1]);
	if (r < 0) {
		close(pair[0]);
		double delay = next_restart_delay(control, false);
		log_errno(LOG_ERROR, r, "cannot start the supervisor process; retrying in %.0f s",
			  delay);
		schedule_restart(control, delay);
		return;
	}
	guard_add(control->process.pid);
	control->epoch++;
	close_channel(control);
	control->channel_fd = pair[0];
	/* The socket's own buffer is enough: what does not fit waits in the queue, and a large
	 * reply goes in a memfd. */
	r = loop_add(control->loop, control->channel_fd, EPOLLIN, on_channel, control);
	if (r < 0)
		log_errno(LOG_ERROR, r, "supervisor channel: cannot watch it");
	control->ping_id = 0;
	watch_clients(control);
	log_info("supervisor[%d] started: listening on %s", (int)control->process.pid,
		 control->socket_path);
}

static void
on_restart_timer(struct loop *loop, void *data)
{
	struct control *control = data;
	(void)loop;
	if (!control->stopping && control->process.pid == 0)
		spawn_supervisor(control);
}

void
control_on_follow(struct control *control, control_follow_fn fn)
{
	control->follow = fn;
}

int
control_open(struct loop *loop, const struct config *config, control_fn fn, void *data,
	     struct control **ret_control, char *error, size_t error_size)
{
	struct control *control = calloc(1, sizeof(*control));
	if (!control) {
		snprintf(error, error_size, "out of memory");
		return -ENOMEM;
	}
	control->loop = loop;
	control->fn = fn;
	control->data = data;
	control->listen_fd = -1;
	control->http_fd = -1;
	control->channel_fd = -1;
	worker_output_init(&control->process);
	snprintf(control->process.label, sizeof(control->process.label), "supervisor");
	loop_timer_init(&control->restart_timer, on_restart_timer, control);
	loop_timer_init(&control->ping_timer, on_ping_timer, control);
	snprintf(control->host_pid_text, sizeof(control->host_pid_text), "%d", (int)getpid());
	/* The supervisor runs this same binary; /proc/self/exe still works if the file on disk
	 * was replaced by an upgrade. */
	ssize_t n =
	    readlink("/proc/self/exe", control->executable, sizeof(control->executable) - 1);
	if (n > 0)
		control->executable[n] = '\0';
	if (n <= 0 || access(control->executable, X_OK) < 0)
		snprintf(control->executable, sizeof(control->executable), "%s", "/proc/self/exe");
	control->socket_path = strdup(config->supervisor_path);
	int r = control->socket_path ? bind_socket(control, config, error, error_size) : -ENOMEM;
	/* Bound here, by the host, for the same reason as the control socket: it stays open
	 * while the supervisor process is replaced. */
	if (r == 0 && config->prometheus) {
		r = listen_open(config->prometheus, config->directory, &control->http_fd, NULL,
				error, error_size);
		if (r < 0) {
			close(control->listen_fd);
			unixsock_remove(control->socket_path, &control->socket_file);
		} else {
			log_info("serving Prometheus metrics on http://%s/metrics",
				 config->prometheus + strcspn(config->prometheus, ":") + 1);
		}
	}
	if (r < 0) {
		free(control->socket_path);
		free(control);
		return r;
	}
	*ret_control = control;
	return 0;
}

void
control_start(struct control *control)
{
	spawn_supervisor(control);
}

bool
control_stop(struct control *control)
{
	/* Called again at each reap while the host waits: the signal goes once. */
	if (!control->stopping && control->process.pid > 0)
		worker_kill(&control->process, SIGTERM);
	control->stopping = true;
	loop_timer_stop(control->loop, &control->restart_timer);
	return control->process.pid > 0;
}

bool
control_child_exited(struct control *control, pid_t pid, int status)
{
	if (control->process.pid == 0 || pid != control->process.pid)
		return false;
	double uptime = loop_now_seconds() - control->process.started_at;
	worker_output_close(&control->process, control->loop);
	(void)kill(-pid, SIGKILL);
	guard_remove(pid);
	control->process.pid = 0;
	close_channel(control);
	if (control->stopping) {
		log_info("supervisor[%d] stopped", (int)pid);
		return true;
	}
	double delay = next_restart_delay(control, uptime >= CONTROL_STABLE_SECONDS);
	if (WIFSIGNALED(status))
		log_warn("supervisor[%d] killed by signal %d; restarting in %.0f s", (int)pid,
			 WTERMSIG(status), delay);
	else
		log_warn("supervisor[%d] exited with status %d; restarting in %.0f s", (int)pid,
			 WEXITSTATUS(status), delay);
	if (delay == 0)
		spawn_supervisor(control);
	else
		schedule_restart(control, delay);
	return true;
}

pid_t
control_pid(const struct control *control)
{
	return control->process.pid;
}

void
control_close(struct control *control)
{
	if (!control)
		return;
	loop_timer_stop(control->loop, &control->restart_timer);
	worker_release(&control->process, control->loop);
	close_channel(control);
	if (control->clients_watched) {
		if (control->listen_fd >= 0)
			loop_remove(control->loop, control->listen_fd);
		if (control->http_fd >= 0)
			loop_remove(control->loop, control->http_fd);
	}
	if (control->listen_fd >= 0) {
		close(control->listen_fd);
		unixsock_remove(control->socket_path, &control->socket_file);
	}
	if (control->http_fd >= 0)
		close(control->http_fd);
	free(control->socket_path);
	free(control);
}
