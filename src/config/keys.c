/* keys: the table of every key of a config file, each with the parser of its value. */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/parser.h"
#include "lib/listen_spec.h"
#include "lib/signame.h"

static int
parse_seconds(struct parser *p, const struct key_info *key, const char *value, bool positive,
	      double *ret_seconds)
{
	if (value_seconds(value, positive, ret_seconds) < 0)
		return parser_fail_invalid(
		    p, key, value,
		    positive ? "expected seconds, more than 0 and at most 31536000"
			     : "expected seconds from 0 to 31536000");
	return 0;
}

static int
parse_path(struct parser *p, const struct key_info *key, const char *value, char **ret_path)
{
	if (*value == '\0')
		return parser_fail_invalid(p, key, value, "expected a path");
	char *path = path_join(p->config.directory, value);
	if (!path)
		return parser_fail_errno(p, -ENOMEM);
	*ret_path = path;
	return 0;
}

static int
parse_supervisor(struct parser *p, const struct key_info *key, const char *value)
{
	if (parse_path(p, key, value, &p->config.supervisor_path) < 0)
		return p->error;
	return parser_check_socket_path(p, p->line, p->config.supervisor_path);
}

static int
parse_socket_mode(struct parser *p, const struct key_info *key, const char *value)
{
	unsigned long mode;
	if (value_unsigned(value, 8, 07777, &mode) < 0)
		return parser_fail_invalid(p, key, value, "expected an octal mode such as 0660");
	p->config.socket_mode = (mode_t)mode;
	return 0;
}

static int
parse_socket_group(struct parser *p, const struct key_info *key, const char *value)
{
	if (*value == '\0')
		return parser_fail_invalid(p, key, value, "expected a group name or number");
	/* Checked here rather than when the socket is made, so that it is a config error with
	 * its line like any other. */
	unsigned long gid;
	if (!getgrnam(value) && value_unsigned(value, 10, UINT32_MAX - 1, &gid) < 0)
		return parser_fail_invalid(p, key, value, "no such group");
	if (!(p->config.socket_group = strdup(value)))
		return parser_fail_errno(p, -ENOMEM);
	return 0;
}

/* Whether inih cut an inline comment off this raw "key = value" line: a ";" after white space
 * past the "=" (or ":"). Quotes do not protect it, which is the surprise worth a hint. */
static bool
comment_cut(const char *line)
{
	const char *c = line + strcspn(line, "=:");
	for (bool space = false; *c; c++) {
		if (space && *c == ';')
			return true;
		space = isspace((unsigned char)*c);
	}
	return false;
}

static int
parse_command(struct parser *p, const struct key_info *key, const char *value)
{
	const char *problem = "invalid command";
	int r = config_split_command(value, &parser_service(p)->argv, &problem);
	if (r == -ENOMEM)
		return parser_fail_errno(p, r);
	if (r < 0 && strcmp(problem, "unterminated quote") == 0 && comment_cut(p->buffer))
		return parser_fail_invalid(
		    p, key, value, "unterminated quote; \" ;\" starts a comment, even in quotes");
	if (r < 0)
		return parser_fail_invalid(p, key, value, problem);
	return 0;
}

static int
parse_count(struct parser *p, const struct key_info *key, const char *value)
{
	unsigned long count;
	if (value_unsigned(value, 10, CONFIG_MAX_COUNT, &count) < 0 || count == 0)
		return parser_fail_invalid(p, key, value,
					   "expected a whole number from 1 to 10000");
	parser_service(p)->count = (unsigned)count;
	return 0;
}

static int
parse_listen(struct parser *p, const struct key_info *key, const char *value)
{
	struct config_service *service = parser_service(p);
	struct listen_spec spec;
	const char *problem;
	if (listen_spec_parse(value, &spec, &problem) < 0)
		return parser_fail_invalid(p, key, value, problem);
	for (size_t i = 0; i < service->listen_count; i++)
		if (strcmp(service->listen[i], value) == 0)
			return parser_fail(p, "duplicate listen \"%s\" in [%s]", value,
					   p->section_name);
	if (service->listen_count == CONFIG_MAX_LISTEN)
		return parser_fail(p, "more than %d listen in [%s]", CONFIG_MAX_LISTEN,
				   p->section_name);
	if (words_append(&service->listen, &service->listen_count, value) < 0)
		return parser_fail_errno(p, -ENOMEM);
	return 0;
}

