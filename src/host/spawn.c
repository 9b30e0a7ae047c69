/* spawn: the start of one worker: its environment and the child's async-signal-safe set-up
 * (signals, process group, fds) on a reused stack until exec. */
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
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2) /* linux/close_range.h, not in every libc's headers */
#endif

extern char **environ;

/* Keys the host sets for each worker; inherited values of them are dropped. */
static const char *const own_keys[] = {
    "NOTIFY_SOCKET", "LISTEN_FDS",	 "LISTEN_PID",	  "LISTEN_FDNAMES", "AERIE_SERVICE",
    "AERIE_WORKER",  "AERIE_GENERATION", "WATCHDOG_USEC", "WATCHDOG_PID",
};

static bool
key_matches(const char *entry, const char *key_value)
{
	const char *equals = strchr(key_value, '=');
	size_t length = equals ? (size_t)(equals - key_value) : strlen(key_value);
	return strncmp(entry, key_value, length) == 0 && entry[length] == '=';
}

static bool
overridden(const char *entry, const struct worker_exec *exec)
{
	for (size_t i = 0; i < sizeof(own_keys) / sizeof(own_keys[0]); i++)
		if (key_matches(entry, own_keys[i]))
			return true;
	for (size_t i = 0; i < exec->env_count; i++)
		if (key_matches(entry, exec->env[i]))
			return true;
	return false;
}

/* The variables the host sets (own_keys) plus room: each is allocated here. */
#define ENVIRONMENT_OWN_MAX 12

/* The environment is built in the parent: the child does only async-signal-safe work. The
 * LISTEN_PID slot is left for the child, which alone knows its pid before exec. */
struct environment {
	char **entries;
	char *owned[ENVIRONMENT_OWN_MAX]; /* strings allocated here */
	size_t owned_count;
	char *listen_pid;   /* points at a buffer of PID_SLOT_SIZE in entries, or NULL */
	char *watchdog_pid; /* the same for WATCHDOG_PID */
};

#define PID_SLOT_SIZE 32

static void
environment_free(struct environment *environment)
{
	for (size_t i = 0; i < environment->owned_count; i++)
		free(environment->owned[i]);
	free(environment->entries);
}

static int
environment_own(struct environment *environment, size_t *count, char *entry)
{
	if (!entry)
		return -ENOMEM;
	environment->owned[environment->owned_count++] = entry;
	environment->entries[(*count)++] = entry;
	return 0;
}

static int
environment_build(struct environment *environment, const struct worker *worker,
		  const struct worker_exec *exec)
{
	size_t inherited = 0;
	for (char **e = environ; *e; e++)
		inherited++;
	*environment = (struct environment){0};
	environment->entries =
	    calloc(inherited + exec->env_count + ENVIRONMENT_OWN_MAX + 1, sizeof(char *));
	if (!environment->entries)
		return -ENOMEM;

	size_t count = 0;
	for (char **e = environ; *e; e++)
		if (!overridden(*e, exec))
			environment->entries[count++] = *e;
	for (size_t i = 0; i < exec->env_count; i++)
		environment->entries[count++] = exec->env[i];

	char *entry;
	int r = 0;
	if (asprintf(&entry, "AERIE_SERVICE=%s", exec->service_name) < 0)
		entry = NULL;
	r = r ?: environment_own(environment, &count, entry);
	if (asprintf(&entry, "AERIE_WORKER=%u", worker->index) < 0)
		entry = NULL;
	r = r ?: environment_own(environment, &count, entry);
	if (asprintf(&entry, "AERIE_GENERATION=%u", worker->generation) < 0)
		entry = NULL;
	r = r ?: environment_own(environment, &count, entry);
	if (exec->notify_socket) {
		if (asprintf(&entry, "NOTIFY_SOCKET=%s", exec->notify_socket) < 0)
			entry = NULL;
		r = r ?: environment_own(environment, &count, entry);
	}
	if (exec->listen_count > 0) {
		if (asprintf(&entry, "LISTEN_FDS=%zu", exec->listen_count) < 0)
			entry = NULL;
		r = r ?: environment_own(environment, &count, entry);
		if (exec->listen_names) {
			if (asprintf(&entry, "LISTEN_FDNAMES=%s", exec->listen_names) < 0)
				entry = NULL;
			r = r ?: environment_own(environment, &count, entry);
		}
		entry = calloc(1, PID_SLOT_SIZE);
		r = r ?: environment_own(environment, &count, entry);
		environment->listen_pid = entry;
	}
	if (exec->watchdog_seconds > 0) {
		if (asprintf(&entry, "WATCHDOG_USEC=%llu",
			     (unsigned long long)(exec->watchdog_seconds * 1e6)) < 0)
			entry = NULL;
		r = r ?: environment_own(environment, &count, entry);
		entry = calloc(1, PID_SLOT_SIZE);
		r = r ?: environment_own(environment, &count, entry);
		environment->watchdog_pid = entry;
	}
	if (r < 0)
		environment_free(environment);
	return r;
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

/* Only async-signal-safe calls from here on: the child, which runs on the host's memory (see
 * spawn_child). AddressSanitizer is kept out of it: its frames would poison a stack that no
 * return clears, and it can't tell where that stack is. */
#define CHILD_CODE __attribute__((no_sanitize("address")))

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

CHILD_CODE static _Noreturn void
child_exec(const struct worker_exec *exec, struct environment *environment, int output_fd,
	   const sigset_t *ignored)
{
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
		_exit(126);

	int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(output_fd, STDOUT_FILENO) < 0 ||
	    dup2(output_fd, STDERR_FILENO) < 0)
		_exit(126);

	/* Listening sockets go to 3…: first out of the way above the target range, so that
	 * moving one cannot overwrite another, then into place (dup2 clears CLOEXEC). */
	int first_free = 3 + (int)exec->listen_count;
	int moved[64];
	if (exec->listen_count > sizeof(moved) / sizeof(moved[0]))
		_exit(126);
	for (size_t i = 0; i < exec->listen_count; i++) {
		moved[i] = fcntl(exec->listen_fds[i], F_DUPFD_CLOEXEC, first_free);
		if (moved[i] < 0)
			_exit(126);
	}
	for (size_t i = 0; i < exec->listen_count; i++)
		if (dup2(moved[i], 3 + (int)i) < 0)
			_exit(126);
	/* The host's own fds are all O_CLOEXEC; this also covers any fd the host inherited
	 * from whoever started it. Best effort: close_range is Linux 5.11+. */
	(void)close_range((unsigned)first_free, ~0U, CLOSE_RANGE_CLOEXEC);

	if (environment->listen_pid)
		child_write_pid(environment->listen_pid, "LISTEN_PID=");
	if (environment->watchdog_pid)
		child_write_pid(environment->watchdog_pid, "WATCHDOG_PID=");

	if (exec->directory && chdir(exec->directory) < 0)
		child_fail("chdir", exec->directory, errno);
	execvpe(exec->argv[0], exec->argv, environment->entries);
	child_fail("exec", exec->argv[0], errno);
}

