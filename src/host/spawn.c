/* spawn: the start of one worker: its environment, kept from one run to the next, and the
 * child's async-signal-safe set-up (signals, process group, fds) on a reused stack until exec. */
#include "host/worker.h"

#include <errno.h>
#include <fcntl.h>
#if __has_include(<sanitizer/asan_interface.h>)
#include <sanitizer/asan_interface.h> /* a no-op without AddressSanitizer */
#else
#define ASAN_UNPOISON_MEMORY_REGION(address, size) ((void)(address), (void)(size))
#endif
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/config.h"
#include "host/spawn_child.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2) /* linux/close_range.h, not in every libc's headers */
#endif

extern char **environ;

/* Keys the host sets for each worker; inherited values of them are dropped. */
static const char *const own_keys[] = {
    "NOTIFY_SOCKET", "LISTEN_FDS",	 "LISTEN_PID",	  "LISTEN_FDNAMES", "AERIE_SERVICE",
    "AERIE_WORKER",  "AERIE_GENERATION", "WATCHDOG_USEC", "WATCHDOG_PID",   "AERIE_UTILIZATION",
};

static bool
key_matches(const char *entry, const char *key_value)
{
	const char *equals = strchr(key_value, '=');
	size_t length = equals ? (size_t)(equals - key_value) : strlen(key_value);
	return strncmp(entry, key_value, length) == 0 && entry[length] == '=';
}

/* Whether the config's env sets entry's key. */
static bool
set_by_config(const char *entry, const struct worker_exec *exec)
{
	for (size_t i = 0; i < exec->env_count; i++)
		if (key_matches(entry, exec->env[i]))
			return true;
	return false;
}

/* environ without the keys the host sets itself: the same for every worker, so found once
 * (environ doesn't change after start-up: see struct worker_environment). First spawns of
 * 1000 workers spent most of their time matching every inherited entry against own_keys. */
static int
inherited_entries(char *const **ret_entries, size_t *ret_count)
{
	static char **entries;
	static size_t count;
	if (!entries) {
		size_t total = 0;
		for (char **e = environ; *e; e++)
			total++;
		char **kept = calloc(total + 1, sizeof(*kept));
		if (!kept)
			return -ENOMEM;
		size_t n = 0;
		for (char **e = environ; *e; e++) {
			bool own = false;
			for (size_t i = 0; i < sizeof(own_keys) / sizeof(own_keys[0]) && !own; i++)
				own = key_matches(*e, own_keys[i]);
			if (!own)
				kept[n++] = *e;
		}
		entries = kept;
		count = n;
	}
	*ret_entries = entries;
	*ret_count = count;
	return 0;
}

/* A worker's environment, built in the parent (the child does only async-signal-safe work) at
 * its first spawn and kept in struct worker for the next ones: a respawn after a crash, which
 * runs from the reap path, allocates nothing. One allocation holds this header, the entries and
 * the text of every entry that isn't environ's. */
struct worker_environment {
	/* entries[0, inherited) point into environ, which the host leaves as it is after
	 * start-up (listen_inherit and sdnotify_open take LISTEN_* and NOTIFY_SOCKET out before
	 * the first spawn): which of them are kept depends on the config's keys alone. */
	size_t inherited;
	size_t count;	    /* before the NULL: then the config's entries, then the host's */
	char *listen_pid;   /* a slot of PID_SLOT_SIZE in entries that the child fills, or NULL */
	char *watchdog_pid; /* the same for WATCHDOG_PID */
	char *entries[];
};

#define PID_SLOT_SIZE 32

/* An entry the host sets: key (with its '=') and value, or with value NULL a slot for the
 * child's pid, which only the child knows before exec. */
struct own_entry {
	const char *key;
	const char *value;
};

/* The own_keys entries plus room. */
#define OWN_MAX 12

/* The text of the numbers among them. */
struct own_numbers {
	char index[16], generation[16], listen_count[24], watchdog_usec[24];
};

/* The entries the host sets for this spawn, in the order the child gets them, into own;
 * returns how many. Computed at every spawn (a few snprintfs, no allocation) to tell whether
 * the kept environment still fits. */