static int
parse_ready(struct parser *p, const struct key_info *key, const char *value)
{
	if (strcmp(value, "notify") == 0)
		parser_service(p)->ready = CONFIG_READY_NOTIFY;
	else if (strcmp(value, "none") == 0)
		parser_service(p)->ready = CONFIG_READY_NONE;
	else
		return parser_fail_invalid(p, key, value, "expected notify or none");
	return 0;
}

static int
parse_ready_timeout(struct parser *p, const struct key_info *key, const char *value)
{
	return parse_seconds(p, key, value, true, &parser_service(p)->ready_timeout);
}

static int
parse_restart(struct parser *p, const struct key_info *key, const char *value)
{
	if (strcmp(value, "always") == 0)
		parser_service(p)->restart = CONFIG_RESTART_ALWAYS;
	else if (strcmp(value, "on-failure") == 0)
		parser_service(p)->restart = CONFIG_RESTART_ON_FAILURE;
	else if (strcmp(value, "never") == 0)
		parser_service(p)->restart = CONFIG_RESTART_NEVER;
	else
		return parser_fail_invalid(p, key, value, "expected always, on-failure or never");
	return 0;
}

static int
parse_restart_delay(struct parser *p, const struct key_info *key, const char *value)
{
	return parse_seconds(p, key, value, false, &parser_service(p)->restart_delay);
}

static int
parse_restart_delay_max(struct parser *p, const struct key_info *key, const char *value)
{
	return parse_seconds(p, key, value, false, &parser_service(p)->restart_delay_max);
}

static int
parse_stop_signal(struct parser *p, const struct key_info *key, const char *value)
{
	int signal = signame_parse(value);
	if (signal < 0)
		return parser_fail_invalid(p, key, value,
					   "expected a signal name such as TERM or INT, "
					   "or its number");
	parser_service(p)->stop_signal = signal;
	return 0;
}

static int
parse_stop_timeout(struct parser *p, const struct key_info *key, const char *value)
{
	return parse_seconds(p, key, value, false, &parser_service(p)->stop_timeout);
}

static int
parse_rolling_batch(struct parser *p, const struct key_info *key, const char *value)
{
	unsigned long batch;
	if (value_unsigned(value, 10, CONFIG_MAX_COUNT, &batch) < 0)
		return parser_fail_invalid(
		    p, key, value, "expected a number of workers, 0 (all at once) to 10000");
	parser_service(p)->rolling_batch = (unsigned)batch;
	return 0;
}

static int
parse_health_timeout(struct parser *p, const struct key_info *key, const char *value)
{
	return parse_seconds(p, key, value, false, &parser_service(p)->health_timeout);
}

/* "512M", "2G", "65536", "1.5G"; "0" or "none" for no limit. Units are binary (KiB...). */
static int
parse_size_or_none(struct parser *p, const struct key_info *key, const char *value,
		   unsigned long long *ret_bytes)
{
	if (strcmp(value, "none") == 0) {
		*ret_bytes = 0;
		return 0;
	}
	if (value_size(value, ret_bytes) < 0)
		return parser_fail_invalid(p, key, value,
					   "expected a size such as 512M, 2G or none");
	return 0;
}

static int
parse_memory_limit(struct parser *p, const struct key_info *key, const char *value)
{
	return parse_size_or_none(p, key, value, &parser_service(p)->memory_limit);
}

static int
parse_memory_metric(struct parser *p, const struct key_info *key, const char *value)
{
	if (strcmp(value, "pss") == 0)
		parser_service(p)->memory_metric = CONFIG_MEMORY_PSS;
	else if (strcmp(value, "rss") == 0)
		parser_service(p)->memory_metric = CONFIG_MEMORY_RSS;
	else
		return parser_fail_invalid(p, key, value, "expected pss or rss");
	return 0;
}

static int
parse_memory_check_interval(struct parser *p, const struct key_info *key, const char *value)
{
	return parse_seconds(p, key, value, true, &parser_service(p)->memory_check_interval);
}

static int
parse_utilization(struct parser *p, const struct key_info *key, const char *value)
{
	if (strcmp(value, "yes") == 0)
		parser_service(p)->utilization = true;
	else if (strcmp(value, "no") == 0)
		parser_service(p)->utilization = false;
	else
		return parser_fail_invalid(p, key, value, "expected yes or no");
	return 0;
}

static int
parse_memory_total_limit(struct parser *p, const struct key_info *key, const char *value)
{
	return parse_size_or_none(p, key, value, &parser_service(p)->memory_total_limit);
}

static int
parse_memory_leak_threshold(struct parser *p, const struct key_info *key, const char *value)
{
	if (value_size(value, &parser_service(p)->memory_leak_threshold) < 0)
		return parser_fail_invalid(p, key, value, "expected a size such as 10M");
	return 0;
}

