/* exec: the keys of how a service's workers run: user and group, umask, limit_NAME, nice,
 * oom_score_adj, no_new_privileges and the cgroup keys. Names are resolved here, in the host
 * (the worker's child set-up may not call NSS: it runs on the host's memory until exec). */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/parser.h"

/* Fills ret_entry (with strings in *ret_buffer, which the caller frees) for name, with a
 * buffer grown while the lookup answers ERANGE; 0,
 * -ENOENT when there is none, or -errno. */
static int
lookup_user(const char *name, struct passwd *ret_entry, char **ret_buffer)
{
	for (size_t size = CONFIG_LOOKUP_BUFFER_MIN; size <= CONFIG_LOOKUP_BUFFER_MAX; size *= 2) {
		char *buffer = malloc(size);
		if (!buffer)
			return -ENOMEM;
		struct passwd *found = NULL;
		int r = getpwnam_r(name, ret_entry, buffer, size, &found);
		if (r == 0 && found) {
			*ret_buffer = buffer;
			return 0;
		}
		free(buffer);
		if (r != ERANGE)
			return r == 0 ? -ENOENT : -r;
	}
	return -ERANGE;
}

static int
lookup_group(const char *name, gid_t *ret_gid)
{
	for (size_t size = CONFIG_LOOKUP_BUFFER_MIN; size <= CONFIG_LOOKUP_BUFFER_MAX; size *= 2) {
		char *buffer = malloc(size);
		if (!buffer)
			return -ENOMEM;
		struct group entry, *found = NULL;
		int r = getgrnam_r(name, &entry, buffer, size, &found);
		if (r == 0 && found)
			*ret_gid = found->gr_gid;
		free(buffer);
		if (r == 0)
			return found ? 0 : -ENOENT;
		if (r != ERANGE)
			return -r;
	}
	return -ERANGE;
}

/* The text of a lookup's failure for a message. */
static const char *
lookup_problem(int r, const char *missing)
{
	return r == -ENOENT ? missing : strerror(-r);
}

int
exec_parse_user(struct parser *p, const struct key_info *key, const char *value)
{
	struct config_exec *exec = &parser_service(p)->exec;
	if (*value == '\0')
		return parser_fail_invalid(p, key, value, "expected a user name");
	struct passwd entry;
	char *buffer = NULL;
	int r = lookup_user(value, &entry, &buffer);
	if (r == -ENOMEM)
		return parser_fail_errno(p, r);
	if (r < 0)
		return parser_fail_invalid(p, key, value, lookup_problem(r, "no such user"));
	exec->uid = entry.pw_uid;
	if (!exec->group)
		exec->gid = entry.pw_gid;
	exec->user = strdup(entry.pw_name);
	char *home = entry.pw_dir && *entry.pw_dir ? entry.pw_dir : "/";
	/* HOME's entry, made here while the passwd entry is at hand; exec_finish adds it. */
	size_t size = strlen("HOME=") + strlen(home) + 1;
	char *home_entry = malloc(size);
	if (home_entry)
		snprintf(home_entry, size, "HOME=%s", home);
	free(buffer);
	free(exec->home_entry);
	exec->home_entry = home_entry;
	if (!exec->user || !home_entry)
		return parser_fail_errno(p, -ENOMEM);
	exec->user_line = p->line;
	return 0;
}

int
exec_parse_group(struct parser *p, const struct key_info *key, const char *value)
{
	struct config_exec *exec = &parser_service(p)->exec;
	if (*value == '\0')
		return parser_fail_invalid(p, key, value, "expected a group name");
	gid_t gid = 0;
	int r = lookup_group(value, &gid);
	if (r == -ENOMEM)
		return parser_fail_errno(p, r);
	if (r < 0)
		return parser_fail_invalid(p, key, value, lookup_problem(r, "no such group"));
	if (!(exec->group = strdup(value)))
		return parser_fail_errno(p, -ENOMEM);
	exec->gid = gid;
	exec->group_line = p->line;
	return 0;
}

int
exec_parse_umask(struct parser *p, const struct key_info *key, const char *value)
{
	unsigned long mask;
	if (value_unsigned(value, 8, 0777, &mask) < 0)
		return parser_fail_invalid(p, key, value, "expected an octal mask such as 022");
	parser_service(p)->exec.umask = (mode_t)mask;
	parser_service(p)->exec.has_umask = true;
	return 0;
}

