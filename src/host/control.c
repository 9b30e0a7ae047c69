/* control: the host's side of the supervisor endpoint: binds the control socket, runs the
 * supervisor process (which parses all client input) and answers its requests.
 *
 * The split is Falcon's (its supervisor is a child process) made strict, like OpenBSD's
 * privilege separation: the host never reads a byte from a client. The supervisor process
 * accepts on the socket the host bound, frames and parses requests, answers metrics itself and
 * passes status/restart to the host as one small JSON datagram on a SOCK_SEQPACKET pair. If it
 * crashes or hangs, the host restarts it; the listening socket stays open in the host, so the
 * kernel queues new connections meanwhile. */
#include "host/control.h"

#include <errno.h>
#include <grp.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/listen.h"
#include "host/worker.h"
#include "lib/limits.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/protocol.h"
#include "lib/unixsock.h"

struct control {
	struct loop *loop;
	control_fn fn;
	void *data;
	char *socket_path;
	int listen_fd;
	int http_fd;	/* [host] prometheus: GET /metrics, served by the supervisor too; or -1 */
	int channel_fd; /* host's end of the pair shared with the running supervisor */
	unsigned epoch; /* counts supervisor spawns: replies for an older one are dropped */
	bool stopping;
	char executable[4096];
	char host_pid_text[16];
	char socket_gid_text[16];
	struct worker process; /* the supervisor process, spawned like a worker */
	struct loop_timer restart_timer;
};

static int
bind_socket(struct control *control, const struct config *config, char *error, size_t error_size)
{
	const char *path = config->supervisor_path;
	struct sockaddr_un address;
	int r = unixsock_address(path, &address);
	if (r < 0) {
		snprintf(error, error_size, "%s: path too long for a unix socket", path);
		return r;
	}
	error[0] = '\0';
	r = unixsock_claim(path, error, error_size);
	if (r < 0) {
		if (!error[0])
			snprintf(error, error_size, "%s: %s", path, strerror(-r));
		return r;
	}
	gid_t gid = (gid_t)-1;
	if (config->socket_group) {
		struct group *group = getgrnam(config->socket_group);
		char *end;
		unsigned long number = strtoul(config->socket_group, &end, 10);
		if (group)
			gid = group->gr_gid;
		else if (*end == '\0' && end != config->socket_group)
			gid = (gid_t)number;
		else {
			snprintf(error, error_size, "%s: socket_group: no group named \"%s\"",
				 config->path, config->socket_group);
			return -ENOENT;
		}
	}

	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		r = -errno;
		snprintf(error, error_size, "socket: %s", strerror(errno));
		return r;
	}
	/* Created with no access for anyone but the owner, then opened up to socket_mode: no
	 * moment where the socket is wider open than configured. */
	mode_t old_umask = umask(0177);
	r = bind(fd, (struct sockaddr *)&address, sizeof(address));
	int bind_errno = errno;
	umask(old_umask);
	if (r < 0) {
		snprintf(error, error_size, "bind %s: %s", path, strerror(bind_errno));
		close(fd);
		return -bind_errno;
	}
	if ((gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0) ||
	    chmod(path, config->socket_mode) < 0 || listen(fd, CONTROL_LISTEN_BACKLOG) < 0) {
		r = -errno;
		snprintf(error, error_size, "%s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return r;
	}
	control->listen_fd = fd;
	snprintf(control->socket_gid_text, sizeof(control->socket_gid_text), "%d",
		 gid == (gid_t)-1 ? -1 : (int)gid);
	return 0;
}

/* One datagram per reply: the request's id in decimal, a space, the reply's JSON. The id stays
 * outside the JSON so that the supervisor passes the reply on as it is, without parsing it
 * again (with 100 workers that was half the time of a status request). Returns 0 or an errno. */
