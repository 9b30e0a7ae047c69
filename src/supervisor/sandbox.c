/* sandbox: what the supervisor process gives up once it has started, so that a bug in the code
 * that parses clients' bytes can do no more than read /proc, read what any user may read, and
 * talk on the sockets it has.
 *
 * Three locks, each of which holds without the others, taken in this order because each needs
 * something the next one takes away:
 *   1. files as nobody: the fsuid, the fsgid and no supplementary groups (CAP_SETUID, CAP_SETGID);
 *   2. capabilities: all but CAP_SYS_PTRACE, from every set, the bounding set too, and the
 *      securebits locked so that uid 0 gets none back (CAP_SETPCAP); no new privileges;
 *   3. a seccomp allow-list (libseccomp): the syscalls this process makes, some only with the
 *      arguments it uses (read-only opens; kill of the host with its four signals; clone of a
 *      thread, never of a process); anything else kills the process, which the host then
 *      restarts.
 *
 * Why CAP_SYS_PTRACE: metrics reads smaps_rollup of every process of the host's tree, which the
 * kernel allows (ptrace_may_access in PTRACE_MODE_READ_FSCREDS, then cap_ptrace_access_check)
 * for a process of another fsuid, or one holding capabilities the reader lacks (the host, root
 * workers), only to a reader with CAP_SYS_PTRACE. CAP_DAC_READ_SEARCH plays no part there.
 * Why the uids stay 0 and only the file system ids change: an unprivileged uid would need
 * CAP_KILL for Falcon's signal to the host (a right to signal any process) and would move the
 * socket's gate ("the host's user"); with uid 0 and no capabilities, though, the owner bits of
 * root's files would still let it read and write them. The fsuid is the one id the file system
 * looks at, and nothing else (an NFS server's trick), so it closes that and changes no more.
 *
 * Why kill: a syscall outside the list is one this code never makes, so the process is not the
 * one we started any more. An error return would let such code probe the list and go on; death
 * ends it, the host logs the signal and starts a fresh one. systemd's SystemCallFilter= and
 * OpenSSH's sandbox-seccomp-filter default to the same. */
#include "supervisor/supervisor.h"

#include <cap-ng.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "supervisor/private.h"

/* nobody, the kernel's overflow id: whose files the process may read are everyone's. */
#define SANDBOX_FILES_ID 65534

/* Lock 1: files as nobody. The file system checks a process's fsuid and fsgid only, so these
 * are what change: signals still go as uid 0 to the host (same uid, no CAP_KILL), getuid() is
 * still the host's for the socket's gate, and neither a process of nobody's nor any other user's
 * may signal or trace this one (its uids are still 0). Setting them back needs setfsuid, which the
 * filter does not let through. Returns 0 or -errno. */
static int
sandbox_identity(void)
{
	if (geteuid() != 0)
		return 0; /* a host run by a user: its files are its own already */
	if (setgroups(0, NULL) < 0)
		return -errno;
	(void)setfsgid(SANDBOX_FILES_ID);
	(void)setfsuid(SANDBOX_FILES_ID);
	/* Neither reports an error; asking with an id that can't be set returns the current. */
	if (setfsgid((gid_t)-1) != (int)SANDBOX_FILES_ID ||
	    setfsuid((uid_t)-1) != (int)SANDBOX_FILES_ID)
		return -EPERM;
	return 0;
}

/* Lock 2, but for no new privileges (in sandbox_apply). Returns 0 or -errno. */
static int
sandbox_capabilities(void)
{
	if (capng_get_caps_process() < 0)
		return -EPERM;
	bool ptrace = capng_have_capability(CAPNG_PERMITTED, CAP_SYS_PTRACE);
	/* Not root (a host run by a user): there is nothing to drop from the bounding set, and
	 * no right to. */
	bool setpcap = capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP);
	capng_clear(CAPNG_SELECT_ALL);
	if (ptrace &&
	    capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET,
			 CAP_SYS_PTRACE) < 0)
		return -EINVAL;
	/* noroot and no-setuid-fixup, locked: uid 0 is a uid like another from here on, so that
	 * nothing (an exec, were it allowed) hands the capabilities back. */
	if (setpcap && capng_lock() < 0)
		return -EPERM;
	if (capng_apply(setpcap ? CAPNG_SELECT_ALL : CAPNG_SELECT_BOTH) < 0)
		return -EPERM;
	return 0;
}

