/* worker: the small program aerie runs in `make run` and the integration tests, one option per
 * worker behaviour the host has to cope with. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h> /* isfinite, a macro: no libm */
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ENV_KEYS 16
#define MAX_SECONDS 1e7 /* about 115 days: long enough for any test, small enough for time_t */

struct options {
	double ready_after; /* seconds before READY=1 */
	bool no_ready;	    /* never send READY=1 */
	const char *status; /* STATUS= text sent with READY=1 */
	double exit_after;  /* seconds after readiness; < 0: never */
	int exit_code;	    /* with exit_after */
	int signal_self;    /* with exit_after: die by this signal instead; 0: exit normally */
	bool ignore_stop;   /* SIGTERM/SIGINT only get a line on stdout */
	double stop_delay;  /* seconds between the stop signal and exit */
	bool grandchild;    /* leave an orphaned grandchild behind */
	bool zombie;	    /* leave an unreaped child behind */
	int stderr_lines;   /* lines written to stderr at start, then a partial one */
	bool print_env;	    /* print what the host gave us */
	const char *env_keys[MAX_ENV_KEYS];
	int n_env_keys;
	double watchdog_for; /* send WATCHDOG=1 (every WATCHDOG_USEC/2) for this long; < 0: always */
	bool watchdog;	     /* --watchdog given */
	long allocate_mib;   /* MiB to allocate and touch once ready (memory_limit tests) */
	bool allocate_first; /* --allocate-first: before READY=1 */
};

static const char usage_text[] =
    "Usage: worker [OPTION]...\n"
    "A worker for aerie: says it is starting, sends READY=1 and STATUS= to NOTIFY_SOCKET,\n"
    "then waits, costing no CPU, until SIGTERM or SIGINT makes it send STOPPING=1 and exit 0.\n"
    "\n"
    "  -r, --ready-after SECONDS  wait this long before READY=1 (a stop signal still works)\n"
    "  -n, --no-ready             never send READY=1 (STATUS= is still sent)\n"
    "  -s, --status TEXT          the STATUS= text sent with READY=1 (default \"ready\")\n"
    "  -x, --exit-after SECONDS   after readiness, exit on its own after this long\n"
    "  -c, --exit-code N          the exit code for that exit, 0..255 (default 0)\n"
    "  -k, --signal-self SIG      die by signal SIG instead (SEGV, KILL, ABRT or a number)\n"
    "      --crash                the same as --signal-self SEGV\n"
    "                             (--exit-code and --signal-self alone mean --exit-after 0)\n"
    "  -i, --ignore-stop          ignore SIGTERM and SIGINT (print a line, keep running)\n"
    "  -d, --stop-delay SECONDS   on SIGTERM or SIGINT, drain this long before exiting\n"
    "  -g, --spawn-grandchild     leave an orphaned grandchild in our process group\n"
    "  -z, --leave-zombie         fork a child that exits at once, and never reap it\n"
    "  -e, --stderr-lines N       write N lines to stderr, then a line without newline\n"
    "  -p, --print-env            print what the host gave us: environment, cwd, fds, signals\n"
    "  -K, --env-key NAME         with --print-env, print NAME too (repeatable)\n"
    "  -w, --watchdog             once ready, send WATCHDOG=1 every WATCHDOG_USEC/2\n"
    "  -a, --allocate MIB         once ready, allocate and touch MIB mebibytes (and keep them)\n"
    "      --allocate-first       with --allocate: before READY=1 instead, so that a ready\n"
    "                             worker has its full size (memory_total_limit tests)\n"
    "  -W, --watchdog-for SECONDS the same, but go quiet after SECONDS (a hang)\n"
    "  -h, --help                 show this help\n"
    "\n"
    "Exit status: 0 after a graceful stop, 2 on bad usage, 1 on a system error.\n";

/* "web.0": AERIE_SERVICE.AERIE_WORKER, set once at start, the prefix of every line we say. */
static char name[128];

/* Writes one whole line to stdout at once: the host reads it as soon as we write it. */
static void
say(const char *format, ...)
{
	va_list ap;
	int r;

	va_start(ap, format);
	r = printf("worker %s ", name);
	if (r >= 0)
		r = vprintf(format, ap);
	if (r >= 0)
		r = putchar('\n');
	va_end(ap);
	if (r < 0 || fflush(stdout) == EOF) {
		/* Nothing we do depends on stdout; say so where someone may still look. */
		fprintf(stderr, "worker: stdout: %s\n", strerror(errno));
		clearerr(stdout);
	}
}

