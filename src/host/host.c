/* host: owns the config, the services and their generations; turns signals into stops and
 * rolling restarts. */
#include "host/host.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host/control.h"
#include "host/notify.h"
#include "host/sdnotify.h"
#include "host/service.h"
#include "host/status.h"
#include "lib/limits.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/signame.h"

struct restart_request {
	struct restart_request *next;
	char *service; /* NULL: all */
	bool reload;
	host_restart_fn fn;
	void *data;
};

struct host {
	const char *config_path;
	/* The config in force, and older ones that workers of an older generation still use. */
	struct config *configs[HOST_MAX_CONFIGS];
	size_t config_count;
	struct loop *loop;
	struct notify *notify;
	struct control *control;
	/* The host's own service manager (systemd), when started with NOTIFY_SOCKET. */
	struct sdnotify *systemd;
	bool systemd_ready_sent;
	char systemd_status[512];
	double watchdog_interval;
	struct loop_timer watchdog_timer;
	double started_at; /* CLOCK_MONOTONIC seconds */
	struct service **services;
	size_t service_count;
	unsigned generation;
	int exit_code;
	/* Stopping */
	unsigned stop_requests;
	size_t services_stopped;
	bool orphans_signalled;
	bool stopped;
	struct loop_timer orphan_timer;
	/* Rolling restarts: the one running, and those waiting for it. */
	struct restart_request *restart_running;
	size_t restart_services_pending;
	char restart_error[512];
	struct restart_request *restart_queue;
};

static struct config *
current_config(struct host *host)
{
	return host->configs[host->config_count - 1];
}

static bool
is_known_child(struct host *host, pid_t pid)
{
	if (host->control && control_pid(host->control) == pid)
		return true;
	for (size_t i = 0; i < host->service_count; i++)
		if (service_has_worker(host->services[i], pid))
			return true;
	return false;
}

/* Signals every child of the host that is not a worker nor the supervisor process: orphans
 * of workers, reparented to the host (the subreaper). With all, every child. */
