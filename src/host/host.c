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
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host/cgroup.h"
#include "host/control.h"
#include "host/guard.h"
#include "host/host_private.h"
#include "host/logs.h"
#include "host/notify.h"
#include "host/sdnotify.h"
#include "host/service.h"
#include "host/status.h"
#include "lib/limits.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/signame.h"
#include "metrics/metrics.h"

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
		/* A finished job (done) is as good as a ready worker, as for status --check. */
		all_ready = all_ready && ready + service_state_count(service, WORKER_DONE) >=
					     service->config->count;
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
on_service_event(struct service *service, enum service_event event, const char *message, void *data)
{
	struct host *host = data;
	switch (event) {
	case SERVICE_STOPPED:
		/* Its workers are gone; what they started in a session of their own, which no
		 * signal to their process groups reaches, goes now. */
		cgroup_service_kill(service->name);
		/* A service stopped by request (or a reload) is the operation's business; the
		 * host's own stop counts each service once it began. */
		if (host->stop_requests) {
			host->services_stopped++;
			host_check_stopped(host);
		}
		break;
	case SERVICE_ROLL_FAILED:
		if (message && !host->restart_error[0])
			snprintf(host->restart_error, sizeof(host->restart_error), "%s", message);
		/* fall through */
	case SERVICE_ROLL_DONE:
		if (host->restart_running && --host->restart_services_pending == 0)
			host_restart_finish(host);
		break;
	case SERVICE_CHANGED:
		host->systemd_changed = true;
		break;
	}
}

/* The loop's before-wait hook, the one place where what callbacks raised is done: each
 * service's queued events (which may end a roll, which may let the next restart start, which
 * raises more), until nothing is left; then systemd hears the turn's outcome once. */
static void
on_before_wait(struct loop *loop, void *data)
{
	struct host *host = data;
	(void)loop;
	bool busy;
	do {
		busy = false;
		for (size_t i = 0; i < host->service_count; i++)
			busy = service_dispatch(host->services[i]) || busy;
		busy = host_operations_check(host) || busy;
		busy = host_restart_next(host) || busy;
	} while (busy);
	if (host->systemd_changed) {
		host->systemd_changed = false;
		report_to_systemd(host);
	}
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
	const char *path = host->configs[host->config_count - 1]->log_path;
	if (!path) {
		log_info("received SIGUSR1: logs go to stderr, nothing to reopen");
		return;
	}
	char error[512];
	int r = log_to_file(path, error, sizeof(error));
	if (r < 0)
		log_error("received SIGUSR1: cannot reopen %s; logging on: %s", path, error);
	else
		log_info("received SIGUSR1: reopened %s", path);
}

/* The journal's socket: systemd's, or AERIE_JOURNAL_SOCKET's (for tests and debugging). With
 * log_format = journal it must be there; under systemd with stderr going to the journal
 * (JOURNAL_STREAM) it is used when it answers, else stderr goes on as it is. */
static int
setup_journal(const struct config *config)
{
	const char *path = getenv("AERIE_JOURNAL_SOCKET");
	if (!path || !*path)
		path = "/run/systemd/journal/socket";
	if (config->log_format == CONFIG_LOG_JOURNAL)
		return log_to_journal(path);
	if (!config->log_path && log_stderr_is_journal())
		(void)log_to_journal(path);
	return 0;
}

static void
on_signal(struct loop *loop, int signal, void *data)
{
	struct host *host = data;
	(void)loop;
	switch (signal) {
	case SIGCHLD:
		host_reap(host);
		break;
	case SIGINT:
	case SIGTERM:
		host_stop(host, signal);
		break;
	case SIGHUP:
		if (host->stop_requests)
			break;
		log_info("received SIGHUP: reloading the config and applying the difference");
		host_restart(host, NULL, true, NULL, NULL);
		break;
	case SIGUSR1:
		reopen_log(host);
		for (size_t i = 0; i < host->service_count; i++)
			logs_reopen(host->services[i]->logs);
		break;
	}
}

static int
setup_signals(struct host *host)
{
	/* A worker's closed pipe must not kill the host; workers get SIGPIPE back at exec. */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		return -errno;
	/* Nor a log_file over RLIMIT_FSIZE: the write fails (EFBIG) and its lines are dropped. */
	if (signal(SIGXFSZ, SIG_IGN) == SIG_ERR)
		return -errno;
	static const int signals[] = {SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGUSR1};
	return loop_signals(host->loop, signals, sizeof(signals) / sizeof(signals[0]), on_signal,
			    host);
}