static size_t
own_entries(const struct worker *worker, const struct worker_exec *exec,
	    struct own_numbers *numbers, struct own_entry own[OWN_MAX])
{
	size_t count = 0;
	(void)snprintf(numbers->index, sizeof(numbers->index), "%u", worker->index);
	(void)snprintf(numbers->generation, sizeof(numbers->generation), "%u", worker->generation);
	own[count++] = (struct own_entry){"AERIE_SERVICE=", exec->service_name};
	own[count++] = (struct own_entry){"AERIE_WORKER=", numbers->index};
	own[count++] = (struct own_entry){"AERIE_GENERATION=", numbers->generation};
	if (exec->notify_socket)
		own[count++] = (struct own_entry){"NOTIFY_SOCKET=", exec->notify_socket};
	if (exec->listen_count > 0) {
		(void)snprintf(numbers->listen_count, sizeof(numbers->listen_count), "%zu",
			       exec->listen_count);
		own[count++] = (struct own_entry){"LISTEN_FDS=", numbers->listen_count};
		if (exec->listen_names)
			own[count++] = (struct own_entry){"LISTEN_FDNAMES=", exec->listen_names};
		own[count++] = (struct own_entry){"LISTEN_PID=", NULL};
	}
	if (exec->watchdog_seconds > 0) {
		(void)snprintf(numbers->watchdog_usec, sizeof(numbers->watchdog_usec), "%llu",
			       (unsigned long long)(exec->watchdog_seconds * 1e6));
		own[count++] = (struct own_entry){"WATCHDOG_USEC=", numbers->watchdog_usec};
		own[count++] = (struct own_entry){"WATCHDOG_PID=", NULL};
	}
	if (exec->utilization)
		own[count++] = (struct own_entry){"AERIE_UTILIZATION=", exec->utilization};
	return count;
}

static bool
own_entry_matches(const struct worker_environment *environment, const char *entry,
		  const struct own_entry *own)
{
	if (!own->value) /* the slot's text is the previous child's: which slot it is counts */
		return entry == (strcmp(own->key, "LISTEN_PID=") == 0 ? environment->listen_pid
								      : environment->watchdog_pid);
	size_t length = strlen(own->key);
	return strncmp(entry, own->key, length) == 0 && strcmp(entry + length, own->value) == 0;
}

/* Whether environment is what this spawn would build. A worker can be started again with other
 * inputs (after a rolling restart, its service passes the newer config), so the kept entries,
 * every input among them, are compared with the new ones by their text, not by the addresses
 * they came from: a config loaded again where a freed one was must not pass for it, and the
 * copies never point into a config that has been freed since. */
static bool
environment_fits(const struct worker_environment *environment, const struct worker_exec *exec,
		 const struct own_entry *own, size_t own_count)
{
	if (environment->count != environment->inherited + exec->env_count + own_count)
		return false;
	char *const *entry = environment->entries + environment->inherited;
	for (size_t i = 0; i < exec->env_count; i++)
		if (strcmp(*entry++, exec->env[i]) != 0)
			return false;
	for (size_t i = 0; i < own_count; i++)
		if (!own_entry_matches(environment, *entry++, &own[i]))
			return false;
	return true;
}

static int
environment_build(const struct worker_exec *exec, const struct own_entry *own, size_t own_count,
		  struct worker_environment **ret_environment)
{
	char *const *base;
	size_t base_count;
	int r = inherited_entries(&base, &base_count);
	if (r < 0)
		return r;
	size_t inherited = 0;
	for (size_t i = 0; i < base_count; i++)
		if (!set_by_config(base[i], exec))
			inherited++;
	size_t count = inherited + exec->env_count + own_count;
	size_t text_size = 0;
	for (size_t i = 0; i < exec->env_count; i++)
		text_size += strlen(exec->env[i]) + 1;
	for (size_t i = 0; i < own_count; i++)
		text_size +=
		    own[i].value ? strlen(own[i].key) + strlen(own[i].value) + 1 : PID_SLOT_SIZE;
	struct worker_environment *environment =
	    calloc(1, sizeof(*environment) + (count + 1) * sizeof(char *) + text_size);
	if (!environment)
		return -ENOMEM;
	environment->inherited = inherited;
	environment->count = count;

	size_t n = 0;
	for (size_t i = 0; i < base_count; i++)
		if (!set_by_config(base[i], exec))
			environment->entries[n++] = base[i];
	char *text = (char *)&environment->entries[count + 1];
	for (size_t i = 0; i < exec->env_count; i++) {
		environment->entries[n++] = text;
		text = stpcpy(text, exec->env[i]) + 1;
	}
	for (size_t i = 0; i < own_count; i++) {
		environment->entries[n++] = text;
		if (own[i].value) {
			text = stpcpy(stpcpy(text, own[i].key), own[i].value) + 1;
			continue;
		}
		/* Empty (calloc) until the child writes KEY=PID into it. */
		if (strcmp(own[i].key, "LISTEN_PID=") == 0)
			environment->listen_pid = text;
		else
			environment->watchdog_pid = text;
		text += PID_SLOT_SIZE;
	}
	*ret_environment = environment;
	return 0;
}