static void
kill_orphans(struct host *host, int signal, bool all)
{
	/* The host is single-threaded: its children are all in its main task's list. Read one
	 * pid at a time: the list of 1000 children is longer than any fixed buffer. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
	FILE *file = fopen(path, "re");
	if (!file)
		return;
	char *word = NULL;
	size_t size = 0;
	while (getdelim(&word, &size, ' ', file) > 0) {
		char *end;
		long pid = strtol(word, &end, 10);
		if (end == word || pid <= 0)
			continue;
		bool orphan = !is_known_child(host, (pid_t)pid);
		if (!orphan && !all)
			continue;
		if (orphan)
			log_info("stopping orphan %ld with SIG%s", pid, signame_name(signal));
		(void)kill((pid_t)pid, signal);
	}
	free(word);
	fclose(file);
}

static bool
has_children(void)
{
	siginfo_t info = {0};
	return waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0;
}

static void
on_orphan_deadline(struct loop *loop, void *data)
{
	(void)loop;
	kill_orphans(data, SIGKILL, false);
}

/* When stopping, the host is done once every service has stopped and no child is left. */
static void
check_stopped(struct host *host)
{
	if (!host->stop_requests || host->services_stopped < host->service_count || host->stopped)
		return;
	/* The supervisor answers until the workers are gone, so an operator can watch the stop. */
	if (host->control && control_stop(host->control))
		return;
	if (!has_children()) {
		log_info("all workers stopped");
		host->stopped = true;
		loop_quit(host->loop);
		return;
	}
	if (!host->orphans_signalled) {
		host->orphans_signalled = true;
		kill_orphans(host, host->stop_requests > 1 ? SIGKILL : SIGTERM, false);
		(void)loop_timer_start(host->loop, &host->orphan_timer, HOST_ORPHAN_STOP_TIMEOUT);
	}
}

/* Tells systemd how the host is doing: READY=1 once every service is at its count for the
 * first time (and after each rolling restart), STATUS= whenever the summary changes. */
static void
report_to_systemd(struct host *host)
{
	if (!host->systemd || host->stop_requests)
		return;
	char text[sizeof(host->systemd_status)];
	size_t length = 0;
	bool all_ready = true;
	text[0] = '\0';
	for (size_t i = 0; i < host->service_count && length < sizeof(text); i++) {
		const struct service *service = host->services[i];
		unsigned ready = service_ready_count(service);
		all_ready = all_ready && ready >= service->config->count;
		int n = snprintf(text + length, sizeof(text) - length, "%s%s %u/%u ready",
				 i ? ", " : "", service->name, ready, service->config->count);
		if (n > 0)
			length += (size_t)n;
	}
	if (length < sizeof(text))
		snprintf(text + length, sizeof(text) - length, ", generation %u", host->generation);
	if (all_ready && !host->systemd_ready_sent && !host->restart_running) {
		host->systemd_ready_sent = true;
		snprintf(host->systemd_status, sizeof(host->systemd_status), "%s", text);
		sdnotify_send(host->systemd, "READY=1\nSTATUS=%s", text);
	} else if (strcmp(text, host->systemd_status) != 0) {
		snprintf(host->systemd_status, sizeof(host->systemd_status), "%s", text);
		sdnotify_send(host->systemd, "STATUS=%s", text);
	}
}

static void
on_watchdog(struct loop *loop, void *data)
{
	struct host *host = data;
	sdnotify_send(host->systemd, "WATCHDOG=1");
	(void)loop_timer_start(loop, &host->watchdog_timer, host->watchdog_interval);
}

static void
stop(struct host *host, int signal)
{
	host->stop_requests++;
	/* Restarts still waiting will not run: their askers get an answer, not silence. */
	while (host->restart_queue) {
		struct restart_request *request = host->restart_queue;
		host->restart_queue = request->next;
		if (request->fn)
			request->fn(host, host->generation, "the host is stopping", request->data);
		free(request->service);
		free(request);
	}
	if (host->stop_requests == 1) {
		sdnotify_send(host->systemd, "STOPPING=1\nSTATUS=stopping");
		log_info("received SIG%s: stopping gracefully (again to stop at once)",
			 signame_name(signal));
		for (size_t i = 0; i < host->service_count; i++)
			service_stop(host->services[i]);
	} else {
		log_warn("received SIG%s again: killing every worker", signame_name(signal));
		for (size_t i = 0; i < host->service_count; i++)
			service_kill(host->services[i]);
		/* Everything else: the supervisor process and any orphan. */
		kill_orphans(host, SIGKILL, true);
	}
	check_stopped(host);
}

static void
reap(struct host *host)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			break;
		bool found = host->control && control_child_exited(host->control, pid, status);
		for (size_t i = 0; i < host->service_count && !found; i++)
			found = service_child_exited(host->services[i], pid, status);
		if (!found)
			log_debug("reaped orphan %d (wait status %#x)", (int)pid, (unsigned)status);
	}
	check_stopped(host);
}

/* Drops configs that no service uses any more. The newest is always kept. */
static void
release_configs(struct host *host)
{
	size_t kept = 0;
	for (size_t c = 0; c < host->config_count; c++) {
		struct config *config = host->configs[c];
		bool used = c + 1 == host->config_count;
		for (size_t i = 0; i < host->service_count && !used; i++) {
			struct service *service = host->services[i];
			for (size_t s = 0; s < config->service_count; s++)
				if (service->config == &config->services[s] ||
				    service->roll_config == &config->services[s])
					used = true;
		}
		if (used) {
			host->configs[kept++] = config;
		} else {
			config_free(config);
			free(config);
		}
	}
	host->config_count = kept;
}

static void restart_next(struct host *host);

