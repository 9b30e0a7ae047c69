/* parser: what the files of config/ share while they load one file; private to config/. */
/* The files are layered and call only downwards: config.c (inih glue, sections, load) uses keys.c
 * and suggest.c; suggest.c uses keys.c; all of them use parser.c, value.c, path.c and words.c,
 * which use none of the others. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config/config.h"
#include "lib/limits.h"

enum section { SECTION_NONE, SECTION_HOST, SECTION_SERVICE };

enum key {
	KEY_SUPERVISOR,
	KEY_SOCKET_MODE,
	KEY_SOCKET_GROUP,
	KEY_COMMAND,
	KEY_COUNT,
	KEY_LISTEN,
	KEY_READY,
	KEY_READY_TIMEOUT,
	KEY_RESTART,
	KEY_RESTART_DELAY,
	KEY_RESTART_DELAY_MAX,
	KEY_STOP_SIGNAL,
	KEY_STOP_TIMEOUT,
	KEY_DIRECTORY,
	KEY_ENV,
	KEY_HEALTH_TIMEOUT,
	KEY_ROLLING_BATCH,
	KEY_MEMORY_LIMIT,
	KEY_MEMORY_METRIC,
	KEY_MEMORY_CHECK_INTERVAL,
	KEY_LOG_FORMAT,
	KEY_LOG,
	KEY_PROMETHEUS,
	KEY_MIN_UPTIME,
	KEY_START_LIMIT_BURST,
	KEY_START_LIMIT_INTERVAL,
	KEY_KILL_MODE,
	KEY_USER,
	KEY_GROUP,
	KEY_UMASK,
	KEY_LIMIT_NOFILE, /* the limit_NAME keys in the order of enum config_limit */
	KEY_LIMIT_NPROC,
	KEY_LIMIT_CORE,
	KEY_LIMIT_MEMLOCK,
	KEY_LIMIT_STACK,
	KEY_LIMIT_AS,
	KEY_LIMIT_CPU,
	KEY_LIMIT_FSIZE,
	KEY_NICE,
	KEY_OOM_SCORE_ADJ,
	KEY_NO_NEW_PRIVILEGES,
	KEY_CGROUP,
	KEY_MEMORY_MAX,
	KEY_CPU_WEIGHT,
	KEY_UTILIZATION,
	KEY_MEMORY_TOTAL_LIMIT,
	KEY_MEMORY_LEAK_THRESHOLD,
	KEY_MEMORY_LEAK_INCREASES,
	KEY_MEMORY_FREE_MINIMUM,
	KEY_METRICS_LOG_INTERVAL,
	KEY_LOG_FILE,
	KEY_LOG_MAX_SIZE,
	KEY_LOG_KEEP,
	KEY_LOG_LINES,
	KEY__MAX,
};

struct parser {
	const char *user_path; /* as the user gave it: every message starts with it */
	FILE *file;
	char buffer[CONFIG_MAX_LINE + 2]; /* the current line, its newline and a NUL */
	size_t file_bytes;		  /* read so far, at most CONFIG_MAX_FILE */
	unsigned line;
	struct config config; /* being built; freed whole on failure */
	enum section section;
	char *section_name;	      /* "host" or "service:web", for messages */
	unsigned host_line;	      /* where [host] was, 0 if nowhere yet */
	unsigned key_lines[KEY__MAX]; /* where each key of the current section was first set */
	int error;		      /* 0, or the first failure as a negative errno */
	char *message;
	size_t message_size;
};

struct key_info {
	const char *name;
	enum section section;
	bool repeatable;
	int (*parse)(struct parser *p, const struct key_info *key, const char *value);
};

/* parser.c: messages and the section being read. */

/* Records a failure and its message, keeping the first only: later ones are usually
 * consequences of it. line 0 is for problems of the whole file. Returns p->error. */
int parser_fail_at(struct parser *p, int error, unsigned line, const char *format, ...)
    __attribute__((format(printf, 4, 5)));