/* Which signals the host ignores (SIGPIPE, and any it inherited ignored), asked once: the host
 * sets its dispositions before the first spawn and never after. The child then resets just
 * those rather than all 64, a measurable part of a respawn. */
static const sigset_t *
ignored_signals(void)
{
	static sigset_t ignored;
	static bool known;
	if (!known) {
		sigemptyset(&ignored);
		for (int s = 1; s < NSIG; s++) {
			struct sigaction action;
			if (sigaction(s, NULL, &action) == 0 && action.sa_handler == SIG_IGN)
				sigaddset(&ignored, s);
		}
		known = true;
	}
	return &ignored;
}

CHILD_CODE static void
child_write(const char *text)
{
	size_t length = strlen(text);
	while (length > 0) {
		ssize_t n = write(STDERR_FILENO, text, length);
		if (n <= 0)
			return;
		text += n;
		length -= (size_t)n;
	}
}

/* "KEY=" and this process's pid into slot, without stdio. */
CHILD_CODE static void
child_write_pid(char *slot, const char *key)
{
	char digits[16];
	size_t n = 0;
	for (unsigned pid = (unsigned)getpid(); pid; pid /= 10)
		digits[n++] = (char)('0' + pid % 10);
	char *p = stpcpy(slot, key);
	while (n > 0)
		*p++ = digits[--n];
	*p = '\0';
}

CHILD_CODE static _Noreturn void
child_fail(const char *what, const char *argument, int error)
{
	child_write("aerie: ");
	child_write(what);
	child_write(" ");
	child_write(argument);
	child_write(": ");
	child_write(strerror(error));
	child_write("\n");
	/* Shell convention: 127 command not found, 126 found but not executable. */
	_exit(error == ENOENT ? 127 : 126);
}

/* What the child needs, on the parent's memory: the child shares it until execve. */
struct child {
	const struct worker_exec *exec;
	struct worker_environment *environment;
	int stdout_fd, stderr_fd;
	const sigset_t *ignored;
	pid_t parent; /* the host's pid */
	/* Written by the child when its set-up fails (no fd left, say), read by the host once
	 * the child is gone: a spawn that failed, not a worker that ran and crashed. */
	int error;
	const char *step; /* which step failed, static text */
	bool join_cgroup; /* the clone did not put the child into exec->cgroup_procs_fd's cgroup */
};

/* A step before exec failed: the host learns why from child->error (as posix_spawn reports
 * its child's errno) and which step from child->step, and retries later, rather than counting
 * a crash that says nothing. */
CHILD_CODE static _Noreturn void
child_abort(struct child *child, const char *step, int error)
{
	child->step = step;
	child->error = error > 0 ? error : EIO;
	_exit(126);
}

