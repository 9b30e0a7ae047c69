/* spawn_options: a worker's exec options (user, limits, nice...), applied by the child of
 * spawn.c between its fds and its exec: async-signal-safe, on the host's memory. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "config/config.h"
#include "host/spawn_child.h"
#include "host/worker.h"

CHILD_CODE static int
fail(const char **ret_step, const char *step, int error)
{
	*ret_step = step;
	return error > 0 ? error : EIO;
}

/* The steps of struct config_exec's limits, for the step that failed. */
static const char *const limit_steps[CONFIG_LIMIT_COUNT] = {
    [CONFIG_LIMIT_NOFILE] = "setrlimit nofile", [CONFIG_LIMIT_NPROC] = "setrlimit nproc",
    [CONFIG_LIMIT_CORE] = "setrlimit core",	[CONFIG_LIMIT_MEMLOCK] = "setrlimit memlock",
    [CONFIG_LIMIT_STACK] = "setrlimit stack",	[CONFIG_LIMIT_AS] = "setrlimit as",
    [CONFIG_LIMIT_CPU] = "setrlimit cpu",	[CONFIG_LIMIT_FSIZE] = "setrlimit fsize",
};
static const int limit_resources[CONFIG_LIMIT_COUNT] = {
    [CONFIG_LIMIT_NOFILE] = RLIMIT_NOFILE, [CONFIG_LIMIT_NPROC] = RLIMIT_NPROC,
    [CONFIG_LIMIT_CORE] = RLIMIT_CORE,	   [CONFIG_LIMIT_MEMLOCK] = RLIMIT_MEMLOCK,
    [CONFIG_LIMIT_STACK] = RLIMIT_STACK,   [CONFIG_LIMIT_AS] = RLIMIT_AS,
    [CONFIG_LIMIT_CPU] = RLIMIT_CPU,	   [CONFIG_LIMIT_FSIZE] = RLIMIT_FSIZE,
};

/* "-1000" and the like into text (at least 12 bytes), without stdio; returns the length. */
CHILD_CODE static size_t
child_format_int(char *text, int value)
{
	char digits[12];
	size_t n = 0, length = 0;
	unsigned magnitude = value < 0 ? 0U - (unsigned)value : (unsigned)value;
	do
		digits[n++] = (char)('0' + magnitude % 10);
	while ((magnitude /= 10) > 0);
	if (value < 0)
		text[length++] = '-';
	while (n > 0)
		text[length++] = digits[--n];
	return length;
}

/* The options of struct config_exec, in the order that keeps each possible: what needs
 * privilege (raising a hard limit, a lower nice or oom_score_adj, joining a cgroup) before the
 * credentials go, the credentials in the order setgroups, setgid, setuid (each of the first
 * two needs the privilege the last drops), and no_new_privileges after them. Through the
 * system calls themselves: glibc's setuid and setgroups would signal every thread of the host
 * to change theirs too (the child shares the host's memory and glibc's thread list), and
 * the sanitizers' interceptors stay out of the child. */
CHILD_CODE int
spawn_options_apply(const struct worker_exec *exec, bool join_cgroup, const char **ret_step)
{
	if (join_cgroup && syscall(SYS_write, exec->cgroup_procs_fd, "0", 1) < 0)
		return fail(ret_step, "joining its cgroup", errno);
	const struct config_exec *options = exec->options;
	if (!options)
		return 0;
	for (size_t i = 0; i < CONFIG_LIMIT_COUNT; i++)
		if (i != CONFIG_LIMIT_NOFILE && options->has_limit[i] &&
		    syscall(SYS_prlimit64, 0, limit_resources[i], &options->limits[i], NULL) < 0)
			return fail(ret_step, limit_steps[i], errno);
	if (options->has_umask)
		(void)syscall(SYS_umask, options->umask);
	if (options->has_nice && syscall(SYS_setpriority, PRIO_PROCESS, 0, options->nice) < 0)
		return fail(ret_step, "setpriority (nice)", errno);
	/* The child's own file, written before exec, so the worker never runs with the host's
	 * value: the host can't write it for the pid, as it is suspended until that exec. */
	if (options->has_oom_score_adj) {
		int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/oom_score_adj",
				      O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return fail(ret_step, "opening /proc/self/oom_score_adj", errno);
		char text[16];
		size_t length = child_format_int(text, options->oom_score_adj);
		if (syscall(SYS_write, fd, text, length) != (long)length)
			return fail(ret_step, "writing /proc/self/oom_score_adj", errno);
		(void)syscall(SYS_close, fd);
	}
	/* A host that is not root runs only workers of its own user and group (config_check_user):
	 * their credentials stay as they are, which setgroups would refuse to set. */
	bool switch_user = syscall(SYS_geteuid) == 0;
	if (switch_user && options->groups &&
	    syscall(SYS_setgroups, options->group_count, options->groups) < 0)
		return fail(ret_step, "setgroups", errno);
	if (switch_user && (options->user || options->group) &&
	    syscall(SYS_setgid, options->gid) < 0)
		return fail(ret_step, "setgid", errno);
	if (switch_user && options->user && syscall(SYS_setuid, options->uid) < 0)
		return fail(ret_step, "setuid", errno);
	if (options->no_new_privileges &&
	    syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L) < 0)
		return fail(ret_step, "prctl no_new_privileges", errno);
	return 0;
}

/* struct clone_args of linux/sched.h up to its cgroup (CLONE_ARGS_SIZE_VER2), which not every
 * libc's headers have. */
struct clone3_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
	    set_tid_size, cgroup;
};
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

#if defined(__x86_64__)
pid_t
spawn_clone_into_cgroup(int (*fn)(void *), void *data, char *stack, size_t stack_size,
			int cgroup_fd)
{
	struct clone3_args args = {
	    .flags = CLONE_VM | CLONE_VFORK | CLONE_INTO_CGROUP,
	    .exit_signal = SIGCHLD,
	    .stack = (uint64_t)(uintptr_t)stack,
	    .stack_size = stack_size,
	    .cgroup = (uint64_t)cgroup_fd,
	};
	/* glibc has no clone3 wrapper that runs a function on a new stack: the child starts on
	 * the stack the kernel gives it (stack + stack_size, 16-byte aligned), where nothing
	 * of this frame is, so it calls fn at once from registers that clone3 leaves as they
	 * were, and exits if fn ever returns (child_exec never does). */
	long r;
	__asm__ volatile("syscall\n\t"
			 "test %%rax, %%rax\n\t"
			 "jnz 1f\n\t"
			 "mov %[data], %%rdi\n\t"
			 "call *%[fn]\n\t"
			 "mov %%eax, %%edi\n\t"
			 "mov %[exit], %%eax\n\t"
			 "syscall\n\t"
			 "hlt\n"
			 "1:\n\t"
			 : "=a"(r)
			 : "a"((long)SYS_clone3), "D"(&args),
			   "S"(sizeof(args)), [fn] "r"(fn), [data] "r"(data), [exit] "i"(SYS_exit)
			 : "rcx", "r11", "memory");
	return (pid_t)r; /* the pid, or -errno as the system call returns it */
}
#else
pid_t
spawn_clone_into_cgroup(int (*fn)(void *), void *data, char *stack, size_t stack_size,
			int cgroup_fd)
{
	(void)fn, (void)data, (void)stack, (void)stack_size, (void)cgroup_fd;
	return -ENOSYS;
}
#endif