/* What the child needs, on the parent's memory: the child shares it until execve. */
struct child {
	const struct worker_exec *exec;
	struct environment *environment;
	int output_fd;
	const sigset_t *ignored;
};

CHILD_CODE static int
child_main(void *data)
{
	struct child *child = data;
	child_exec(child->exec, child->environment, child->output_fd, child->ignored);
}

/* Starts the child as vfork does: on the host's memory and a stack of its own, with the host
 * suspended until the child's execve (or _exit). Measured against fork(), this takes the page
 * table copy out of the clone, the teardown of that copy out of execve and the copy-on-write
 * faults out of both, and the child runs at once on the CPU the host leaves to it: crash to
 * respawn went from 2.08 to 1.47 ms (p50). The price: the host waits for the child's chdir and
 * execve, so a program on a hung network file system holds the host as well (posix_spawn, and
 * systemd, which spawns through it, make the same trade).
 * Only SIGKILL ends that wait: the host's other signals are blocked for its signalfd.
 * The child (child_exec) writes only its own stack and the pid slots of the environment built
 * for it, which the host frees unread. What else it touches of the host's (strerror's
 * translation lock, execvpe's read of PATH, errno) is safe because the host is one thread,
 * suspended, and has no signal handlers that could run in the child. The stack is mapped once
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
	pid_t pid = clone(child_main, stack + STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD, child);
	return pid < 0 ? -errno : pid;
}

void
worker_release(struct worker *worker, struct loop *loop)
{
	worker_output_close(worker, loop);
}

int
worker_spawn(struct worker *worker, struct loop *loop, const struct worker_exec *exec)
{
	struct environment environment;
	int r = environment_build(&environment, worker, exec);
	if (r < 0)
		return r;

	int pipe_fds[2];
	if (pipe2(pipe_fds, O_CLOEXEC) < 0) {
		r = -errno;
		environment_free(&environment);
		return r;
	}
	if (fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK) < 0) {
		r = -errno;
		goto fail;
	}

	struct child child = {exec, &environment, pipe_fds[1], ignored_signals()};
	pid_t pid = spawn_child(&child);
	if (pid < 0) {
		r = pid;
		goto fail;
	}
	close(pipe_fds[1]);
	environment_free(&environment);

	worker_output_open(worker, loop, pipe_fds[0], pid);
	worker->pid = pid;
	return 0;

fail:
	close(pipe_fds[0]);
	close(pipe_fds[1]);
	environment_free(&environment);
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