static const char *
signal_name(int sig)
{
	const char *abbrev = sigabbrev_np(sig);

	return abbrev ? abbrev : "?";
}

/* Accepts "SEGV", "SIGSEGV", "segv" and "11". Returns 0 for anything else. */
static int
parse_signal(const char *text)
{
	char *end;
	long number;

	if (strncasecmp(text, "SIG", 3) == 0)
		text += 3;
	for (int sig = 1; sig < SIGRTMIN; sig++) {
		const char *abbrev = sigabbrev_np(sig);

		if (abbrev && strcasecmp(abbrev, text) == 0)
			return sig;
	}
	errno = 0;
	number = strtol(text, &end, 10);
	if (errno || end == text || *end || number < 1 || number >= NSIG)
		return 0;
	return (int)number;
}

static bool
parse_seconds(const char *text, double *ret_seconds)
{
	char *end;
	double seconds;

	errno = 0;
	seconds = strtod(text, &end);
	if (errno || end == text || *end || !isfinite(seconds) || seconds < 0 ||
	    seconds > MAX_SECONDS)
		return false;
	*ret_seconds = seconds;
	return true;
}

static bool
parse_int(const char *text, int min, int max, int *ret_value)
{
	char *end;
	long value;

	errno = 0;
	value = strtol(text, &end, 10);
	if (errno || end == text || *end || value < min || value > max)
		return false;
	*ret_value = (int)value;
	return true;
}

static int
usage_error(const char *format, ...)
{
	va_list ap;

	fputs("worker: ", stderr);
	va_start(ap, format);
	vfprintf(stderr, format, ap);
	va_end(ap);
	fputs("\nTry 'worker --help'.\n", stderr);
	return 2;
}