/* Limits counted in bytes take K, M, G (binary); the others are counts (or seconds, cpu). */
static bool
limit_in_bytes(enum config_limit limit)
{
	return limit == CONFIG_LIMIT_CORE || limit == CONFIG_LIMIT_MEMLOCK ||
	       limit == CONFIG_LIMIT_STACK || limit == CONFIG_LIMIT_AS ||
	       limit == CONFIG_LIMIT_FSIZE;
}

/* One side of SOFT:HARD, of length bytes. */
static int
limit_value(const char *text, size_t length, bool bytes, rlim_t *ret_value)
{
	char part[32];
	if (length == 0 || length >= sizeof(part))
		return -EINVAL;
	memcpy(part, text, length);
	part[length] = '\0';
	if (strcmp(part, "unlimited") == 0 || strcmp(part, "infinity") == 0) {
		*ret_value = RLIM_INFINITY;
		return 0;
	}
	unsigned long long amount;
	unsigned long count;
	if (bytes && value_size(part, &amount) == 0) {
		*ret_value = (rlim_t)amount;
		return 0;
	}
	if (!bytes && value_unsigned(part, 10, (unsigned long)1e18, &count) == 0) {
		*ret_value = (rlim_t)count;
		return 0;
	}
	return -EINVAL;
}

int
exec_parse_limit(struct parser *p, const struct key_info *key, const char *value)
{
	enum config_limit limit = (enum config_limit)(key - &keys_table[KEY_LIMIT_NOFILE]);
	bool bytes = limit_in_bytes(limit);
	const char *colon = strchr(value, ':');
	size_t soft_length = colon ? (size_t)(colon - value) : strlen(value);
	struct rlimit parsed;
	if (limit_value(value, soft_length, bytes, &parsed.rlim_cur) < 0 ||
	    (colon && limit_value(colon + 1, strlen(colon + 1), bytes, &parsed.rlim_max) < 0))
		return parser_fail_invalid(p, key, value,
					   bytes ? "expected SOFT[:HARD], each a size such as "
						   "65536, 512M or unlimited"
						 : "expected SOFT[:HARD], each a whole number or "
						   "unlimited");
	/* One value sets both, as systemd's LimitNOFILE=65536 does. */
	if (!colon)
		parsed.rlim_max = parsed.rlim_cur;
	if (parsed.rlim_cur > parsed.rlim_max)
		return parser_fail_invalid(p, key, value, "the soft limit is above the hard one");
	parser_service(p)->exec.limits[limit] = parsed;
	parser_service(p)->exec.has_limit[limit] = true;
	return 0;
}

/* An optionally negative whole number from min to max. */
static int
signed_value(const char *value, long min, long max, int *ret_value)
{
	bool negative = value[0] == '-';
	unsigned long magnitude;
	if (value_unsigned(value + negative, 10, (unsigned long)(negative ? -min : max),
			   &magnitude) < 0)
		return -EINVAL;
	*ret_value = negative ? -(int)magnitude : (int)magnitude;
	return 0;
}

int
exec_parse_nice(struct parser *p, const struct key_info *key, const char *value)
{
	if (signed_value(value, -20, 19, &parser_service(p)->exec.nice) < 0)
		return parser_fail_invalid(p, key, value, "expected a number from -20 to 19");
	parser_service(p)->exec.has_nice = true;
	return 0;
}

int
exec_parse_oom_score_adj(struct parser *p, const struct key_info *key, const char *value)
{
	if (signed_value(value, -1000, 1000, &parser_service(p)->exec.oom_score_adj) < 0)
		return parser_fail_invalid(p, key, value, "expected a number from -1000 to 1000");
	parser_service(p)->exec.has_oom_score_adj = true;
	return 0;
}

int
exec_parse_no_new_privileges(struct parser *p, const struct key_info *key, const char *value)
{
	if (strcmp(value, "yes") == 0)
		parser_service(p)->exec.no_new_privileges = true;
	else if (strcmp(value, "no") == 0)
		parser_service(p)->exec.no_new_privileges = false;
	else
		return parser_fail_invalid(p, key, value, "expected yes or no");
	return 0;
}

int
exec_parse_cgroup(struct parser *p, const struct key_info *key, const char *value)
{
	if (strcmp(value, "auto") == 0)
		parser_service(p)->exec.cgroup = CONFIG_CGROUP_AUTO;
	else if (strcmp(value, "yes") == 0)
		parser_service(p)->exec.cgroup = CONFIG_CGROUP_YES;
	else if (strcmp(value, "no") == 0)
		parser_service(p)->exec.cgroup = CONFIG_CGROUP_NO;
	else
		return parser_fail_invalid(p, key, value, "expected auto, yes or no");
	return 0;
}