static void
host_free(struct host *host)
{
	/* Every worker has been reaped, or killed and waited for as long as the stop allows. */
	guard_done();
	cgroup_done();
	for (size_t i = 0; host->services && i < host->service_count; i++)
		service_free(host->services[i]);
	free(host->services);
	/* Each request's fn owns what it was given (control.c's pending replies). */
	if (host->restart_running) {
		host->restart_running->next = host->restart_queue;
		host->restart_queue = host->restart_running;
		host->restart_running = NULL;
	}
	host_restart_cancel_queued(host);
	host_operations_free(host);
	if (host->reload_report) {
		for (size_t i = 0; i < HOST_RELOAD_LISTS; i++)
			free(host->reload_report->lists[i].data);
		free(host->reload_report);
	}
	control_close(host->control);
	notify_close(host->notify);
	loop_timer_stop(host->loop, &host->watchdog_timer);
	sdnotify_close(host->systemd);
	loop_timer_stop(host->loop, &host->orphan_timer);
	loop_timer_stop(host->loop, &host->stop_timer);
	host_monitor_stop(host);
	loop_free(host->loop);
	for (size_t i = 0; i < host->config_count; i++) {
		config_free(host->configs[i]);
		free(host->configs[i]);
	}
}

/* The processes behind the services: real ones. data: the host. */
static int
spawn_worker(void *data, struct worker *worker, struct loop *loop, const struct worker_exec *exec)
{
	const struct host *host = data;
	struct worker_exec with = *exec;
	if (!with.nofile && host->nofile_raised)
		with.nofile = &host->nofile_inherited;
	if (exec->options) {
		int r = cgroup_service_fds(worker->service->name, exec->options, &with.cgroup_fd,
					   &with.cgroup_procs_fd);
		if (r < 0) {
			worker->spawn_failed_step = "making its cgroup (cgroup = yes)";
			return r;
		}
	}
	int r = worker_spawn(worker, loop, &with);
	if (r == 0)
		guard_add(worker->pid); /* the leader of its own group */
	return r;
}

static void
kill_worker(void *data, const struct worker *worker, int signal)
{
	(void)data;
	worker_kill(worker, signal);
}

static void
kill_main(void *data, const struct worker *worker, int signal)
{
	(void)data;
	if (worker->pid > 0)
		(void)kill(worker->pid, signal); /* ESRCH: it is gone, its reap is on the way */
}

static void
kill_group(void *data, pid_t pgid)
{
	(void)data;
	(void)kill(-pgid, SIGKILL);
	guard_remove(pgid);
}

/* The memory of a worker and all its descendants, by the configured measure. */
static uint64_t
tree_memory(void *data, pid_t pid, enum config_memory_metric metric)
{
	(void)data;
	struct metrics_tree tree;
	if (metrics_capture(pid, METRICS_WALK_CHILDREN, &tree) < 0)
		return 0;
	uint64_t total = 0;
	for (size_t i = 0; i < tree.count; i++)
		total += metric == CONFIG_MEMORY_RSS || !tree.processes[i].has_memory
			     ? tree.processes[i].resident_size
			     : tree.processes[i].memory.proportional_size;
	metrics_tree_free(&tree);
	return total;
}

/* The footprint of a worker's tree for memory_total_limit, leaks and memory_free_minimum. */
static bool
tree_footprint(void *data, pid_t pid, enum config_memory_metric metric,
	       struct worker_footprint *ret_footprint)
{
	(void)data;
	struct metrics_tree tree;
	if (metrics_capture(pid, METRICS_WALK_CHILDREN, &tree) < 0)
		return false;
	struct worker_footprint footprint = {0};
	for (size_t i = 0; i < tree.count; i++) {
		const struct metrics_process *p = &tree.processes[i];
		footprint.size += metric == CONFIG_MEMORY_RSS || !p->has_memory
				      ? p->resident_size
				      : p->memory.proportional_size;
		if (p->memory.shared_clean_size > footprint.shared_clean)
			footprint.shared_clean = p->memory.shared_clean_size;
		footprint.private_size += p->memory.unique_size;
	}
	metrics_tree_free(&tree);
	*ret_footprint = footprint;
	return true;
}

/* The host holds a pipe per worker and a socket per client: it raises its soft limit of open
 * files to the hard one, as systemd does for itself, and keeps the limit it was started with
 * for its workers (spawn_worker). */
static void
raise_nofile(struct host *host)
{
	struct rlimit limit;
	if (getrlimit(RLIMIT_NOFILE, &limit) < 0 || limit.rlim_cur >= limit.rlim_max)
		return;
	struct rlimit raised = {limit.rlim_max, limit.rlim_max};
	if (setrlimit(RLIMIT_NOFILE, &raised) < 0) {
		log_errno(LOG_WARN, -errno, "cannot raise the limit of open files to %llu",
			  (unsigned long long)raised.rlim_cur);
		return;
	}
	host->nofile_inherited = limit;
	host->nofile_raised = true;
}

/* cgroup_setup unless no service wants a cgroup; a start error if one says cgroup = yes and
 * none can be had. */