static int
parse_memory_leak_increases(struct parser *p, const struct key_info *key, const char *value)
{
	unsigned long increases;
	if (value_unsigned(value, 10, 1000000, &increases) < 0)
		return parser_fail_invalid(p, key, value,
					   "expected a number of increases, 0 (off) to 1000000");
	parser_service(p)->memory_leak_increases = (unsigned)increases;
	return 0;
}

static int
parse_memory_free_minimum(struct parser *p, const struct key_info *key, const char *value)
{
	return parse_size_or_none(p, key, value, &p->config.memory_free_minimum);
}

static int
parse_metrics_log_interval(struct parser *p, const struct key_info *key, const char *value)
{
	return parse_seconds(p, key, value, false, &p->config.metrics_log_interval);
}

/* HOST:PORT (or [ADDR]:PORT), kept as the listen line that would bind it. */
static int
parse_prometheus(struct parser *p, const struct key_info *key, const char *value)
{
	char spec[300];
	snprintf(spec, sizeof(spec), "%s%s", value[0] == '[' ? "tcp6:" : "tcp:", value);
	struct listen_spec parsed;
	const char *problem;
	if (strlen(value) >= 256 || listen_spec_parse(spec, &parsed, &problem) < 0)
		return parser_fail_invalid(p, key, value,
					   "expected HOST:PORT such as 127.0.0.1:9464");
	if (!(p->config.prometheus = strdup(spec)))
		return parser_fail_errno(p, -ENOMEM);
	return 0;
}

static int
parse_log(struct parser *p, const struct key_info *key, const char *value)
{
	return parse_path(p, key, value, &p->config.log_path);
}

static int
parse_log_format(struct parser *p, const struct key_info *key, const char *value)
{
	if (strcmp(value, "text") == 0)
		p->config.log_format = CONFIG_LOG_TEXT;
	else if (strcmp(value, "json") == 0)
		p->config.log_format = CONFIG_LOG_JSON;
	else if (strcmp(value, "journal") == 0)
		p->config.log_format = CONFIG_LOG_JOURNAL;
	else
		return parser_fail_invalid(p, key, value, "expected text, json or journal");
	return 0;
}

static int
parse_directory(struct parser *p, const struct key_info *key, const char *value)
{
	return parse_path(p, key, value, &parser_service(p)->directory);
}

/* What the host sets for each worker (spawn.c): an env line could only break readiness or
 * socket passing by overriding it. */