/* Returns -1 to go on, or the exit status (0 after --help, 2 on bad usage). */
static int
parse_options(int argc, char **argv, struct options *o)
{
	enum { OPT_CRASH = 256, OPT_ALLOCATE_FIRST };
	static const struct option longopts[] = {
	    {"ready-after", required_argument, NULL, 'r'},
	    {"no-ready", no_argument, NULL, 'n'},
	    {"status", required_argument, NULL, 's'},
	    {"exit-after", required_argument, NULL, 'x'},
	    {"exit-code", required_argument, NULL, 'c'},
	    {"signal-self", required_argument, NULL, 'k'},
	    {"crash", no_argument, NULL, OPT_CRASH},
	    {"ignore-stop", no_argument, NULL, 'i'},
	    {"stop-delay", required_argument, NULL, 'd'},
	    {"spawn-grandchild", no_argument, NULL, 'g'},
	    {"leave-zombie", no_argument, NULL, 'z'},
	    {"stderr-lines", required_argument, NULL, 'e'},
	    {"print-env", no_argument, NULL, 'p'},
	    {"env-key", required_argument, NULL, 'K'},
	    {"watchdog", no_argument, NULL, 'w'},
	    {"allocate", required_argument, NULL, 'a'},
	    {"allocate-first", no_argument, NULL, OPT_ALLOCATE_FIRST},
	    {"watchdog-for", required_argument, NULL, 'W'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	bool exit_wanted = false;
	int c;

	*o = (struct options){.status = "ready", .exit_after = -1, .watchdog_for = -1};
	/* getopt prints its own message for unknown options and missing arguments. */
	while ((c = getopt_long(argc, argv, "r:ns:x:c:k:id:gze:pK:hwW:a:", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (!parse_seconds(optarg, &o->ready_after))
				return usage_error("--ready-after: bad seconds \"%s\"", optarg);
			break;
		case 'n':
			o->no_ready = true;
			break;
		case 's':
			o->status = optarg;
			break;
		case 'x':
			if (!parse_seconds(optarg, &o->exit_after))
				return usage_error("--exit-after: bad seconds \"%s\"", optarg);
			break;
		case 'c':
			if (!parse_int(optarg, 0, 255, &o->exit_code))
				return usage_error("--exit-code: want 0..255, not \"%s\"", optarg);
			exit_wanted = true;
			break;
		case 'k':
			o->signal_self = parse_signal(optarg);
			if (o->signal_self == 0)
				return usage_error("--signal-self: unknown signal \"%s\"", optarg);
			exit_wanted = true;
			break;
		case OPT_CRASH:
			o->signal_self = SIGSEGV;
			exit_wanted = true;
			break;
		case 'i':
			o->ignore_stop = true;
			break;
		case 'w':
			o->watchdog = true;
			break;
		case OPT_ALLOCATE_FIRST:
			o->allocate_first = true;
			break;
		case 'a': {
			char *end;
			o->allocate_mib = strtol(optarg, &end, 10);
			if (*end || end == optarg || o->allocate_mib < 0 || o->allocate_mib > 65536)
				return usage_error("--allocate: bad MiB \"%s\"", optarg);
			break;
		}
		case 'W':
			o->watchdog = true;
			if (!parse_seconds(optarg, &o->watchdog_for))
				return usage_error("--watchdog-for: bad seconds \"%s\"", optarg);
			break;
		case 'd':
			if (!parse_seconds(optarg, &o->stop_delay))
				return usage_error("--stop-delay: bad seconds \"%s\"", optarg);
			break;
		case 'g':
			o->grandchild = true;
			break;
		case 'z':
			o->zombie = true;
			break;
		case 'e':
			if (!parse_int(optarg, 0, 1000000, &o->stderr_lines))
				return usage_error("--stderr-lines: want 0..1000000, not \"%s\"",
						   optarg);
			break;
		case 'p':
			o->print_env = true;
			break;
		case 'K':
			if (o->n_env_keys == MAX_ENV_KEYS)
				return usage_error("--env-key: at most %d", MAX_ENV_KEYS);
			o->env_keys[o->n_env_keys++] = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return fflush(stdout) == EOF ? 1 : 0;
		default:
			fputs("Try 'worker --help'.\n", stderr);
			return 2;
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument \"%s\"", argv[optind]);
	if (exit_wanted && o->exit_after < 0)
		o->exit_after = 0;
	return -1;
}

/* sd_notify by hand: one datagram per message to the address in NOTIFY_SOCKET. */
static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_addr_len;

/* Returns 0 (also when NOTIFY_SOCKET is unset: then messages go nowhere) or -errno. */
static int
notify_open(void)
{
	const char *address = getenv("NOTIFY_SOCKET");
	size_t length;

	if (!address || !*address)
		return 0;
	length = strlen(address);
	if ((address[0] != '/' && address[0] != '@') || length >= sizeof(notify_addr.sun_path))
		return -EINVAL;
	notify_addr.sun_family = AF_UNIX;
	memcpy(notify_addr.sun_path, address, length);
	/* "@name" is Linux's abstract namespace: a leading NUL byte, and no NUL at the end. */
	if (address[0] == '@')
		notify_addr.sun_path[0] = '\0';
	notify_addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + length);
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	return notify_fd < 0 ? -errno : 0;
}

/* Sends "KEY=VALUE\n..." as one datagram, so READY=1 and its STATUS= arrive together. */
static void
notify(const char *message)
{
	if (notify_fd < 0)
		return;
	if (sendto(notify_fd, message, strlen(message), MSG_NOSIGNAL,
		   (const struct sockaddr *)&notify_addr, notify_addr_len) < 0)
		fprintf(stderr, "worker: sd_notify %.*s: %s\n", (int)strcspn(message, "\n"),
			message, strerror(errno));
}

static void
print_line(const char *key, const char *value)
{
	if (printf("%s=%s\n", key, value) < 0 || fflush(stdout) == EOF) {
		fprintf(stderr, "worker: stdout: %s\n", strerror(errno));
		clearerr(stdout);
	}
}

static void
print_env_value(const char *key)
{
	const char *value = getenv(key);

	/* An unset variable gets no line at all, so that tests can tell it from an empty one. */
	if (value)
		print_line(key, value);
}

/* fds=0,1,2: procfs lists a directory of fds in ascending order. */
static void
print_fds(void)
{
	char list[4096] = "";
	size_t used = 0;
	struct dirent *entry;
	DIR *dir = opendir("/proc/self/fd");

	if (!dir) {
		fprintf(stderr, "worker: /proc/self/fd: %s\n", strerror(errno));
		return;
	}
	while ((errno = 0, entry = readdir(dir))) {
		if (entry->d_name[0] == '.' || atoi(entry->d_name) == dirfd(dir))
			continue;
		if (used + strlen(entry->d_name) + 2 > sizeof(list))
			break; /* thousands of fds: the start of the list shows the leak well enough
				*/
		used += (size_t)sprintf(list + used, "%s%s", used ? "," : "", entry->d_name);
	}
	if (errno)
		fprintf(stderr, "worker: /proc/self/fd: %s\n", strerror(errno));
	closedir(dir);
	print_line("fds", list);
}

/* sigmask= and sigign=: the SigBlk and SigIgn masks in hex, as the kernel shows them. */
static void
print_signal_masks(void)
{
	char *line = NULL;
	size_t size = 0;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f) {
		fprintf(stderr, "worker: /proc/self/status: %s\n", strerror(errno));
		return;
	}
	while (getline(&line, &size, f) > 0) {
		const char *key = NULL;

		if (strncmp(line, "SigBlk:", 7) == 0)
			key = "sigmask";
		else if (strncmp(line, "SigIgn:", 7) == 0)
			key = "sigign";
		if (key) {
			line[strcspn(line, "\n")] = '\0';
			print_line(key, line + 7 + strspn(line + 7, " \t"));
		}
	}
	free(line);
	fclose(f);
}

/* Runs before we block a signal or open a file, so that it shows what the host gave us. */
static void
print_env(const struct options *o)
{
	static const char *const keys[] = {
	    "NOTIFY_SOCKET", "AERIE_SERVICE", "AERIE_WORKER",	"AERIE_GENERATION",
	    "LISTEN_FDS",    "LISTEN_PID",    "LISTEN_FDNAMES",
	};
	char *cwd;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		print_env_value(keys[i]);
	for (int i = 0; i < o->n_env_keys; i++)
		print_env_value(o->env_keys[i]);
	cwd = getcwd(NULL, 0);
	if (cwd)
		print_line("cwd", cwd);
	else
		fprintf(stderr, "worker: getcwd: %s\n", strerror(errno));
	free(cwd);
	print_fds();
	print_signal_masks();
}

static void
write_stderr_lines(int n)
{
	for (int i = 1; i <= n; i++)
		fprintf(stderr, "stderr line %d\n", i);
	/* No newline: the host has to hold this until more comes or the pipe closes. */
	fputs("stderr partial line", stderr);
}

static struct timespec
deadline_after(double seconds)
{
	struct timespec t = {0, 0};

	(void)clock_gettime(CLOCK_MONOTONIC, &t); /* cannot fail for this clock */
	t.tv_sec += (time_t)seconds;
	t.tv_nsec += (long)((seconds - (double)(time_t)seconds) * 1e9);
	if (t.tv_nsec >= 1000000000) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000;
	}
	return t;
}

/* Blocks, at no CPU cost, for SIGTERM or SIGINT until deadline (NULL: forever). Returns the
 * signal, 0 once the deadline has passed, or -errno. */
static int
wait_signal(const sigset_t *stop_signals, const struct timespec *deadline)
{
	for (;;) {
		struct timespec now, left;
		int sig;

		if (!deadline) {
			sig = sigwaitinfo(stop_signals, NULL);
		} else {
			if (clock_gettime(CLOCK_MONOTONIC, &now) < 0)
				return -errno;
			left.tv_sec = deadline->tv_sec - now.tv_sec;
			left.tv_nsec = deadline->tv_nsec - now.tv_nsec;
			if (left.tv_nsec < 0) {
				left.tv_sec--;
				left.tv_nsec += 1000000000;
			}
			if (left.tv_sec < 0)
				return 0;
			sig = sigtimedwait(stop_signals, NULL, &left);
		}
		if (sig > 0)
			return sig;
		if (errno == EAGAIN)
			return 0;
		if (errno != EINTR) /* EINTR: stopped and continued, say; wait again */
			return -errno;
	}
}

/* --watchdog: the ping schedule, started once the worker is ready. */
static bool watchdog_on;
static double watchdog_interval;
static struct timespec watchdog_next, watchdog_end;
static bool watchdog_ends;

static bool
earlier(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void
watchdog_ping(void)
{
	if (watchdog_ends && !earlier(&watchdog_next, &watchdog_end)) {
		say("watchdog: going quiet");
		watchdog_on = false;
		return;
	}
	notify("WATCHDOG=1");
	watchdog_next = deadline_after(watchdog_interval);
}

/* Starts pinging at half of WATCHDOG_USEC, as sd_watchdog_enabled() advises. */
static void
watchdog_start(const struct options *o)
{
	const char *usec = getenv("WATCHDOG_USEC");
	if (!o->watchdog || !usec || atof(usec) <= 0) {
		if (o->watchdog)
			say("watchdog: no WATCHDOG_USEC");
		return;
	}
	watchdog_interval = atof(usec) / 2e6;
	watchdog_on = true;
	watchdog_ends = o->watchdog_for >= 0;
	if (watchdog_ends)
		watchdog_end = deadline_after(o->watchdog_for);
	watchdog_next = deadline_after(watchdog_interval);
}

/* Waits until deadline (NULL: forever), handling stop signals. Returns 0 at the deadline, 1 after
 * a graceful stop, -errno on failure. */
static int
run_until(const struct options *o, const sigset_t *stop_signals, const struct timespec *deadline)
{
	for (;;) {
		/* The next WATCHDOG=1 is a deadline of its own, when it comes first. */
		const struct timespec *until = deadline;
		if (watchdog_on && (!deadline || earlier(&watchdog_next, deadline)))
			until = &watchdog_next;
		int sig = wait_signal(stop_signals, until);

		if (sig == 0 && until == &watchdog_next) {
			watchdog_ping();
			continue;
		}
		if (sig <= 0)
			return sig;
		if (o->ignore_stop) {
			say("ignoring SIG%s", signal_name(sig));
			continue;
		}
		say("stopping on SIG%s", signal_name(sig));
		notify("STOPPING=1");
		if (o->stop_delay > 0) {
			/* Signals stay blocked: a second SIGTERM does not cut the drain short. */
			struct timespec end = deadline_after(o->stop_delay);

			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end, NULL) == EINTR)
				;
		}
		say("stopped");
		return 1;
	}
}