CHILD_CODE static _Noreturn void
child_exec(struct child *child)
{
	const struct worker_exec *exec = child->exec;
	struct worker_environment *environment = child->environment;
	int stdout_fd = child->stdout_fd, stderr_fd = child->stderr_fd;
	const sigset_t *ignored = child->ignored;
	/* The host blocks its signals for signalfd and ignores SIGPIPE; a worker starts clean.
	 * exec resets handled signals itself; only ignored ones survive it. */
	struct sigaction default_action = {.sa_handler = SIG_DFL};
	for (int s = 1; s < NSIG; s++)
		if (sigismember(ignored, s) == 1)
			(void)sigaction(s, &default_action, NULL);
	/* The kernel's first real-time signals (32, 33) are glibc's own: its sigaction refuses
	 * them, but an ignore inherited from whoever started the host survives exec all the
	 * same. Reset them with the system call itself (handler and flags lead the kernel's
	 * struct on every Linux architecture; nothing else needs filling for SIG_DFL). */
	struct {
		void (*handler)(int);
		unsigned long flags;
		void (*restorer)(void);
		uint64_t mask;
	} kernel_default = {.handler = SIG_DFL};
	for (int s = 32; s < SIGRTMIN; s++)
		(void)syscall(SYS_rt_sigaction, s, &kernel_default, NULL, sizeof(uint64_t));
	sigset_t none;
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);

	if (setpgid(0, 0) < 0)
		child_abort(child, "setpgid", errno);

	int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(stdout_fd, STDOUT_FILENO) < 0 ||
	    dup2(stderr_fd, STDERR_FILENO) < 0)
		child_abort(child, "setting up stdin, stdout and stderr", errno);

	/* Listening sockets go to 3…: first out of the way above the target range, so that
	 * moving one cannot overwrite another, then into place (dup2 clears CLOEXEC). */
	int first_free = 3 + (int)exec->listen_count;
	int moved[64];
	if (exec->listen_count > sizeof(moved) / sizeof(moved[0]))
		child_abort(child, "passing the listening sockets", E2BIG);
	for (size_t i = 0; i < exec->listen_count; i++) {
		moved[i] = fcntl(exec->listen_fds[i], F_DUPFD_CLOEXEC, first_free);
		if (moved[i] < 0)
			child_abort(child, "passing the listening sockets", errno);
	}
	for (size_t i = 0; i < exec->listen_count; i++)
		if (dup2(moved[i], 3 + (int)i) < 0)
			child_abort(child, "passing the listening sockets", errno);
	/* The host's own fds are all O_CLOEXEC; this also covers any fd the host inherited
	 * from whoever started it. Best effort: close_range is Linux 5.11+. */
	(void)close_range((unsigned)first_free, ~0U, CLOSE_RANGE_CLOEXEC);

	if (environment->listen_pid)
		child_write_pid(environment->listen_pid, "LISTEN_PID=");
	if (environment->watchdog_pid)
		child_write_pid(environment->watchdog_pid, "WATCHDOG_PID=");

	/* The host runs with its soft limit raised to the hard one; a worker gets back the limit
	 * the host was started with (host.c), as systemd gives its services 1024 whatever it has
	 * itself: a program that select()s breaks on fds above 1023. After the fds are in place,
	 * which the host's limit allowed. */
	if (exec->nofile && setrlimit(RLIMIT_NOFILE, exec->nofile) < 0)
		child_abort(child, "setrlimit nofile", errno);

	const char *step;
	int error = spawn_options_apply(exec, child->join_cgroup, &step);
	if (error)
		child_abort(child, step, error);

	/* As the worker's user, so that a directory it may not enter fails as it would for it. */
	if (exec->directory && chdir(exec->directory) < 0)
		child_fail("chdir", exec->directory, errno);

	/* The worker dies with the host (kill -9, the OOM killer) rather than serve unsupervised
	 * and keep its port. The kernel sends it when the thread that forked the child exits:
	 * the host is one thread, so that is the host's death. Set last, after anything that
	 * changes credentials (which clears it), and through the system call itself, which keeps
	 * the sanitizers' interceptor out of the child. The host may have died already, between
	 * the clone and here: then the parent is another process, and the child goes. */
	if (syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0L, 0L, 0L) < 0)
		child_abort(child, "prctl PR_SET_PDEATHSIG", errno);
	if (getppid() != child->parent)
		_exit(126);
	execvpe(exec->argv[0], exec->argv, environment->entries);
	child_fail("exec", exec->argv[0], errno);
}

CHILD_CODE static int
child_main(void *data)
{
	child_exec(data);
}

/* Starts the child as vfork does: on the host's memory and a stack of its own, with the host
 * suspended until the child's execve (or _exit). Measured against fork(), this takes the page
 * table copy out of the clone, the teardown of that copy out of execve and the copy-on-write
 * faults out of both, and the child runs at once on the CPU the host leaves to it: crash to
 * respawn went from 2.08 to 1.47 ms (p50). The price: the host waits for the child's chdir and
 * execve, so a program on a hung network file system holds the host as well (posix_spawn, and
 * systemd, which spawns through it, make the same trade).
 * Only SIGKILL ends that wait: the host's other signals are blocked for its signalfd.
 * The child (child_exec) writes only its own stack, the pid slots of the worker's kept
 * environment, which the host never reads (the next child writes them again), and the error
 * of a failed set-up, which the host reads once the clone returns. What else it
 * touches of the host's (strerror's translation lock, execvpe's read of PATH, errno) is safe
 * because the host is one thread, suspended, and has no signal handlers that could run in the
 * child. The stack is mapped once
 * and reused, as one child at most runs on it, with a guard page below it so that an overflow
 * faults rather than writing over the host. Returns the pid or -errno. */