/* A content error (-EINVAL) at the current line. */
#define parser_fail(p, ...) parser_fail_at((p), -EINVAL, (p)->line, __VA_ARGS__)
/* A system error (-ENOMEM, -EIO...) of the whole file: strerror's text. */
int parser_fail_errno(struct parser *p, int error);
/* "invalid KEY "VALUE" in [SECTION] (HINT)". */
int parser_fail_invalid(struct parser *p, const struct key_info *key, const char *value,
			const char *hint);
/* The [service:NAME] being read. */
struct config_service *parser_service(struct parser *p);
/* Whether name is made of letters, digits, _ and - (and is not empty). */
bool parser_service_name_valid(const char *name);
/* Fails (at line) when path does not fit a unix socket's address. */
int parser_check_socket_path(struct parser *p, unsigned line, const char *path);

/* keys.c: the table of keys, each with its parser. */

extern const struct key_info keys_table[KEY__MAX];
/* The key called name in section; NULL if there is none. */
const struct key_info *keys_find(enum section section, const char *name);

/* exec.c: the keys of how workers run (user, limits, cgroup...). */

int exec_parse_user(struct parser *p, const struct key_info *key, const char *value);
int exec_parse_group(struct parser *p, const struct key_info *key, const char *value);
int exec_parse_umask(struct parser *p, const struct key_info *key, const char *value);
/* limit_NAME: which limit is told by key's place in keys_table. */
int exec_parse_limit(struct parser *p, const struct key_info *key, const char *value);
int exec_parse_nice(struct parser *p, const struct key_info *key, const char *value);
int exec_parse_oom_score_adj(struct parser *p, const struct key_info *key, const char *value);
int exec_parse_no_new_privileges(struct parser *p, const struct key_info *key, const char *value);
int exec_parse_cgroup(struct parser *p, const struct key_info *key, const char *value);
int exec_parse_memory_max(struct parser *p, const struct key_info *key, const char *value);
int exec_parse_cpu_weight(struct parser *p, const struct key_info *key, const char *value);
/* At the end of a [service:NAME]: the user's groups, and HOME, USER and LOGNAME in its env
 * unless env sets them. */
int exec_finish(struct parser *p, struct config_service *service);
void exec_free(struct config_exec *exec);

/* suggest.c: "did you mean" for what is not known. */

/* Optimal string alignment distance between a and b (32 and more for long strings). */
unsigned suggest_distance(const char *a, const char *b);
/* Fails with "unknown key ..." and the closest key of the section, or where name belongs. */
int suggest_unknown_key(struct parser *p, const char *name);
/* Fails with "unknown section [...]" and the section that was probably meant. */
int suggest_unknown_section(struct parser *p, const char *name);

/* value.c: values of keys, pure: 0 or -EINVAL, *ret_value untouched on failure. */

/* Digits with an optional fraction, nothing else (no sign, exponent, "inf"). */
int value_decimal(const char *text, double *ret_value);
/* Digits of base (8 or 10) making at most max. */
int value_unsigned(const char *text, unsigned base, unsigned long max, unsigned long *ret_value);
/* A decimal of seconds from 0 (more than 0 if positive) to CONFIG_MAX_SECONDS. */
int value_seconds(const char *text, bool positive, double *ret_seconds);
/* A number of bytes, with an optional binary unit: "65536", "512M", "1.5G", at most 10^18. */
int value_size(const char *text, unsigned long long *ret_bytes);

/* path.c: paths made lexically: no symbolic link is resolved. */

/* path if absolute, else directory/path; cleaned of "." and repeated slashes. NULL when out of
 * memory. */
char *path_join(const char *directory, const char *path);
/* The absolute path and directory of the file at path (relative to the working directory). */
int path_locate(const char *path, char **ret_path, char **ret_directory);

/* words.c: vectors of strings. */

/* Appends a copy of value to a NULL-terminated vector of *count strings. 0 or -ENOMEM. */
int words_append(char ***vector, size_t *count, const char *value);