/* The grandchild: a copy of us that keeps nothing of the host's but the process group (so that
 * the host's kill of the group reaches it), and pauses until a signal kills it. It writes its pid
 * to report_fd once it is set up; closing report_fd then tells the worker it is done. */
static void
grandchild_main(int report_fd)
{
	sigset_t none;
	pid_t pid = getpid();
	int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(null_fd, 1) < 0 || dup2(null_fd, 2) < 0)
		_exit(1);
	(void)signal(SIGTERM, SIG_DFL);
	(void)signal(SIGINT, SIG_DFL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	(void)prctl(PR_SET_NAME, "worker-orphan");
	if (write(report_fd, &pid, sizeof(pid)) != sizeof(pid))
		_exit(1);
	(void)close_range(3, ~0U, 0);
	for (;;)
		pause();
}

/* Forks a child that forks the grandchild and exits: the grandchild is then an orphan,
 * reparented to the nearest subreaper (the host, if it is one) or to PID 1. Returns once the
 * grandchild is set up, so that what a test sees of it is final. */
static int
spawn_grandchild(pid_t *ret_pid)
{
	char buffer[sizeof(pid_t) + 1];
	size_t got = 0;
	int fds[2], status, r = 0;
	pid_t child, pid;
	ssize_t n;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	child = fork();
	if (child == 0) {
		pid = fork();
		if (pid == 0)
			grandchild_main(fds[1]);
		_exit(pid < 0 ? 1 : 0);
	}
	if (child < 0)
		r = -errno;
	close(fds[1]);
	/* Read to EOF: every write end is closed once the grandchild has closed its fds. */
	while (child > 0 && got < sizeof(buffer)) {
		n = read(fds[0], buffer + got, sizeof(buffer) - got);
		if (n == 0 || (n < 0 && errno != EINTR))
			break;
		if (n > 0)
			got += (size_t)n;
	}
	close(fds[0]);
	if (r < 0)
		return r;
	/* Reap the middle child: the one child that must not be left behind. */
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (got != sizeof(pid) || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -ECHILD;
	memcpy(&pid, buffer, sizeof(pid));
	*ret_pid = pid;
	return 0;
}

/* Forks a child that exits at once and is never reaped. Returns once it is a zombie. */
static int
leave_zombie(pid_t *ret_pid)
{
	siginfo_t info;
	pid_t pid = fork();

	if (pid == 0) {
		(void)prctl(PR_SET_NAME, "worker-zombie");
		_exit(0);
	}
	if (pid < 0)
		return -errno;
	/* WNOWAIT waits for the exit but leaves the child waitable: a zombie. */
	while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) < 0)
		if (errno != EINTR)
			return -errno;
	*ret_pid = pid;
	return 0;
}