int
exec_parse_memory_max(struct parser *p, const struct key_info *key, const char *value)
{
	unsigned long long bytes;
	if (value_size(value, &bytes) < 0 || bytes == 0)
		return parser_fail_invalid(p, key, value, "expected a size such as 512M or 2G");
	parser_service(p)->exec.memory_max = bytes;
	return 0;
}

int
exec_parse_cpu_weight(struct parser *p, const struct key_info *key, const char *value)
{
	unsigned long weight;
	if (value_unsigned(value, 10, 10000, &weight) < 0 || weight == 0)
		return parser_fail_invalid(p, key, value, "expected a number from 1 to 10000");
	parser_service(p)->exec.cpu_weight = (unsigned)weight;
	return 0;
}

/* Whether env sets key ("HOME="). */
static bool
env_sets(const struct config_service *service, const char *key)
{
	for (size_t i = 0; i < service->env_count; i++)
		if (strncmp(service->env[i], key, strlen(key)) == 0)
			return true;
	return false;
}

/* The groups the worker keeps: user's own (as initgroups would give them, with gid, which may
 * be group's), so that none of the host's survives setgroups. */
static int
user_groups(const char *user, gid_t gid, gid_t **ret_groups, size_t *ret_count)
{
	int count = 32;
	for (int tries = 0; tries < 8; tries++) {
		gid_t *groups = calloc((size_t)count, sizeof(*groups));
		if (!groups)
			return -ENOMEM;
		int asked = count;
		if (getgrouplist(user, gid, groups, &count) >= 0) {
			*ret_groups = groups;
			*ret_count = (size_t)count;
			return 0;
		}
		free(groups);
		if (count <= asked) /* failed without saying how many it has */
			count = asked * 2;
	}
	return -E2BIG;
}

int
exec_finish(struct parser *p, struct config_service *service)
{
	struct config_exec *exec = &service->exec;
	if (exec->user) {
		int r = user_groups(exec->user, exec->gid, &exec->groups, &exec->group_count);
		if (r == -ENOMEM)
			return parser_fail_errno(p, r);
		if (r < 0)
			return parser_fail_at(p, -EINVAL, exec->user_line,
					      "cannot list the groups of user \"%s\" in [%s]: %s",
					      exec->user, p->section_name, strerror(-r));
	} else if (exec->group) {
		if (!(exec->groups = calloc(1, sizeof(*exec->groups))))
			return parser_fail_errno(p, -ENOMEM);
		exec->groups[0] = exec->gid;
		exec->group_count = 1;
	}
	if (!exec->user)
		return 0;
	/* The user's own environment, as login and systemd's User= give it. */
	const char *keys[] = {"USER=", "LOGNAME="};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (env_sets(service, keys[i]))
			continue;
		char entry[CONFIG_MAX_LINE + 16];
		snprintf(entry, sizeof(entry), "%s%s", keys[i], exec->user);
		if (words_append(&service->env, &service->env_count, entry) < 0)
			return parser_fail_errno(p, -ENOMEM);
	}
	if (!env_sets(service, "HOME=") &&
	    words_append(&service->env, &service->env_count, exec->home_entry) < 0)
		return parser_fail_errno(p, -ENOMEM);
	return 0;
}

void
exec_free(struct config_exec *exec)
{
	free(exec->user);
	free(exec->group);
	free(exec->groups);
	free(exec->home_entry);
}

int
config_check_user(const struct config *config, uid_t euid, gid_t egid, char *error,
		  size_t error_size)
{
	if (euid == 0)
		return 0;
	for (size_t i = 0; i < config->service_count; i++) {
		const struct config_service *service = &config->services[i];
		const struct config_exec *exec = &service->exec;
		/* The host's own user and group change nothing and need no privilege: the child
		 * of a host that is not root leaves its credentials as they are. */
		const char *key = exec->user && exec->uid != euid    ? "user"
				  : exec->group && exec->gid != egid ? "group"
								     : NULL;
		if (!key)
			continue;
		snprintf(error, error_size,
			 "%s:%u: %s = %s in [service:%s] needs a host running as root (this one "
			 "runs as uid %u)",
			 config->path, exec->user ? exec->user_line : exec->group_line, key,
			 exec->user ? exec->user : exec->group, service->name, (unsigned)euid);
		return -EPERM;
	}
	return 0;
}
