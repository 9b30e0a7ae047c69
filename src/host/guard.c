/* guard: the guard process, forked by the host at start-up, and the host's side of its pipe:
 * the process groups of the host's workers die with the host, children and all. */
#include "host/guard.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/cgroup.h"
#include "lib/limits.h"
#include "lib/log.h"
#include "lib/loop.h"

enum guard_type { GUARD_ADD = 1, GUARD_REMOVE, GUARD_DONE };

/* One message from the host. Smaller than PIPE_BUF, so that each write is whole or fails
 * whole (EAGAIN), and the guard never reads half of one. */
struct guard_message {
	int32_t type;
	int32_t pgid;
};

/* The host's side: one guard per host, as there is one log per process. */
static struct {
	int fd; /* the pipe's write end, non-blocking; -1: no guard (any more) */
	struct loop *loop;
	bool warned; /* a message was lost: said once */
} host_side = {.fd = -1};

/* The guard's list: a bit per possible pid, so that it is made at start, can't be full and
 * needs no allocation. In the bss of every aerie process; only the guard touches it, and only
 * the pages holding a listed pid become memory. */
static uint64_t groups[GUARD_MAX_PID / 64];

static void
groups_set(pid_t pgid, bool listed)
{
	if (pgid <= 0 || pgid >= GUARD_MAX_PID)
		return;
	uint64_t bit = UINT64_C(1) << ((unsigned)pgid % 64);
	if (listed)
		groups[(unsigned)pgid / 64] |= bit;
	else
		groups[(unsigned)pgid / 64] &= ~bit;
}

/* The host is gone. A group still listed is one whose worker the host had not reaped, and
 * kill(-pgid) can reach no stranger in practice: a process group id stays in use, and is
 * never given to a new process, while any member of the group lives (the kernel frees a pid
 * number only once no process has it as its pid, group or session); a group with no member
 * left gets ESRCH. A stranger would need the pid number to be handed out again, as a new
 * group's id, between the last member's death and this call: a wraparound of every pid in
 * milliseconds. The guard kills as soon as it reads the end of the pipe, before it logs. */
static size_t
groups_kill(void)
{
	size_t killed = 0;
	for (size_t word = 0; word < sizeof(groups) / sizeof(groups[0]); word++) {
		for (uint64_t bits = groups[word]; bits; bits &= bits - 1) {
			pid_t pgid = (pid_t)(word * 64 + (size_t)__builtin_ctzll(bits));
			if (kill(-pgid, SIGKILL) == 0)
				killed++;
		}
	}
	return killed;
}

/* The guard's set-up: only the pipe (moved to fd 3) and stderr are left open, stderr for the
 * one line it writes when the host dies. No listening socket the host inherited, no log file
 * reopened later, no terminal on stdin: what the guard holds keeps nothing busy. */
static int
keep_only(int fd)
{
	if (fd != 3) {
		if (dup2(fd, 3) < 0)
			return -errno;
		(void)close(fd);
	}
	if (close_range(4, ~0U, 0) < 0) {
		long max = sysconf(_SC_OPEN_MAX); /* Linux before 5.9 */
		for (long i = 4; i < max; i++)
			(void)close((int)i);
	}
	(void)close(STDIN_FILENO);
	(void)close(STDOUT_FILENO);
	return 3;
}

static _Noreturn void
guard_main(int fd, pid_t host)
{
	/* Out of the host's process group, so that a kill of that group (kill -9 -PGID of a
	 * terminal's job) leaves the guard to do its work; in the same session, so that it
	 * stays with the host's terminal and unit. Every signal an operator, a terminal or a
	 * service manager sends (INT, TERM, HUP, QUIT, TSTP …) is blocked: the guard ends only
	 * by reading the pipe to its end or "done", or by SIGKILL (systemd's last step), which
	 * is never blocked. PR_SET_PDEATHSIG was cleared by fork: the death of the process it
	 * guards does not take it along. */
	(void)setpgid(0, 0);
	sigset_t all;
	sigfillset(&all);
	(void)sigprocmask(SIG_SETMASK, &all, NULL);
	(void)prctl(PR_SET_NAME, "aerie-guard", 0, 0, 0);
	(void)chdir("/");
	fd = keep_only(fd);
	if (fd < 0)
		_exit(1);

	struct guard_message messages[512];
	size_t kept = 0; /* bytes of a message read in part (never, with whole writes) */
	for (;;) {
		ssize_t n = read(fd, (char *)messages + kept, sizeof(messages) - kept);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* the host's end is closed: it is gone */
		size_t total = kept + (size_t)n;
		size_t count = total / sizeof(messages[0]);
		for (size_t i = 0; i < count; i++) {
			if (messages[i].type == GUARD_DONE)
				_exit(0);
			groups_set(messages[i].pgid, messages[i].type == GUARD_ADD);
		}
		kept = total % sizeof(messages[0]);
		memmove(messages, (char *)messages + count * sizeof(messages[0]), kept);
	}
	size_t killed = groups_kill();
	log_warn("the host %d died without stopping its workers: killed %zu process group%s they "
		 "left",
		 (int)host, killed, killed == 1 ? "" : "s");
	/* And what left those groups (setsid) in the services' cgroups; the cgroups go. */
	size_t busy = cgroup_sweep_orphaned();
	if (busy > 0)
		log_warn("%zu cgroup%s of the host %d still hold processes; left in place", busy,
			 busy == 1 ? "" : "s", (int)host);
	_exit(0);
}