/* The syscalls allowed whatever their arguments. Read them as what the process does: */
/* clang-format off */
static const char *const allowed[] = {
    /* the loop: epoll, the signalfd, timers as epoll's timeout */
    "epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl", "restart_syscall",
    "clock_gettime", "gettimeofday", "time",
    /* clients and the channel: accept, SO_PEERCRED, bytes both ways */
    "accept4", "accept", "getsockopt", "recvfrom", "recvmsg", "sendto", "sendmsg", "shutdown",
    "read", "readv", "write", "writev", "close", "fcntl",
    /* /proc, once opened (openat and open below): its files and directories */
    "pread64", "lseek", "fstat", "newfstatat", "statx", "getdents64", "readlink", "readlinkat",
    "access", "faccessat", "faccessat2",
    /* memory */
    "brk", "mmap", "munmap", "mremap", "madvise", "mprotect",
    /* who it is: getuid for the gate, getppid before signalling the host */
    "getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid",
    /* libc and the runtime: qsort's memory check, locks, signals on a fault, the end */
    "getrandom", "sysinfo", "futex", "sched_yield", "rt_sigreturn", "rt_sigprocmask",
    "rt_sigaction", "sigaltstack", "uname", "exit", "exit_group",
    /* metrics' capture threads (metrics/metrics_pool.c; clone and clone3 in add_rules): the
     * CPUs it may use, a new thread's registrations with the kernel, and its stack's guard page
     * and release (mprotect, madvise above) */
    "sched_getaffinity", "set_robust_list", "rseq",
    /* valgrind's own, when it runs the process: it answers an open of the process's own
     * /proc/PID/cmdline with a dup of its copy, and polls for signals (its gdbserver's FIFOs,
     * removed at exit, would need unlink: run it with --vgdb=no) */
    "dup", "rt_sigtimedwait",
};
/* clang-format on */

/* Adds one rule: allow syscall name where the (masked) arguments match. A syscall the
 * architecture does not have is left out. */
static int
allow(scmp_filter_ctx ctx, const char *name, unsigned count, const struct scmp_arg_cmp *args)
{
	int number = seccomp_syscall_resolve_name(name);
	if (number == __NR_SCMP_ERROR || number < 0)
		return 0;
	return seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, number, count, args);
}

/* An int argument: the kernel reads the low 32 bits of the register, so compare only those. */
#define INT_ARG(index, value) SCMP_CMP64(index, SCMP_CMP_MASKED_EQ, 0xffffffffU, (uint32_t)(value))

#ifdef __SANITIZE_ADDRESS__
/* Only in a build with -fsanitize=address: its leak check at exit stops the process's threads
 * from a helper that shares its memory (a clone with these flags) and reads their registers
 * with ptrace. The rules let that helper reach this process and nothing else. */
static int
add_sanitizer_rules(scmp_filter_ctx ctx)
{
	const struct scmp_arg_cmp helper = SCMP_CMP64(
	    0, SCMP_CMP_MASKED_EQ, ~0ULL, CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_UNTRACED);
	const struct scmp_arg_cmp self = INT_ARG(1, getpid());
	int r = allow(ctx, "clone", 1, &helper);
	if (r == 0)
		r = allow(ctx, "ptrace", 1, &self);
	if (r == 0)
		r = allow(ctx, "wait4", 0, NULL);
	if (r == 0) /* the helper lists the threads with it */
		r = allow(ctx, "getdents", 0, NULL);
	static const int options[] = {PR_GET_DUMPABLE, PR_SET_DUMPABLE, PR_SET_PTRACER,
				      PR_SET_PDEATHSIG};
	for (size_t i = 0; r == 0 && i < sizeof(options) / sizeof(options[0]); i++) {
		const struct scmp_arg_cmp option = INT_ARG(0, options[i]);
		r = allow(ctx, "prctl", 1, &option);
	}
	return r;
}
#endif