/* Dies by sig, the way a crash or a kill looks to the host. Returns only if sig does not kill
 * (CHLD, CONT, ...). */
static void
die_by_signal(int sig)
{
	struct rlimit no_core = {0, 0};
	sigset_t set;

	/* A crash test should not leave a core file in the worker's directory. */
	(void)setrlimit(RLIMIT_CORE, &no_core);
	(void)signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	(void)sigprocmask(SIG_UNBLOCK, &set, NULL);
	(void)raise(sig);
}

/* Escapes through a volatile object, so that the compiler keeps the pages written. */
static char *volatile allocated;

/* Allocates and touches mib MiB, kept: resident, which is what the memory checks measure. */
static int
allocate(long mib)
{
	if (mib <= 0)
		return 0;
	size_t size = (size_t)mib << 20;
	char *memory = malloc(size);
	if (!memory) {
		fprintf(stderr, "worker: cannot allocate %ld MiB\n", mib);
		return -1;
	}
	memset(memory, 1, size);
	allocated = memory; /* for the life of the process */
	say("allocated %ld MiB", mib);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *service = getenv("AERIE_SERVICE"), *index = getenv("AERIE_WORKER");
	const char *generation = getenv("AERIE_GENERATION");
	struct options o;
	sigset_t stop_signals;
	struct timespec deadline;
	char message[4096]; /* as long as an sd_notify datagram the host reads */
	pid_t pid = 0;
	int r;

	r = parse_options(argc, argv, &o);
	if (r >= 0)
		return r;
	if (setvbuf(stdout, NULL, _IOLBF, 0) != 0)
		fprintf(stderr, "worker: setvbuf: %s\n", strerror(errno));
	snprintf(name, sizeof(name), "%s.%s", service ? service : "-", index ? index : "-");
	say("generation %s pid %d starting", generation ? generation : "-", (int)getpid());
	if (o.print_env)
		print_env(&o);
	if (o.stderr_lines > 0)
		write_stderr_lines(o.stderr_lines);

	/* Stop signals are blocked and taken with sigwaitinfo: no handler, no race, no polling.
	 * An ignored signal is dropped even while blocked, so undo any SIG_IGN we inherited. */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGINT);
	if (sigprocmask(SIG_BLOCK, &stop_signals, NULL) < 0 ||
	    signal(SIGTERM, SIG_DFL) == SIG_ERR || signal(SIGINT, SIG_DFL) == SIG_ERR) {
		fprintf(stderr, "worker: blocking SIGTERM and SIGINT: %s\n", strerror(errno));
		return 1;
	}
	r = notify_open();
	if (r < 0)
		fprintf(stderr, "worker: NOTIFY_SOCKET \"%s\": %s: not notifying\n",
			getenv("NOTIFY_SOCKET"), strerror(-r));

	if (o.grandchild) {
		r = spawn_grandchild(&pid);
		if (r < 0) {
			fprintf(stderr, "worker: spawning a grandchild: %s\n", strerror(-r));
			return 1;
		}
		say("grandchild %d", (int)pid);
	}
	if (o.zombie) {
		r = leave_zombie(&pid);
		if (r < 0) {
			fprintf(stderr, "worker: forking a zombie: %s\n", strerror(-r));
			return 1;
		}
		say("zombie %d", (int)pid);
	}

	r = 0;
	if (o.allocate_first && allocate(o.allocate_mib) < 0)
		return 1;
	if (o.ready_after > 0) {
		deadline = deadline_after(o.ready_after);
		r = run_until(&o, &stop_signals, &deadline);
	}
	if (r == 0) {
		/* --no-ready still sends STATUS=, so tests see that only READY=1 makes a worker
		 * ready. */
		snprintf(message, sizeof(message), "%sSTATUS=%s", o.no_ready ? "" : "READY=1\n",
			 o.status);
		notify(message);
		say(o.no_ready ? "not ready (--no-ready)" : "ready");
		watchdog_start(&o);
		if (!o.allocate_first && allocate(o.allocate_mib) < 0)
			return 1;
		if (o.exit_after >= 0)
			deadline = deadline_after(o.exit_after);
		r = run_until(&o, &stop_signals, o.exit_after >= 0 ? &deadline : NULL);
	}
	if (r < 0) {
		fprintf(stderr, "worker: waiting for signals: %s\n", strerror(-r));
		return 1;
	}
	if (r == 1)
		return 0; /* stopped gracefully */
	if (o.signal_self) {
		say("raising SIG%s", signal_name(o.signal_self));
		die_by_signal(o.signal_self);
		fprintf(stderr, "worker: still alive after SIG%s\n", signal_name(o.signal_self));
		return 1;
	}
	say("exiting with code %d", o.exit_code);
	return o.exit_code;
}