/* Forked twice, the guard is the child of whoever adopts orphans (init, or a subreaper above
 * the host), not the host's: the host's tree, its reaping and its sweeps of orphans stay as
 * they are. It learns of the host's death from the pipe alone, as OpenSSH's privilege-separated
 * child learns of its monitor's, not from being its child. */
int
guard_start(void)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	int r = 0;
	/* The host never waits for the guard: a message that does not fit is lost and logged. */
	if (fcntl(fds[1], F_SETFL, O_NONBLOCK) < 0) {
		r = -errno;
		goto fail;
	}
	if (fcntl(fds[1], F_SETPIPE_SZ, GUARD_PIPE_SIZE) < 0)
		log_errno(LOG_DEBUG, -errno, "guard: pipe of %d bytes", GUARD_PIPE_SIZE);
	pid_t host = getpid();
	pid_t middle = fork();
	if (middle < 0) {
		r = -errno;
		goto fail;
	}
	if (middle == 0) {
		(void)close(fds[1]);
		pid_t pid = fork();
		if (pid == 0)
			guard_main(fds[0], host);
		_exit(pid < 0 ? 1 : 0);
	}
	(void)close(fds[0]);
	int status = 0;
	while (waitpid(middle, &status, 0) < 0) {
		if (errno != EINTR) {
			status = -1;
			break;
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		(void)close(fds[1]);
		return -EAGAIN; /* the second fork failed */
	}
	host_side.fd = fds[1];
	return 0;

fail:
	(void)close(fds[0]);
	(void)close(fds[1]);
	return r;
}

static void
forget_guard(void)
{
	if (host_side.loop)
		loop_remove(host_side.loop, host_side.fd);
	(void)close(host_side.fd);
	host_side.fd = -1;
}

/* The read end is closed: the guard is gone (killed by someone). It is not started again:
 * a new one would not know the groups that exist. */
static void
on_guard_gone(struct loop *loop, int fd, uint32_t events, void *data)
{
	(void)loop;
	(void)fd;
	(void)events;
	(void)data;
	log_warn("the guard process is gone: if the host dies, what its workers started outlives "
		 "it");
	forget_guard();
}

int
guard_attach(struct loop *loop)
{
	if (host_side.fd < 0)
		return 0;
	/* No events asked for: epoll reports EPOLLERR on a pipe's write end without readers. */
	int r = loop_add(loop, host_side.fd, 0, on_guard_gone, NULL);
	if (r == 0)
		host_side.loop = loop;
	return r;
}

static void
send_message(enum guard_type type, pid_t pgid)
{
	if (host_side.fd < 0)
		return;
	struct guard_message message = {(int32_t)type, (int32_t)pgid};
	ssize_t n;
	do
		n = write(host_side.fd, &message, sizeof(message));
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(message))
		return;
	int error = n < 0 ? -errno : -EIO;
	if (error == -EPIPE) {
		on_guard_gone(host_side.loop, host_side.fd, 0, NULL);
		return;
	}
	if (!host_side.warned)
		log_errno(LOG_WARN, error,
			  "the guard process is not reading its pipe: if the host dies, a process "
			  "group it was not told of outlives it");
	host_side.warned = true;
}

void
guard_add(pid_t pgid)
{
	send_message(GUARD_ADD, pgid);
}

void
guard_remove(pid_t pgid)
{
	send_message(GUARD_REMOVE, pgid);
}

void
guard_done(void)
{
	if (host_side.fd < 0)
		return;
	send_message(GUARD_DONE, 0);
	if (host_side.fd >= 0)
		forget_guard();
}