static pid_t
spawn_child(struct child *child)
{
	enum { STACK_SIZE = 256 * 1024, GUARD_SIZE = 64 * 1024 }; /* a multiple of any page size */
	static char *stack;
	if (!stack) {
		char *mapped = mmap(NULL, GUARD_SIZE + STACK_SIZE, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (mapped == MAP_FAILED)
			return -errno;
		if (mprotect(mapped, GUARD_SIZE, PROT_NONE) < 0) {
			int error = errno;
			(void)munmap(mapped, GUARD_SIZE + STACK_SIZE);
			return -error;
		}
		stack = mapped + GUARD_SIZE;
	}
	/* Should a frame of AddressSanitizer's come into the child, the redzones it poisons are
	 * cleared at its return, which an execve never comes back to: start each child clean. */
	ASAN_UNPOISON_MEMORY_REGION(stack, STACK_SIZE);
	/* Into its cgroup by the clone itself where the kernel can: a child that writes its pid
	 * into cgroup.procs takes the cgroup's write lock, whose RCU grace period held the
	 * suspended host for 10 ms at a respawn (p50 13.5 ms against 2.5 ms without a cgroup). */
	const struct worker_exec *exec = child->exec;
	child->join_cgroup = false;
	if (exec->cgroup_fd > 0) {
		pid_t pid =
		    spawn_clone_into_cgroup(child_main, child, stack, STACK_SIZE, exec->cgroup_fd);
		if (pid >= 0 || (pid != -ENOSYS && pid != -EINVAL && pid != -E2BIG))
			return pid;
		child->join_cgroup = true; /* an older kernel: the child writes its pid instead */
	}
	pid_t pid = clone(child_main, stack + STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD, child);
	return pid < 0 ? -errno : pid;
}

void
worker_release(struct worker *worker, struct loop *loop)
{
	worker_output_close(worker, loop);
	free(worker->environment);
	worker->environment = NULL;
}

int
worker_spawn(struct worker *worker, struct loop *loop, const struct worker_exec *exec)
{
	worker->spawn_failed_step = NULL;
	struct own_numbers numbers = {0};
	struct own_entry own[OWN_MAX];
	size_t own_count = own_entries(worker, exec, &numbers, own);
	/* Built at the worker's first spawn, and again only if this one's inputs differ. */
	if (!worker->environment || !environment_fits(worker->environment, exec, own, own_count)) {
		struct worker_environment *environment;
		int r = environment_build(exec, own, own_count, &environment);
		if (r < 0)
			return r;
		free(worker->environment);
		worker->environment = environment;
	}

	/* A pipe per stream, so that each line is known to be stdout or stderr. */
	int pipe_fds[2][2] = {{-1, -1}, {-1, -1}};
	int r = 0;
	for (int i = 0; i < 2; i++) {
		if (pipe2(pipe_fds[i], O_CLOEXEC) < 0 ||
		    fcntl(pipe_fds[i][0], F_SETFL, O_NONBLOCK) < 0) {
			r = -errno;
			goto fail;
		}
	}

	struct child child = {exec,
			      worker->environment,
			      pipe_fds[0][1],
			      pipe_fds[1][1],
			      ignored_signals(),
			      getpid(),
			      0,
			      NULL,
			      false};
	pid_t pid = spawn_child(&child);
	if (pid < 0) {
		r = pid;
		goto fail;
	}
	if (child.error) {
		/* It has _exited (the clone returns only then, or at its execve): collected here so
		 * that the reap path never sees it. */
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		r = -child.error;
		worker->spawn_failed_step = child.step;
		goto fail;
	}
	close(pipe_fds[0][1]);
	close(pipe_fds[1][1]);
	worker_output_open(worker, loop, (const int[2]){pipe_fds[0][0], pipe_fds[1][0]}, pid);
	worker->pid = pid;
	return 0;

fail:
	for (int i = 0; i < 2; i++)
		for (int k = 0; k < 2; k++)
			if (pipe_fds[i][k] >= 0)
				close(pipe_fds[i][k]);
	return r;
}

void
worker_kill(const struct worker *worker, int signal)
{
	if (worker->pid <= 0)
		return;
	if (kill(-worker->pid, signal) < 0 && errno == ESRCH)
		(void)kill(worker->pid, signal); /* not a group leader: its setpgid failed */
}
