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

void
host_on_orphan_deadline(struct loop *loop, void *data)
{
	(void)loop;
	kill_orphans(data, SIGKILL, false);
}

/* When stopping, the host is done once every service has stopped and no child is left. */
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
		kill_orphans(host, host->stop_requests > 1 ? SIGKILL : SIGTERM, false);
		(void)loop_timer_start(host->loop, &host->orphan_timer, HOST_ORPHAN_STOP_TIMEOUT);
	}
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
	} else {
		log_warn("received SIG%s again: killing every worker", signame_name(signal));
		for (size_t i = 0; i < host->service_count; i++)
			service_kill(host->services[i]);
		/* Everything else: the supervisor process and any orphan. */
		kill_orphans(host, SIGKILL, true);
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