static int
send_datagram(struct control *control, uint64_t id, const char *text, size_t length)
{
	char prefix[32];
	int prefix_length = snprintf(prefix, sizeof(prefix), "%llu ", (unsigned long long)id);
	struct iovec parts[] = {{prefix, (size_t)prefix_length}, {(char *)text, length}};
	struct msghdr header = {.msg_iov = parts, .msg_iovlen = 2};
	/* The supervisor reads as fast as the host writes small replies; if its buffer is full
	 * it is stuck, and the reply is dropped rather than blocking the host. */
	if (control->channel_fd < 0)
		return ENOTCONN;
	if (sendmsg(control->channel_fd, &header, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return errno;
	return 0;
}

void
control_reply(struct control *control, struct control_ticket ticket, const char *json,
	      size_t length)
{
	if (ticket.epoch != control->epoch || control->stopping)
		return; /* its supervisor process, and the client with it, are gone */
	int error = send_datagram(control, ticket.id, json, length);
	if (error == 0)
		return;
	log_warn("supervisor channel: reply dropped: %s", strerror(error));
	/* Too large for one datagram: the client gets an error rather than nothing. */
	static const char too_large[] =
	    "{\"error\":{\"code\":\"too_large\",\"message\":\"reply too large to pass on\"}}";
	if (error == EMSGSIZE)
		(void)send_datagram(control, ticket.id, too_large, sizeof(too_large) - 1);
}

void
control_reply_error(struct control *control, struct control_ticket ticket, const char *code,
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

static void
handle_request(struct control *control, json_t *request)
{
	json_t *id = json_object_get(request, "id");
	const char *please = json_string_value(json_object_get(request, "please"));
	if (!json_is_integer(id) || !please) {
		log_warn("supervisor channel: request without id or please ignored");
		return;
	}
	struct control_request message = {
	    .ticket = {(uint64_t)json_integer_value(id), control->epoch},
	    .service = json_string_value(json_object_get(request, "service")),
	};
	if (strcmp(please, "status") == 0) {
		message.command = COMMAND_STATUS;
	} else if (strcmp(please, "restart") == 0) {
		message.command = COMMAND_RESTART;
	} else {
		control_reply_error(control, message.ticket, "unknown_command", "unknown command");
		return;
	}
	control->fn(control, &message, control->data);
}

static void
on_channel(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct control *control = data;
	(void)loop;
	(void)events;
	for (;;) {
		char buffer[PROTOCOL_MAX_REQUEST + 1024];
		ssize_t n = recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			/* The supervisor process is gone; its exit is handled by the reaper. */
			loop_remove(control->loop, fd);
			return;
		}
		json_t *request = json_loadb(buffer, (size_t)n, 0, NULL);
		if (json_is_object(request))
			handle_request(control, request);
		else
			log_warn("supervisor channel: malformed message ignored");
		json_decref(request);
	}
}

static void
close_channel(struct control *control)
{
	if (control->channel_fd < 0)
		return;
	loop_remove(control->loop, control->channel_fd);
	close(control->channel_fd);
	control->channel_fd = -1;
}

static void
spawn_supervisor(struct control *control)
{
	int pair[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0) {
		log_errno(LOG_ERROR, -errno, "supervisor: socketpair");
		(void)loop_timer_start(control->loop, &control->restart_timer,
				       CONTROL_RESTART_DELAY);
		return;
	}
	bool http = control->http_fd >= 0;
	char *argv[] = {control->executable,
			"supervisor-process",
			"--host-pid",
			control->host_pid_text,
			"--socket-gid",
			control->socket_gid_text,
			http ? "--prometheus" : NULL,
			NULL};
	int fds[] = {control->listen_fd, pair[1], control->http_fd};
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
		log_errno(LOG_ERROR, r, "cannot start the supervisor process");
		(void)loop_timer_start(control->loop, &control->restart_timer,
				       CONTROL_RESTART_DELAY);
		return;
	}
	control->epoch++;
	close_channel(control);
	control->channel_fd = pair[0];
	/* Status of thousands of workers is one datagram: allow it (past wmem_max where the host
	 * may, as root). */
	int size = 4 << 20;
	if (setsockopt(control->channel_fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		(void)setsockopt(control->channel_fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	r = loop_add(control->loop, control->channel_fd, EPOLLIN, on_channel, control);
	if (r < 0)
		log_errno(LOG_ERROR, r, "supervisor channel: cannot watch it");
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
	control->process.output_fd = -1;
	snprintf(control->process.label, sizeof(control->process.label), "supervisor");
	loop_timer_init(&control->restart_timer, on_restart_timer, control);
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
		r = listen_open(config->prometheus, config->directory, &control->http_fd, error,
				error_size);
		if (r < 0) {
			close(control->listen_fd);
			(void)unlink(control->socket_path);
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
	control->process.pid = 0;
	close_channel(control);
	if (control->stopping) {
		log_info("supervisor[%d] stopped", (int)pid);
		return true;
	}
	double delay = uptime >= CONTROL_STABLE_SECONDS ? 0 : CONTROL_RESTART_DELAY;
	if (WIFSIGNALED(status))
		log_warn("supervisor[%d] killed by signal %d; restarting in %.0f s", (int)pid,
			 WTERMSIG(status), delay);
	else
		log_warn("supervisor[%d] exited with status %d; restarting in %.0f s", (int)pid,
			 WEXITSTATUS(status), delay);
	if (delay == 0)
		spawn_supervisor(control);
	else
		(void)loop_timer_start(control->loop, &control->restart_timer, delay);
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
	if (control->listen_fd >= 0) {
		close(control->listen_fd);
		(void)unlink(control->socket_path);
	}
	if (control->http_fd >= 0)
		close(control->http_fd);
	free(control->socket_path);
	free(control);
}