static void
restart_finish(struct host *host)
{
	struct restart_request *request = host->restart_running;
	host->restart_running = NULL;
	const char *error = host->restart_error[0] ? host->restart_error : NULL;
	if (error)
		log_warn("rolling restart failed: %s", error);
	else
		log_info("rolling restart to generation %u done", host->generation);
	release_configs(host);
	/* systemd's notify-reload: the reload is over, whichever way it went. */
	if (host->systemd && !host->stop_requests) {
		host->systemd_ready_sent = false;
		report_to_systemd(host);
	}
	if (request->fn)
		request->fn(host, host->generation, error, request->data);
	free(request->service);
	free(request);
	restart_next(host);
}

static struct service *
find_service(struct host *host, const char *name)
{
	for (size_t i = 0; i < host->service_count; i++)
		if (strcmp(host->services[i]->name, name) == 0)
			return host->services[i];
	return NULL;
}

static const struct config_service *
find_config_service(const struct config *config, const char *name)
{
	for (size_t i = 0; i < config->service_count; i++)
		if (strcmp(config->services[i].name, name) == 0)
			return &config->services[i];
	return NULL;
}

/* Reads the config file again. On success the new config becomes current. */
static int
reload_config(struct host *host)
{
	if (host->config_count == HOST_MAX_CONFIGS) {
		snprintf(host->restart_error, sizeof(host->restart_error),
			 "too many generations still stopping; try again later");
		return -EBUSY;
	}
	struct config *config = calloc(1, sizeof(*config));
	if (!config)
		return -ENOMEM;
	char error[400];
	int r = config_load(host->config_path, config, error, sizeof(error));
	if (r < 0) {
		free(config);
		snprintf(host->restart_error, sizeof(host->restart_error),
			 "config not reloaded: %s", error);
		return r;
	}
	/* Services come and go with a host restart; a reload rolls the ones both configs have. */
	for (size_t i = 0; i < host->service_count; i++)
		if (!find_config_service(config, host->services[i]->name))
			log_warn("service %s is gone from %s: it keeps running until the host "
				 "restarts",
				 host->services[i]->name, host->config_path);
	for (size_t i = 0; i < host->service_count; i++) {
		const struct config_service *next =
		    find_config_service(config, host->services[i]->name);
		bool same = next && next->listen_count == host->services[i]->listen_count;
		for (size_t l = 0; same && l < next->listen_count; l++)
			same = strcmp(next->listen[l], host->services[i]->listen_specs[l]) == 0;
		if (next && !same)
			log_warn(
			    "service %s: listen changed in %s: the sockets bound at start stay "
			    "until the host restarts",
			    host->services[i]->name, host->config_path);
	}
	for (size_t i = 0; i < config->service_count; i++)
		if (!find_service(host, config->services[i].name))
			log_warn("service %s is new in %s: it starts when the host restarts",
				 config->services[i].name, host->config_path);
	host->configs[host->config_count++] = config;
	log_info("reloaded %s", host->config_path);
	return 0;
}

static void
restart_next(struct host *host)
{
	struct restart_request *request = host->restart_queue;
	if (!request || host->restart_running || host->stop_requests)
		return;
	host->restart_queue = request->next;
	host->restart_running = request;
	host->restart_error[0] = '\0';
	host->restart_services_pending = 0;

	if (request->reload && reload_config(host) < 0) {
		restart_finish(host);
		return;
	}
	struct service *only = NULL;
	if (request->service) {
		only = find_service(host, request->service);
		if (!only) {
			snprintf(host->restart_error, sizeof(host->restart_error),
				 "no service named \"%s\"", request->service);
			restart_finish(host);
			return;
		}
	}
	host->generation++;
	if (host->systemd) {
		struct timespec now;
		(void)clock_gettime(CLOCK_MONOTONIC, &now);
		sdnotify_send(host->systemd,
			      "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=rolling restart "
			      "to generation %u",
			      (unsigned long long)now.tv_sec * 1000000ULL +
				  (unsigned long long)now.tv_nsec / 1000,
			      host->generation);
	}
	/* One count held for this loop itself: a service whose workers are ready at once
	 * (ready = none) reports before service_roll returns, and the restart must not be
	 * finished while other services have yet to start theirs. */
	host->restart_services_pending = 1;
	for (size_t i = 0; i < host->service_count; i++) {
		struct service *service = host->services[i];
		const struct config_service *config =
		    find_config_service(current_config(host), service->name);
		if ((only && service != only) || !config)
			continue;
		host->restart_services_pending++;
		int r = service_roll(service, host->generation, config);
		if (r < 0) {
			host->restart_services_pending--;
			snprintf(host->restart_error, sizeof(host->restart_error), "%s: %s",
				 service->name, strerror(-r));
		}
	}
	if (--host->restart_services_pending == 0)
		restart_finish(host);
}

