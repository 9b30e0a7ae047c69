/* config: an aerie.ini file → plain structs, with file:line:key errors and no side effects. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "lib/limits.h"

enum config_restart { CONFIG_RESTART_ALWAYS, CONFIG_RESTART_ON_FAILURE, CONFIG_RESTART_NEVER };
enum config_ready { CONFIG_READY_NONE, CONFIG_READY_NOTIFY };
enum config_memory_metric { CONFIG_MEMORY_PSS, CONFIG_MEMORY_RSS };
enum config_log_format { CONFIG_LOG_TEXT, CONFIG_LOG_JSON, CONFIG_LOG_JOURNAL };
enum config_kill_mode { CONFIG_KILL_GROUP, CONFIG_KILL_MAIN };

/* Defaults, in one place (SPEC.md documents them). */
#define CONFIG_DEFAULT_SUPERVISOR "supervisor.ipc"
#define CONFIG_DEFAULT_SOCKET_MODE 0600
#define CONFIG_DEFAULT_COUNT 1
#define CONFIG_DEFAULT_READY_TIMEOUT 30.0
#define CONFIG_DEFAULT_RESTART_DELAY 0.1
#define CONFIG_DEFAULT_RESTART_DELAY_MAX 30.0
#define CONFIG_DEFAULT_STOP_TIMEOUT 10.0
#define CONFIG_DEFAULT_MEMORY_CHECK_INTERVAL 10.0
#define CONFIG_DEFAULT_READY CONFIG_READY_NONE
#define CONFIG_DEFAULT_RESTART CONFIG_RESTART_ALWAYS
#define CONFIG_DEFAULT_STOP_SIGNAL SIGTERM
#define CONFIG_DEFAULT_MIN_UPTIME 1.0
#define CONFIG_DEFAULT_START_LIMIT_BURST 5 /* systemd's StartLimitBurst */
#define CONFIG_DEFAULT_START_LIMIT_INTERVAL 10.0
#define CONFIG_DEFAULT_KILL_MODE CONFIG_KILL_GROUP

enum config_cgroup { CONFIG_CGROUP_AUTO, CONFIG_CGROUP_YES, CONFIG_CGROUP_NO };
/* The limit_NAME keys, in the order of the key table. */
enum config_limit {
	CONFIG_LIMIT_NOFILE,
	CONFIG_LIMIT_NPROC,
	CONFIG_LIMIT_CORE,
	CONFIG_LIMIT_MEMLOCK,
	CONFIG_LIMIT_STACK,
	CONFIG_LIMIT_AS,
	CONFIG_LIMIT_CPU,
	CONFIG_LIMIT_FSIZE,
	CONFIG_LIMIT_COUNT,
};

/* How a service's workers are run (exec.c): applied in the child before exec. Names are
 * resolved when the config is loaded, in the host, as the child may not call NSS. */
struct config_exec {
	char *user;	    /* NULL: the host's user */
	unsigned user_line; /* for the start error of a host that is not root */
	uid_t uid;
	char *home_entry; /* "HOME=..." of user */
	char *group;	  /* NULL: the user's primary group */
	unsigned group_line;
	gid_t gid;     /* with user or group: the worker's group */
	gid_t *groups; /* with user: its groups (getgrouplist, with gid); with group: just gid */
	size_t group_count;
	bool has_umask;
	mode_t umask;
	bool has_limit[CONFIG_LIMIT_COUNT];
	struct rlimit limits[CONFIG_LIMIT_COUNT];
	bool has_nice;
	int nice; /* -20..19 */
	bool has_oom_score_adj;
	int oom_score_adj; /* -1000..1000 */
	bool no_new_privileges;
	enum config_cgroup cgroup;
	unsigned long long memory_max; /* bytes for memory.max; 0: not set */
	unsigned cpu_weight;	       /* 1..10000 for cpu.weight; 0: not set */
};
#define CONFIG_DEFAULT_MEMORY_LEAK_THRESHOLD (10ULL * 1024 * 1024) /* Falcon's threshold_size */
#define CONFIG_DEFAULT_LOG_MAX_SIZE (10ULL * 1024 * 1024)
#define CONFIG_DEFAULT_LOG_KEEP 5
#define CONFIG_DEFAULT_LOG_LINES 1000