static int
add_rules(scmp_filter_ctx ctx, pid_t host_pid)
{
	int r = 0;
	for (size_t i = 0; r == 0 && i < sizeof(allowed) / sizeof(allowed[0]); i++)
		r = allow(ctx, allowed[i], 0, NULL);
	/* Opens only for reading, never creating: /proc is all it reads. */
	const uint64_t writing =
	    O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND | (O_TMPFILE & ~O_DIRECTORY);
	const struct scmp_arg_cmp read_only_at = SCMP_CMP64(2, SCMP_CMP_MASKED_EQ, writing, 0);
	const struct scmp_arg_cmp read_only = SCMP_CMP64(1, SCMP_CMP_MASKED_EQ, writing, 0);
	if (r == 0)
		r = allow(ctx, "openat", 1, &read_only_at);
	if (r == 0) /* sanitizer runtimes and valgrind call open(2) where it exists */
		r = allow(ctx, "open", 1, &read_only);
	/* Falcon's signal form of restart: the host, and only the signals the protocol lets
	 * through (lib/protocol.c). */
	static const int host_signals[] = {SIGHUP, SIGINT, SIGTERM, SIGUSR1};
	for (size_t i = 0; r == 0 && i < 4; i++) {
		const struct scmp_arg_cmp args[] = {INT_ARG(0, host_pid),
						    INT_ARG(1, host_signals[i])};
		r = allow(ctx, "kill", 2, args);
	}
	/* Threads, not processes: a clone that shares the memory, the files and the signal
	 * handlers and makes a thread of this process, which fork (a new process) does not.
	 * clone3 passes its flags in memory the filter cannot read: it fails with ENOSYS, and the
	 * C library then makes the same thread with clone. */
	const uint64_t thread = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD;
	const struct scmp_arg_cmp thread_flags = SCMP_CMP64(0, SCMP_CMP_MASKED_EQ, thread, thread);
	if (r == 0)
		r = allow(ctx, "clone", 1, &thread_flags);
	int clone3 = seccomp_syscall_resolve_name("clone3");
	if (r == 0 && clone3 != __NR_SCMP_ERROR && clone3 >= 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), clone3, 0);
	/* A fault's own signal (abort, a sanitizer's report), to itself only. */
	const struct scmp_arg_cmp self = INT_ARG(0, getpid());
	if (r == 0)
		r = allow(ctx, "tgkill", 1, &self);
	/* isatty(), by stdio and the sanitizers, on fds opened before. */
	const struct scmp_arg_cmp tcgets = INT_ARG(1, TCGETS);
	if (r == 0)
		r = allow(ctx, "ioctl", 1, &tcgets);
#ifdef __SANITIZE_ADDRESS__
	if (r == 0)
		r = add_sanitizer_rules(ctx);
#endif
	return r;
}

/* Lock 3. Returns 0, 1 if the kernel has no seccomp filters, or -errno. */
static int
sandbox_filter(pid_t host_pid)
{
	/* KILL_PROCESS since Linux 4.14 (API level 3); before, KILL ends the process's one
	 * thread. */
	uint32_t action = seccomp_api_get() >= 3 ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_KILL;
	scmp_filter_ctx ctx = seccomp_init(action);
	if (!ctx)
		return -ENOMEM;
	int r = add_rules(ctx, host_pid);
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	if (r == -EINVAL || r == -ENOSYS)
		return 1;
	return r;
}

int
sandbox_apply(pid_t host_pid)
{
	/* What would need a file later is done now: the time zone for log lines, and jansson's
	 * hash seed from /dev/urandom (a late seed would fall back to the time, and a client
	 * could then collide keys on purpose). */
	tzset();
	json_object_seed(0);
	int r = sandbox_identity();
	if (r < 0) {
		log_errno(LOG_ERROR, r, "supervisor: cannot take nobody's file system ids");
		return r;
	}
	r = sandbox_capabilities();
	if (r < 0) {
		log_errno(LOG_ERROR, r, "supervisor: cannot drop its capabilities");
		return r;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		r = -errno;
		log_errno(LOG_ERROR, r, "supervisor: PR_SET_NO_NEW_PRIVS");
		return r;
	}
	r = sandbox_filter(host_pid);
	if (r < 0) {
		log_errno(LOG_ERROR, r, "supervisor: cannot load its seccomp filter");
		return r;
	}
	/* A kernel without them still gets the other locks: serving matters more (as OpenSSH's
	 * sandbox does). */
	if (r == 1)
		log_warn("supervisor: the kernel has no seccomp filters; serving without one");
	log_debug("supervisor: sandboxed: files as uid/gid %d, no supplementary groups, "
		  "capabilities but CAP_SYS_PTRACE dropped (bounding set too, securebits locked), "
		  "no new privileges%s",
		  SANDBOX_FILES_ID,
		  r == 0 ? ", syscalls outside the allow-list kill the process" : "");
	return 0;
}