void
host_restart(struct host *host, const char *service, bool reload, host_restart_fn fn, void *data)
{
	if (host->stop_requests) {
		if (fn)
			fn(host, host->generation, "the host is stopping", data);
		return;
	}
	struct restart_request *request = calloc(1, sizeof(*request));
	if (!request || (service && !(request->service = strdup(service)))) {
		free(request);
		if (fn)
			fn(host, host->generation, "out of memory", data);
		return;
	}
	request->reload = reload;
	request->fn = fn;
	request->data = data;
	struct restart_request **tail = &host->restart_queue;
	while (*tail)
		tail = &(*tail)->next;
	*tail = request;
	if (host->restart_running)
		log_info("rolling restart queued behind the one under way");
	restart_next(host);
}

static void
on_service_event(struct service *service, enum service_event event, const char *message, void *data)
{
	struct host *host = data;
	(void)service;
	switch (event) {
	case SERVICE_STOPPED:
		host->services_stopped++;
		check_stopped(host);
		break;
	case SERVICE_ROLL_FAILED:
		if (message && !host->restart_error[0])
			snprintf(host->restart_error, sizeof(host->restart_error), "%s", message);
		/* fall through */
	case SERVICE_ROLL_DONE:
		if (host->restart_running && --host->restart_services_pending == 0)
			restart_finish(host);
		break;
	case SERVICE_CHANGED:
		report_to_systemd(host);
		break;
	}
}

/* A restart asked for through the supervisor: answered when it ends. */
struct pending_restart {
	struct host *host;
	struct control_ticket ticket;
};

static void
on_restart_done(struct host *host, unsigned generation, const char *message, void *data)
{
	struct pending_restart *pending = data;
	if (message) {
		control_reply_error(host->control, pending->ticket, PROTOCOL_CODE_RESTART_FAILED,
				    message);
	} else {
		char reply[64];
		int length =
		    snprintf(reply, sizeof(reply), "{\"ok\":true,\"generation\":%u}", generation);
		control_reply(host->control, pending->ticket, reply, (size_t)length);
	}
	free(pending);
}

/* The requests the supervisor process passes on (it answers metrics itself). */
static void
on_control_request(struct control *control, const struct control_request *request, void *data)
{
	struct host *host = data;
	switch (request->command) {
	case COMMAND_STATUS: {
		char *status;
		ssize_t length = host_status_encode(host, &status);
		if (length < 0) {
			control_reply_error(control, request->ticket, PROTOCOL_CODE_INTERNAL,
					    "out of memory");
			return;
		}
		control_reply(control, request->ticket, status, (size_t)length);
		free(status);
		return;
	}
	case COMMAND_RESTART: {
		struct pending_restart *pending = malloc(sizeof(*pending));
		if (!pending) {
			control_reply_error(control, request->ticket, PROTOCOL_CODE_INTERNAL,
					    "out of memory");
			return;
		}
		*pending = (struct pending_restart){host, request->ticket};
		log_info("rolling restart of %s asked for by the supervisor",
			 request->service ? request->service : "every service");
		host_restart(host, request->service, false, on_restart_done, pending);
		return;
	}
	case COMMAND_METRICS: /* the supervisor process answers it */
	case COMMAND_COUNT:
		break;
	}
	control_reply_error(control, request->ticket, PROTOCOL_CODE_UNKNOWN_COMMAND,
			    "unknown command");
}

