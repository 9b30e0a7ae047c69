/* config: an aerie.ini file → plain structs, with file:line:key errors and no side effects. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lib/limits.h"

enum config_restart { CONFIG_RESTART_ALWAYS, CONFIG_RESTART_ON_FAILURE, CONFIG_RESTART_NEVER };
enum config_ready { CONFIG_READY_NONE, CONFIG_READY_NOTIFY };
enum config_memory_metric { CONFIG_MEMORY_PSS, CONFIG_MEMORY_RSS };
enum config_log_format { CONFIG_LOG_TEXT, CONFIG_LOG_JSON, CONFIG_LOG_JOURNAL };

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
	char *log_file;	   /* absolute; NULL: none. Its workers' output, rotated by the host */
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
	char *log_path;			 /* absolute; NULL: stderr as it is */
	char *prometheus;		 /* "tcp:HOST:PORT" for GET /metrics over HTTP; NULL: off */
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

/* Splits a command line as a POSIX shell would split words: whitespace separates, single
 * quotes are literal, double quotes allow \" \\ \$ \`, a backslash outside quotes escapes the
 * next character. No expansion of any kind. Returns 0 and a malloc'd NULL-terminated vector
 * (free with config_free_argv), or -EINVAL with *ret_error set to a static message
 * ("unterminated quote", "trailing backslash", "empty command", "empty program name"). */
int config_split_command(const char *text, char ***ret_argv, const char **ret_error);
void config_free_argv(char **argv);
