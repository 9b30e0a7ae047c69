/* config_diff: two configs compared field by field (see config_diff.h). A new field of struct
 * config_service or struct config needs its line here: tests/unit/test_config_diff.c checks
 * the sizes of both structs so that one added without it is noticed. */
#include "config/config_diff.h"

#include <stdbool.h>
#include <string.h>

static bool
string_equal(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Two NULL-terminated vectors (argv, listen, env) of known counts. */
static bool
vector_equal(char *const *a, size_t a_count, char *const *b, size_t b_count)
{
	if (a_count != b_count)
		return false;
	for (size_t i = 0; i < a_count; i++)
		if (!string_equal(a[i], b[i]))
			return false;
	return true;
}

/* How workers run: the names and what they were resolved to when each file was read (a
 * user's uid or groups may have changed in between). */
static bool
exec_equal(const struct config_exec *a, const struct config_exec *b)
{
	if (!string_equal(a->user, b->user) || !string_equal(a->group, b->group) ||
	    a->uid != b->uid || a->gid != b->gid || !string_equal(a->home_entry, b->home_entry) ||
	    a->group_count != b->group_count ||
	    (a->group_count &&
	     memcmp(a->groups, b->groups, a->group_count * sizeof(a->groups[0])) != 0))
		return false;
	if (a->has_umask != b->has_umask || (a->has_umask && a->umask != b->umask))
		return false;
	for (size_t i = 0; i < CONFIG_LIMIT_COUNT; i++)
		if (a->has_limit[i] != b->has_limit[i] ||
		    (a->has_limit[i] && (a->limits[i].rlim_cur != b->limits[i].rlim_cur ||
					 a->limits[i].rlim_max != b->limits[i].rlim_max)))
			return false;
	return a->has_nice == b->has_nice && (!a->has_nice || a->nice == b->nice) &&
	       a->has_oom_score_adj == b->has_oom_score_adj &&
	       (!a->has_oom_score_adj || a->oom_score_adj == b->oom_score_adj) &&
	       a->no_new_privileges == b->no_new_privileges && a->cgroup == b->cgroup &&
	       a->memory_max == b->memory_max && a->cpu_weight == b->cpu_weight;
}

static size_t
vector_count(char *const *vector)
{
	size_t count = 0;
	while (vector && vector[count])
		count++;
	return count;
}

bool
config_listen_differs(const struct config_service *old, const struct config_service *new)
{
	return !vector_equal(old->listen, old->listen_count, new->listen, new->listen_count);
}

bool
config_logs_differ(const struct config_service *old, const struct config_service *new)
{
	return !string_equal(old->log_file, new->log_file) ||
	       old->log_max_size != new->log_max_size || old->log_keep != new->log_keep ||
	       old->log_lines != new->log_lines;
}

enum config_change
config_service_diff(const struct config_service *old, const struct config_service *new,
		    const char **ret_key)
{
	/* In the order of the key table; the first that differs names the change. */
	const struct {
		const char *key;
		bool equal;
	} fields[] = {
	    {"command",
	     vector_equal(old->argv, vector_count(old->argv), new->argv, vector_count(new->argv))},
	    {"listen", !config_listen_differs(old, new)},
	    {"ready", old->ready == new->ready},
	    {"ready_timeout", old->ready_timeout == new->ready_timeout},
	    {"restart", old->restart == new->restart},
	    {"restart_delay", old->restart_delay == new->restart_delay},
	    {"restart_delay_max", old->restart_delay_max == new->restart_delay_max},
	    {"stop_signal", old->stop_signal == new->stop_signal},
	    {"stop_timeout", old->stop_timeout == new->stop_timeout},
	    {"directory", string_equal(old->directory, new->directory)},
	    /* user, group, umask, limit_*, nice, oom_score_adj, no_new_privileges, cgroup,
	     * memory_max, cpu_weight: named "user" when either
	     * sets a user. Before env, which holds the HOME, USER and LOGNAME of user. */
	    {old->exec.user || new->exec.user ? "user" : "how workers run (exec keys)",
	     exec_equal(&old->exec, &new->exec)},
	    {"env", vector_equal(old->env, old->env_count, new->env, new->env_count)},
	    {"health_timeout", old->health_timeout == new->health_timeout},
	    {"rolling_batch", old->rolling_batch == new->rolling_batch},
	    {"memory_limit", old->memory_limit == new->memory_limit},
	    {"memory_metric", old->memory_metric == new->memory_metric},
	    {"memory_check_interval", old->memory_check_interval == new->memory_check_interval},
	    {"min_uptime", old->min_uptime == new->min_uptime},
	    {"start_limit_burst", old->start_limit_burst == new->start_limit_burst},
	    {"start_limit_interval", old->start_limit_interval == new->start_limit_interval},
	    {"kill_mode", old->kill_mode == new->kill_mode},
	    {"utilization", old->utilization == new->utilization},
	    {"memory_total_limit", old->memory_total_limit == new->memory_total_limit},
	    {"memory_leak_threshold", old->memory_leak_threshold == new->memory_leak_threshold},
	    {"memory_leak_increases", old->memory_leak_increases == new->memory_leak_increases},
	    {"log_file, log_max_size, log_keep or log_lines", !config_logs_differ(old, new)},
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (!fields[i].equal) {
			if (ret_key)
				*ret_key = fields[i].key;
			return CONFIG_CHANGE_OTHER;
		}
	}
	if (ret_key)
		*ret_key = old->count != new->count ? "count" : NULL;
	return old->count != new->count ? CONFIG_CHANGE_COUNT : CONFIG_CHANGE_NONE;
}

size_t
config_host_diff(const struct config *old, const struct config *new, const char **ret_keys,
		 size_t size)
{
	/* path and directory are those of the same file; the services are compared one by one
	 * with config_service_diff. */
	const struct {
		const char *key;
		bool equal;
	} fields[] = {
	    {"supervisor", string_equal(old->supervisor_path, new->supervisor_path)},
	    {"socket_mode", old->socket_mode == new->socket_mode},
	    {"socket_group", string_equal(old->socket_group, new->socket_group)},
	    {"log_format", old->log_format == new->log_format},
	    {"log", string_equal(old->log_path, new->log_path)},
	    {"prometheus", string_equal(old->prometheus, new->prometheus)},
	    {"memory_free_minimum", old->memory_free_minimum == new->memory_free_minimum},
	    {"metrics_log_interval", old->metrics_log_interval == new->metrics_log_interval},
	};
	size_t count = 0;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (!fields[i].equal && count < size)
			ret_keys[count++] = fields[i].key;
	return count;
}