static void
on_notify(const struct notify_message *message, void *data)
{
	struct host *host = data;
	/* The worker itself, or a process in its group (a wrapper's child, as systemd's
	 * NotifyAccess=all allows). */
	pid_t pgid = getpgid(message->pid);
	for (size_t i = 0; i < host->service_count; i++) {
		if (service_notified(host->services[i], message->pid, message->ready,
				     message->watchdog, message->status) ||
		    (pgid > 0 && service_notified(host->services[i], pgid, message->ready,
						  message->watchdog, message->status)))
			return;
	}
	log_debug("notify message from pid %d, not a worker: ignored", (int)message->pid);
}

/* SIGUSR1, as after a log rotation: the file is opened again under its name. */
static void
reopen_log(struct host *host)
{
	const char *path = current_config(host)->log_path;
	if (!path) {
		log_info("received SIGUSR1: logs go to stderr, nothing to reopen");
		return;
	}
	int r = log_to_file(path);
	if (r < 0)
		log_errno(LOG_ERROR, r, "received SIGUSR1: cannot reopen %s; logging on", path);
	else
		log_info("received SIGUSR1: reopened %s", path);
}

static void
on_signal(struct loop *loop, int signal, void *data)
{
	struct host *host = data;
	(void)loop;
	switch (signal) {
	case SIGCHLD:
		reap(host);
		break;
	case SIGINT:
	case SIGTERM:
		stop(host, signal);
		break;
	case SIGHUP:
		if (host->stop_requests)
			break;
		log_info("received SIGHUP: reloading the config and restarting");
		host_restart(host, NULL, true, NULL, NULL);
		break;
	case SIGUSR1:
		reopen_log(host);
		break;
	}
}

static int
setup_signals(struct host *host)
{
	/* A worker's closed pipe must not kill the host; workers get SIGPIPE back at exec. */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		return -errno;
	static const int signals[] = {SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGUSR1};
	return loop_signals(host->loop, signals, sizeof(signals) / sizeof(signals[0]), on_signal,
			    host);
}

static void
host_free(struct host *host)
{
	for (size_t i = 0; host->services && i < host->service_count; i++)
		service_free(host->services[i]);
	free(host->services);
	/* Each request's fn owns what it was given (control.c's pending replies). */
	if (host->restart_running) {
		host->restart_running->next = host->restart_queue;
		host->restart_queue = host->restart_running;
		host->restart_running = NULL;
	}
	for (struct restart_request *r = host->restart_queue, *next; r; r = next) {
		next = r->next;
		if (r->fn)
			r->fn(host, host->generation, "the host is stopping", r->data);
		free(r->service);
		free(r);
	}
	control_close(host->control);
	notify_close(host->notify);
	loop_timer_stop(host->loop, &host->watchdog_timer);
	sdnotify_close(host->systemd);
	loop_timer_stop(host->loop, &host->orphan_timer);
	loop_free(host->loop);
	for (size_t i = 0; i < host->config_count; i++) {
		config_free(host->configs[i]);
		free(host->configs[i]);
	}
}

static void
seed_jitter(void)
{
	unsigned seed;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = (unsigned)getpid() ^ (unsigned)loop_now();
	srandom(seed);
}