/* The check's probes: each makes one call the sandbox must refuse, and returns its result. */
static long
probe_fork(const char *path)
{
	(void)path;
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	return pid;
}

/* A process that shares this one's memory, as spawn.c makes workers: not a thread. */
static long
probe_vfork(const char *path)
{
	(void)path;
	pid_t pid = vfork();
	if (pid == 0)
		_exit(0);
	return pid;
}

static long
probe_execve(const char *path)
{
	(void)path;
	char *argv[] = {"true", NULL};
	return execve("/bin/true", argv, (char *[]){NULL});
}

static long
probe_socket(const char *path)
{
	(void)path;
	return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

static long
probe_open_write(const char *path)
{
	(void)path;
	return open("/dev/null", O_WRONLY | O_CLOEXEC);
}

static long
probe_kill_other(const char *path)
{
	(void)path;
	return kill(1, 0);
}

static long
probe_kill_signal(const char *path)
{
	(void)path;
	return kill(getppid(), SIGCONT);
}

static long
probe_ptrace(const char *path)
{
	(void)path;
	return ptrace(PTRACE_PEEKUSER, getppid(), NULL, NULL);
}

static long
probe_setuid(const char *path)
{
	(void)path;
	return setuid(0);
}

static long
probe_mount(const char *path)
{
	(void)path;
	return mount(NULL, NULL, NULL, 0, NULL);
}

/* Reading a file only its owner may: refused by the file system (an error), not the filter. */
static long
probe_read(const char *path)
{
	return path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
}

static const struct probe {
	const char *name;
	long (*fn)(const char *path);
} probes[] = {
    {"fork", probe_fork},
    {"vfork", probe_vfork},
    {"execve", probe_execve},
    {"socket", probe_socket},
    {"open-write", probe_open_write},
    {"kill-other", probe_kill_other},
    {"kill-signal", probe_kill_signal},
    {"ptrace", probe_ptrace},
    {"setuid", probe_setuid},
    {"mount", probe_mount},
    {"read", probe_read},
};

/* The lines of a status file that show the sandbox, to stdout, each after prefix: what "none"
 * checks. */
static int
print_status(const char *path, const char *prefix)
{
	FILE *file = fopen(path, "re");
	if (!file)
		return -errno;
	char line[256];
	while (fgets(line, sizeof(line), file))
		if (strncmp(line, "Cap", 3) == 0 || strncmp(line, "NoNewPrivs:", 11) == 0 ||
		    strncmp(line, "Seccomp", 7) == 0 || strncmp(line, "Uid:", 4) == 0)
			printf("%s%s", prefix, line);
	fclose(file);
	return fflush(stdout) == 0 ? 0 : -EIO;
}

/* A thread as metrics' capture starts them (metrics_pool.c), after the sandbox: what it holds
 * is its own (Linux keeps credentials and filters per thread), so it shows its own status. */
static void *
thread_status(void *data)
{
	(void)data;
	return (void *)(intptr_t)print_status("/proc/thread-self/status", "thread ");
}

static int
print_statuses(void)
{
	int r = print_status("/proc/self/status", "");
	pthread_t thread;
	void *result;
	if (r == 0 && (r = -pthread_create(&thread, NULL, thread_status, NULL)) == 0 &&
	    (r = -pthread_join(thread, &result)) == 0)
		r = (int)(intptr_t)result;
	return r;
}

int
sandbox_check(const char *probe, const char *path)
{
	const struct probe *found = NULL;
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
		if (strcmp(probe, probes[i].name) == 0)
			found = &probes[i];
	if (!found && strcmp(probe, "none") != 0) {
		fprintf(stderr, "aerie supervisor-process: unknown probe \"%s\"\n", probe);
		return 2;
	}
	/* The parent stands for the host: the one process the filter lets it signal. */
	if (sandbox_apply(getppid()) < 0)
		return 1;
	if (!found)
		return print_statuses() < 0 ? 1 : 0;
	long result = found->fn(path);
	if (result < 0) {
		fprintf(stderr, "aerie supervisor-process: %s refused: %s\n", probe,
			strerror(errno));
		return 0;
	}
	fprintf(stderr, "aerie supervisor-process: %s was not refused\n", probe);
	return 1;
}