static int
setup_cgroup(const struct config *config)
{
	const struct config_service *required = NULL;
	bool wanted = false;
	for (size_t i = 0; i < config->service_count; i++) {
		enum config_cgroup cgroup = config->services[i].exec.cgroup;
		wanted = wanted || cgroup != CONFIG_CGROUP_NO;
		if (cgroup == CONFIG_CGROUP_YES && !required)
			required = &config->services[i];
	}
	if (!wanted || cgroup_setup() == 0 || !required)
		return 0;
	fprintf(stderr, "aerie: %s: cgroup = yes in [service:%s], but %s\n", config->path,
		required->name, cgroup_unavailable_reason());
	return -EOPNOTSUPP;
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
	struct host host = {.config_path = config_path,
			    .on_service_event = on_service_event,
			    .reload_run = host_reload_run,
			    .reload_reply = host_reload_reply};
	worker_output_sink(&logs_sink); /* workers' lines, the supervisor process's too */
	raise_nofile(&host);
	const struct spawner processes = {
	    .spawn = spawn_worker,
	    .kill = kill_worker,
	    .kill_main = kill_main,
	    .kill_group = kill_group,
	    .memory = tree_memory,
	    .data = &host,
	    .footprint = tree_footprint,
	};
	host.spawner = processes;
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
	/* A start error, not a config error: the same file is right for a host run as root. */
	if (config_check_user(config, geteuid(), getegid(), error, sizeof(error)) < 0) {
		fprintf(stderr, "aerie: %s\n", error);
		config_free(config);
		free(config);
		listen_inherited_release(&inherited);
		return 1;
	}
	host.configs[host.config_count++] = config;
	log_set_json(config->log_format == CONFIG_LOG_JSON);
	r = setup_journal(config);
	if (r < 0) {
		fprintf(stderr, "aerie: %s: log_format = journal: %s\n", config->path,
			strerror(-r));
		listen_inherited_release(&inherited);
		host_free(&host);
		return 1;
	}
	if (config->log_path && config->log_format != CONFIG_LOG_JOURNAL) {
		r = log_to_file(config->log_path, error, sizeof(error));
		if (r < 0) {
			fprintf(stderr, "aerie: %s: log: %s\n", config->path, error);
			listen_inherited_release(&inherited);
			host_free(&host);
			return 1;
		}
	}
	seed_jitter();
	/* Before the host starts any other process (the guard): the host may have to move into a
	 * leaf cgroup, which moves it alone. */
	r = setup_cgroup(config);
	if (r < 0) {
		listen_inherited_release(&inherited);
		host_free(&host);
		return 1;
	}
	/* Before the host opens a socket of its own, becomes a subreaper or starts a worker. As
	 * PID 1 of a namespace the host needs none: its death kills every process in it. */
	if (getpid() != 1) {
		r = guard_start();
		if (r < 0)
			log_errno(LOG_WARN, r,
				  "cannot start the guard process; if the host is killed, "
				  "what its workers started outlives it");
	}
	r = sdnotify_open(&host.systemd);
	if (r < 0)
		log_errno(LOG_WARN, r, "cannot notify the service manager");

	r = loop_new(&host.loop);
	if (r < 0) {
		log_errno(LOG_ERROR, r, "cannot create the event loop");
		goto out;
	}
	loop_before_wait(host.loop, on_before_wait, &host);
	r = guard_attach(host.loop);
	if (r < 0)
		log_errno(LOG_WARN, r, "cannot watch the guard process");
	loop_timer_init(&host.orphan_timer, host_on_orphan_deadline, &host);
	loop_timer_init(&host.stop_timer, host_on_stop_deadline, &host);
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
	r = control_open(host.loop, config, host_on_control_request, &host, &host.control, error,
			 sizeof(error));
	if (r < 0) {
		log_error("%s", error);
		goto out;
	}
	control_on_follow(host.control, host_on_follow);
	host.services = calloc(config->service_count, sizeof(*host.services));
	if (!host.services) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < config->service_count; i++) {
		r = service_new(&config->services[i], host.loop, notify_address(host.notify),
				&processes, on_service_event, &host, &host.services[i]);
		if (r < 0)
			goto out;
		host.service_count++;
		r = service_set_utilization_path(host.services[i], config->supervisor_path);
		if (r < 0)
			goto out;
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
			host_stop(&host, SIGTERM);
			break;
		}
	}
	host_monitor_start(&host);
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
	/* The generation that serves, not the last one tried: a failed roll leaves it. */
	unsigned serving = host->service_count ? 0 : host->generation;
	for (size_t i = 0; i < host->service_count; i++)
		if (host->services[i]->generation > serving)
			serving = host->services[i]->generation;
	struct status_host status = {
	    .pid = getpid(),
	    .uptime = loop_now_seconds() - host->started_at,
	    .generation = serving,
	    .stopping = host->stop_requests > 0,
	    .service_memory = cgroup_service_memory,
	    .memory_free_minimum = host->memory_free_minimum > 0,
	};
	return status_encode(&status, host->services, host->service_count, ret_text);
}