int
host_main(const char *config_path, bool init)
{
	struct host host = {.config_path = config_path};
	/* Sockets systemd passed to the host (socket activation) go to the listen lines bound to
	 * the same address; the rest are bound later. Taken first, before this process opens
	 * any fd of its own. */
	struct listen_inherited inherited;
	if (listen_inherit(&inherited) < 0) {
		log_error("out of memory");
		return 1;
	}
	struct config *config = calloc(1, sizeof(*config));
	if (!config) {
		log_error("out of memory");
		listen_inherited_release(&inherited);
		return 1;
	}
	char error[512];
	int r = config_load(config_path, config, error, sizeof(error));
	if (r < 0) {
		fprintf(stderr, "aerie: %s\n", error);
		free(config);
		listen_inherited_release(&inherited);
		return 2;
	}
	host.configs[host.config_count++] = config;
	log_set_json(config->log_format == CONFIG_LOG_JSON);
	if (config->log_path) {
		r = log_to_file(config->log_path);
		if (r < 0) {
			fprintf(stderr, "aerie: %s: log: %s\n", config->path, strerror(-r));
			listen_inherited_release(&inherited);
			host_free(&host);
			return 1;
		}
	}
	seed_jitter();
	r = sdnotify_open(&host.systemd);
	if (r < 0)
		log_errno(LOG_WARN, r, "cannot notify the service manager");

	r = loop_new(&host.loop);
	if (r < 0) {
		log_errno(LOG_ERROR, r, "cannot create the event loop");
		goto out;
	}
	loop_timer_init(&host.orphan_timer, on_orphan_deadline, &host);
	loop_timer_init(&host.watchdog_timer, on_watchdog, &host);
	host.watchdog_interval = host.systemd ? sdnotify_watchdog_seconds() / 2 : 0;
	if (host.watchdog_interval > 0)
		(void)loop_timer_start(host.loop, &host.watchdog_timer, host.watchdog_interval);
	r = setup_signals(&host);
	if (r < 0) {
		log_errno(LOG_ERROR, r, "cannot set up signal handling");
		goto out;
	}
	/* Orphans of workers (double-forked daemons) come to the host, which reaps and stops
	 * them, instead of going to init. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		log_errno(LOG_WARN, -errno, "cannot become a subreaper; orphans go to init");
	r = notify_open(host.loop, on_notify, &host, &host.notify);
	if (r < 0) {
		log_errno(LOG_ERROR, r, "cannot open the notify socket");
		goto out;
	}
	r = control_open(host.loop, config, on_control_request, &host, &host.control, error,
			 sizeof(error));
	if (r < 0) {
		log_error("%s", error);
		goto out;
	}
	host.services = calloc(config->service_count, sizeof(*host.services));
	if (!host.services) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < config->service_count; i++) {
		r = service_new(&config->services[i], host.loop, notify_address(host.notify),
				on_service_event, &host, &host.services[i]);
		if (r < 0)
			goto out;
		host.service_count++;
		/* Bound before any worker runs, so that the first generation inherits them. */
		r = service_open_sockets(host.services[i], config->directory, &inherited, error,
					 sizeof(error));
		if (r < 0) {
			log_error("%s", error);
			goto out;
		}
	}

	listen_inherited_release(&inherited);
	log_info("aerie %s host %d: %s, %zu service%s%s", AERIE_VERSION, (int)getpid(),
		 config->path, config->service_count, config->service_count == 1 ? "" : "s",
		 init ? "; as init: reaping every orphan" : "");
	host.generation = 1;
	host.started_at = loop_now_seconds();
	control_start(host.control);
	for (size_t i = 0; i < host.service_count; i++) {
		r = service_start(host.services[i], host.generation);
		if (r < 0) {
			log_errno(LOG_ERROR, r, "cannot start service %s", host.services[i]->name);
			stop(&host, SIGTERM);
			break;
		}
	}
	r = loop_run(host.loop);
	if (r < 0)
		log_errno(LOG_ERROR, r, "event loop failed");
	else
		log_info("host %d exiting", (int)getpid());

out:
	listen_inherited_release(&inherited);
	host_free(&host);
	return r < 0 ? 1 : host.exit_code;
}

ssize_t
host_status_encode(const struct host *host, char **ret_text)
{
	struct status_host status = {
	    .pid = getpid(),
	    .uptime = loop_now_seconds() - host->started_at,
	    .generation = host->generation,
	    .stopping = host->stop_requests > 0,
	};
	return status_encode(&status, host->services, host->service_count, ret_text);
}
