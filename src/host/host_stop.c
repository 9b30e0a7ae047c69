/* host_stop: how the host stops: its services, then the orphans of its workers, and the reaping
 * of every child. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/host_private.h"
#include "lib/log.h"
#include "lib/signame.h"

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

/* Whether pid is named in the log for the first time with the sweeps' signal. Each reap
 * sweeps again, so without this an orphan that ignores SIGTERM would be named at each reap of
 * another. Beyond HOST_ORPHANS_LOGGED of them, the rest are named at debug. */
static bool
first_time_named(struct host *host, pid_t pid)
{
	for (size_t i = 0; i < host->orphans_logged_count; i++)
		if (host->orphans_logged[i] == pid)
			return false;
	if (host->orphans_logged_count == HOST_ORPHANS_LOGGED)
		return false;
	host->orphans_logged[host->orphans_logged_count++] = pid;
	return true;
}

/* Signals every child of the host that is not a worker nor the supervisor process: orphans
 * of workers, reparented to the host (the subreaper). With all, every child. Returns how many
 * children the host has. */
static size_t
kill_orphans(struct host *host, int signal, bool all)
{
	/* The host is single-threaded: its children are all in its main task's list. Read one
	 * pid at a time: the list of 1000 children is longer than any fixed buffer. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
	FILE *file = fopen(path, "re");
	if (!file)
		return 0;
	size_t count = 0;
	char *word = NULL;
	size_t size = 0;
	while (getdelim(&word, &size, ' ', file) > 0) {
		char *end;
		long pid = strtol(word, &end, 10);
		if (end == word || pid <= 0)
			continue;
		count++;
		bool orphan = !is_known_child(host, (pid_t)pid);
		if (!orphan && !all)
			continue;
		if (orphan && first_time_named(host, (pid_t)pid))
			log_info("stopping orphan %ld with SIG%s", pid, signame_name(signal));
		else if (orphan)
			log_debug("stopping orphan %ld with SIG%s again", pid,
				  signame_name(signal));
		(void)kill((pid_t)pid, signal);
	}
	free(word);
	fclose(file);
	return count;
}

/* From now on the sweeps send signal; the log names each orphan once more with it. */
static void
set_orphan_signal(struct host *host, int signal)
{
	if (host->orphan_signal == signal)
		return;
	host->orphan_signal = signal;
	host->orphans_logged_count = 0;
}

/* SIGKILL to every worker, the supervisor process and every orphan; the sweeps go on with it.
 * Whatever is still there HOST_STOP_KILL_WAIT later can't be killed (a process in
 * uninterruptible sleep): the host does not wait for it. */
static void
kill_everything(struct host *host)
{
	set_orphan_signal(host, SIGKILL);
	for (size_t i = 0; i < host->service_count; i++)
		service_kill(host->services[i]);
	(void)kill_orphans(host, SIGKILL, true);
	if (host->killing)
		return; /* the wait is not pushed back by each new request to stop */
	host->killing = true;
	loop_timer_stop(host->loop, &host->orphan_timer);
	(void)loop_timer_start(host->loop, &host->stop_timer, HOST_STOP_KILL_WAIT);
}

/* The longest stop_timeout of the configs in use: older generations keep theirs. */
static double
longest_stop_timeout(const struct host *host)
{
	double longest = 0;
	for (size_t i = 0; i < host->config_count; i++)
		for (size_t j = 0; j < host->configs[i]->service_count; j++)
			if (host->configs[i]->services[j].stop_timeout > longest)
				longest = host->configs[i]->services[j].stop_timeout;
	return longest;
}

static bool
has_children(void)
{
	siginfo_t info = {0};
	return waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0;
}

void
host_on_orphan_deadline(struct loop *loop, void *data)
{
	(void)loop;
	struct host *host = data;
	set_orphan_signal(host, SIGKILL);
	host_check_stopped(host);
}

void
host_on_stop_deadline(struct loop *loop, void *data)
{
	(void)loop;
	struct host *host = data;
	if (host->stopped)
		return;
	if (!host->killing) {
		log_warn(
		    "still stopping %.1f s after the longest stop_timeout: killing everything left",
		    (double)HOST_STOP_GRACE);
		kill_everything(host);
		return;
	}
	size_t left = kill_orphans(host, SIGKILL, true);
	log_error("%zu process%s left %.1f s after SIGKILL (in uninterruptible sleep?): exiting "
		  "without waiting for them",
		  left, left == 1 ? "" : "es", (double)HOST_STOP_KILL_WAIT);
	host->stopped = true;
	loop_quit(host->loop);
}

/* When stopping, the host is done once every service has stopped and no child is left. Called
 * at each reap: each sweeps the orphans again, for a process may have come to the host (its
 * parent died) since the last sweep, and would otherwise never get a signal. */
void
host_check_stopped(struct host *host)
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
		if (!host->orphan_signal)
			set_orphan_signal(host, SIGTERM);
		if (host->orphan_signal == SIGTERM)
			(void)loop_timer_start(host->loop, &host->orphan_timer,
					       HOST_ORPHAN_STOP_TIMEOUT);
	}
	(void)kill_orphans(host, host->orphan_signal, false);
}

void
host_stop(struct host *host, int signal)
{
	host->stop_requests++;
	/* Restarts still waiting will not run: their askers get an answer, not silence. */
	host_restart_cancel_queued(host);
	if (host->stop_requests == 1) {
		sdnotify_send(host->systemd, "STOPPING=1\nSTATUS=stopping");
		log_info("received SIG%s: stopping gracefully (again to stop at once)",
			 signame_name(signal));
		for (size_t i = 0; i < host->service_count; i++)
			service_stop(host->services[i]);
		/* However the workers and what they left behave, the stop ends. */
		(void)loop_timer_start(host->loop, &host->stop_timer,
				       longest_stop_timeout(host) + HOST_STOP_GRACE);
	} else {
		log_warn("received SIG%s again: killing every worker", signame_name(signal));
		/* Every worker, the supervisor process and any orphan. */
		kill_everything(host);
	}
	host_check_stopped(host);
}

void
host_reap(struct host *host)
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
	host_check_stopped(host);
}