struct config_service {
	char *name;	/* NAME of [service:NAME] */
	unsigned line;	/* line of the section header, for messages */
	char **argv;	/* command split like a shell would, NULL-terminated, argv[0] != NULL */
	unsigned count; /* 1..CONFIG_MAX_COUNT */
	char **listen;	/* "tcp:HOST:PORT" | "tcp6:[ADDR]:PORT" | "unix:PATH", as written;
			   also NULL-terminated */
	size_t listen_count;
	enum config_ready ready;
	double ready_timeout; /* seconds, > 0 */
	enum config_restart restart;
	double restart_delay;	  /* seconds, >= 0 */
	double restart_delay_max; /* seconds, >= restart_delay */
	int stop_signal;	  /* signal number */
	double stop_timeout;	  /* seconds, >= 0 */
	char *directory;	  /* absolute, resolved against the config file's directory */
	char **env;		  /* "KEY=VALUE", in file order, keys unique; NULL-terminated */
	size_t env_count;
	double health_timeout; /* seconds a ready worker may go without WATCHDOG=1; 0: off */
	unsigned long long memory_limit; /* bytes of the worker's tree; 0: no limit */
	enum config_memory_metric memory_metric;
	double memory_check_interval; /* seconds between checks, > 0 */
	unsigned
	    rolling_batch; /* workers replaced at a time in a rolling restart; 0: all at once */
	double min_uptime; /* seconds a worker must have been ready (or up) to count as started */
	unsigned start_limit_burst;  /* quick deaths within start_limit_interval that make it
					failed; 0: retry forever */
	double start_limit_interval; /* seconds */
	enum config_kill_mode kill_mode;
	struct config_exec exec;
	bool utilization; /* each worker gets AERIE_UTILIZATION, a segment of counters */
	/* Falcon's MemoryMonitor: the service's max(shared_clean) + sum(private) over it replaces
	 * the worker with most private memory; 0: no budget. */
	unsigned long long memory_total_limit;
	/* A worker that grew more than memory_leak_threshold above its largest size seen
	 * memory_leak_increases times is replaced; increases 0: no leak detection. */
	unsigned long long memory_leak_threshold;
	unsigned memory_leak_increases;
	char *log_file; /* absolute; NULL: none. Its workers' output, rotated by the host */
	unsigned long long log_max_size; /* bytes at which log_file becomes log_file.1; 0: never */
	unsigned log_keep;		 /* rotated files kept, 0..CONFIG_MAX_LOG_KEEP */
	unsigned log_lines; /* lines kept in memory for `logs`, 0..CONFIG_MAX_LOG_LINES */
};

struct config {
	char *path;	       /* absolute path of the file */
	char *directory;       /* absolute directory of the file */
	char *supervisor_path; /* absolute path of the control socket */
	mode_t socket_mode;
	char *socket_group; /* NULL when not set */
	enum config_log_format log_format;
	char *log_path;	  /* absolute; NULL: stderr as it is */
	char *prometheus; /* "tcp:HOST:PORT" for GET /metrics over HTTP; NULL: off */
	/* Below this much available memory (cgroup, else MemAvailable) workers are replaced,
	 * largest private first; 0: off. */
	unsigned long long memory_free_minimum;
	double metrics_log_interval;	 /* seconds between logs of the tree's metrics; 0: off */
	struct config_service *services; /* in file order, names unique */
	size_t service_count;		 /* >= 1 */
};

/* Loads and validates path. On failure returns -errno (-EINVAL for content errors, -EFBIG for a
 * file over CONFIG_MAX_FILE bytes, -EISDIR or -EBADFD for what is not a regular file) and writes
 * one message into error, e.g.
 *   aerie.ini:12: unknown key "restat" in [service:web] (did you mean "restart"?)
 * ret_config is untouched on failure. Messages without a line ("aerie.ini: Is a directory",
 * "aerie.ini: no [service:NAME] section ...") concern the whole file. Only a regular file is
 * read, and only up to the bounds, so the call is bounded in memory and time whatever path
 * names (a FIFO, /dev/zero, a file that grows). Not thread-safe: inih's options are
 * process-wide globals, set for the call and restored after it. */
int config_load(const char *path, struct config *ret_config, char *error, size_t error_size);
void config_free(struct config *config);
/* Whether a host running as euid and egid can run config's workers: only root can switch to
 * another user or group. 0, or -EPERM with error "/etc/aerie.ini:5: user = www-data in
 * [service:web] needs a host running as root ...". */
int config_check_user(const struct config *config, uid_t euid, gid_t egid, char *error,
		      size_t error_size);

/* Splits a command line as a POSIX shell would split words: whitespace separates, single
 * quotes are literal, double quotes allow \" \\ \$ \`, a backslash outside quotes escapes the
 * next character. No expansion of any kind. Returns 0 and a malloc'd NULL-terminated vector
 * (free with config_free_argv), or -EINVAL with *ret_error set to a static message
 * ("unterminated quote", "trailing backslash", "empty command", "empty program name"). */
int config_split_command(const char *text, char ***ret_argv, const char **ret_error);
void config_free_argv(char **argv);