static bool
env_reserved(const char *name, size_t length)
{
	static const char *const prefixes[] = {"LISTEN_", "AERIE_", "WATCHDOG_"};
	if (length == strlen("NOTIFY_SOCKET") && strncmp(name, "NOTIFY_SOCKET", length) == 0)
		return true;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (length >= strlen(prefixes[i]) &&
		    strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

static int
parse_min_uptime(struct parser *p, const struct key_info *key, const char *value)
{
	return parse_seconds(p, key, value, false, &parser_service(p)->min_uptime);
}

static int
parse_start_limit_burst(struct parser *p, const struct key_info *key, const char *value)
{
	unsigned long burst;
	if (value_unsigned(value, 10, CONFIG_MAX_START_LIMIT_BURST, &burst) < 0)
		return parser_fail_invalid(p, key, value,
					   "expected a number of starts, 0 (no limit) to 100");
	parser_service(p)->start_limit_burst = (unsigned)burst;
	return 0;
}

static int
parse_start_limit_interval(struct parser *p, const struct key_info *key, const char *value)
{
	return parse_seconds(p, key, value, false, &parser_service(p)->start_limit_interval);
}

static int
parse_kill_mode(struct parser *p, const struct key_info *key, const char *value)
{
	if (strcmp(value, "group") == 0)
		parser_service(p)->kill_mode = CONFIG_KILL_GROUP;
	else if (strcmp(value, "main") == 0)
		parser_service(p)->kill_mode = CONFIG_KILL_MAIN;
	else
		return parser_fail_invalid(p, key, value, "expected group or main");
	return 0;
}

static int
parse_env(struct parser *p, const struct key_info *key, const char *value)
{
	struct config_service *service = parser_service(p);
	size_t length = 0;
	while (value[length] == '_' || isalnum((unsigned char)value[length]))
		length++;
	if (length == 0 || isdigit((unsigned char)value[0]) || value[length] != '=')
		return parser_fail_invalid(
		    p, key, value,
		    "expected KEY=VALUE, KEY made of letters, digits and _, not "
		    "starting with a digit");
	if (env_reserved(value, length))
		return parser_fail(p,
				   "env cannot set %.*s in [%s]: the host sets it (NOTIFY_SOCKET, "
				   "LISTEN_*, AERIE_*, WATCHDOG_*)",
				   (int)length, value, p->section_name);
	for (size_t i = 0; i < service->env_count; i++)
		if (strncmp(service->env[i], value, length + 1) == 0)
			return parser_fail(p, "duplicate env key \"%.*s\" in [%s]", (int)length,
					   value, p->section_name);
	if (service->env_count == CONFIG_MAX_ENV)
		return parser_fail(p, "more than %d env in [%s]", CONFIG_MAX_ENV, p->section_name);
	if (words_append(&service->env, &service->env_count, value) < 0)
		return parser_fail_errno(p, -ENOMEM);
	return 0;
}

static int
parse_log_file(struct parser *p, const struct key_info *key, const char *value)
{
	return parse_path(p, key, value, &parser_service(p)->log_file);
}

/* "10M", "64K", "1G"; 0 never rotates. */
static int
parse_log_max_size(struct parser *p, const struct key_info *key, const char *value)
{
	if (value_size(value, &parser_service(p)->log_max_size) < 0)
		return parser_fail_invalid(p, key, value, "expected a size such as 64K or 10M");
	return 0;
}

static int
parse_log_keep(struct parser *p, const struct key_info *key, const char *value)
{
	unsigned long keep;
	if (value_unsigned(value, 10, CONFIG_MAX_LOG_KEEP, &keep) < 0)
		return parser_fail_invalid(p, key, value, "expected a number of files, 0 to 100");
	parser_service(p)->log_keep = (unsigned)keep;
	return 0;
}

static int
parse_log_lines(struct parser *p, const struct key_info *key, const char *value)
{
	unsigned long lines;
	if (value_unsigned(value, 10, CONFIG_MAX_LOG_LINES, &lines) < 0)
		return parser_fail_invalid(p, key, value,
					   "expected a number of lines, 0 to 100000");
	parser_service(p)->log_lines = (unsigned)lines;
	return 0;
}

const struct key_info keys_table[KEY__MAX] = {
    [KEY_SUPERVISOR] = {"supervisor", SECTION_HOST, false, parse_supervisor},
    [KEY_SOCKET_MODE] = {"socket_mode", SECTION_HOST, false, parse_socket_mode},
    [KEY_SOCKET_GROUP] = {"socket_group", SECTION_HOST, false, parse_socket_group},
    [KEY_COMMAND] = {"command", SECTION_SERVICE, false, parse_command},
    [KEY_COUNT] = {"count", SECTION_SERVICE, false, parse_count},
    [KEY_LISTEN] = {"listen", SECTION_SERVICE, true, parse_listen},
    [KEY_READY] = {"ready", SECTION_SERVICE, false, parse_ready},
    [KEY_READY_TIMEOUT] = {"ready_timeout", SECTION_SERVICE, false, parse_ready_timeout},
    [KEY_RESTART] = {"restart", SECTION_SERVICE, false, parse_restart},
    [KEY_RESTART_DELAY] = {"restart_delay", SECTION_SERVICE, false, parse_restart_delay},
    [KEY_RESTART_DELAY_MAX] = {"restart_delay_max", SECTION_SERVICE, false,
			       parse_restart_delay_max},
    [KEY_STOP_SIGNAL] = {"stop_signal", SECTION_SERVICE, false, parse_stop_signal},
    [KEY_STOP_TIMEOUT] = {"stop_timeout", SECTION_SERVICE, false, parse_stop_timeout},
    [KEY_DIRECTORY] = {"directory", SECTION_SERVICE, false, parse_directory},
    [KEY_ENV] = {"env", SECTION_SERVICE, true, parse_env},
    [KEY_HEALTH_TIMEOUT] = {"health_timeout", SECTION_SERVICE, false, parse_health_timeout},
    [KEY_ROLLING_BATCH] = {"rolling_batch", SECTION_SERVICE, false, parse_rolling_batch},
    [KEY_MEMORY_LIMIT] = {"memory_limit", SECTION_SERVICE, false, parse_memory_limit},
    [KEY_MEMORY_METRIC] = {"memory_metric", SECTION_SERVICE, false, parse_memory_metric},
    [KEY_MEMORY_CHECK_INTERVAL] = {"memory_check_interval", SECTION_SERVICE, false,
				   parse_memory_check_interval},
    [KEY_LOG_FORMAT] = {"log_format", SECTION_HOST, false, parse_log_format},
    [KEY_LOG] = {"log", SECTION_HOST, false, parse_log},
    [KEY_PROMETHEUS] = {"prometheus", SECTION_HOST, false, parse_prometheus},
    [KEY_MIN_UPTIME] = {"min_uptime", SECTION_SERVICE, false, parse_min_uptime},
    [KEY_START_LIMIT_BURST] = {"start_limit_burst", SECTION_SERVICE, false,
			       parse_start_limit_burst},
    [KEY_START_LIMIT_INTERVAL] = {"start_limit_interval", SECTION_SERVICE, false,
				  parse_start_limit_interval},
    [KEY_KILL_MODE] = {"kill_mode", SECTION_SERVICE, false, parse_kill_mode},
    [KEY_USER] = {"user", SECTION_SERVICE, false, exec_parse_user},
    [KEY_GROUP] = {"group", SECTION_SERVICE, false, exec_parse_group},
    [KEY_UMASK] = {"umask", SECTION_SERVICE, false, exec_parse_umask},
    [KEY_LIMIT_NOFILE] = {"limit_nofile", SECTION_SERVICE, false, exec_parse_limit},
    [KEY_LIMIT_NPROC] = {"limit_nproc", SECTION_SERVICE, false, exec_parse_limit},
    [KEY_LIMIT_CORE] = {"limit_core", SECTION_SERVICE, false, exec_parse_limit},
    [KEY_LIMIT_MEMLOCK] = {"limit_memlock", SECTION_SERVICE, false, exec_parse_limit},
    [KEY_LIMIT_STACK] = {"limit_stack", SECTION_SERVICE, false, exec_parse_limit},
    [KEY_LIMIT_AS] = {"limit_as", SECTION_SERVICE, false, exec_parse_limit},
    [KEY_LIMIT_CPU] = {"limit_cpu", SECTION_SERVICE, false, exec_parse_limit},
    [KEY_LIMIT_FSIZE] = {"limit_fsize", SECTION_SERVICE, false, exec_parse_limit},
    [KEY_NICE] = {"nice", SECTION_SERVICE, false, exec_parse_nice},
    [KEY_OOM_SCORE_ADJ] = {"oom_score_adj", SECTION_SERVICE, false, exec_parse_oom_score_adj},
    [KEY_NO_NEW_PRIVILEGES] = {"no_new_privileges", SECTION_SERVICE, false,
			       exec_parse_no_new_privileges},
    [KEY_CGROUP] = {"cgroup", SECTION_SERVICE, false, exec_parse_cgroup},
    [KEY_MEMORY_MAX] = {"memory_max", SECTION_SERVICE, false, exec_parse_memory_max},
    [KEY_CPU_WEIGHT] = {"cpu_weight", SECTION_SERVICE, false, exec_parse_cpu_weight},
    [KEY_UTILIZATION] = {"utilization", SECTION_SERVICE, false, parse_utilization},
    [KEY_MEMORY_TOTAL_LIMIT] = {"memory_total_limit", SECTION_SERVICE, false,
				parse_memory_total_limit},
    [KEY_MEMORY_LEAK_THRESHOLD] = {"memory_leak_threshold", SECTION_SERVICE, false,
				   parse_memory_leak_threshold},
    [KEY_MEMORY_LEAK_INCREASES] = {"memory_leak_increases", SECTION_SERVICE, false,
				   parse_memory_leak_increases},
    [KEY_MEMORY_FREE_MINIMUM] = {"memory_free_minimum", SECTION_HOST, false,
				 parse_memory_free_minimum},
    [KEY_METRICS_LOG_INTERVAL] = {"metrics_log_interval", SECTION_HOST, false,
				  parse_metrics_log_interval},
    [KEY_LOG_FILE] = {"log_file", SECTION_SERVICE, false, parse_log_file},
    [KEY_LOG_MAX_SIZE] = {"log_max_size", SECTION_SERVICE, false, parse_log_max_size},
    [KEY_LOG_KEEP] = {"log_keep", SECTION_SERVICE, false, parse_log_keep},
    [KEY_LOG_LINES] = {"log_lines", SECTION_SERVICE, false, parse_log_lines},
};

const struct key_info *
keys_find(enum section section, const char *name)
{
	for (size_t i = 0; i < KEY__MAX; i++)
		if (keys_table[i].section == section && strcmp(keys_table[i].name, name) == 0)
			return &keys_table[i];
	return NULL;
}
