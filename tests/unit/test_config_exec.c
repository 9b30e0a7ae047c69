/* test_config_exec: the keys of how workers run (config/exec.c), parsed into struct
 * config_exec, and config_check_user. root and its group exist everywhere the tests run. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"

static char scratch[] = "/tmp/aerie-test-config-exec-XXXXXX";

static int
setup(void **state)
{
	(void)state;
	if (!mkdtemp(scratch) || chdir(scratch) < 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	(void)unlink("aerie.ini");
	(void)chdir("/");
	return rmdir(scratch);
}

static int
load(const char *keys, struct config *config, char *error, size_t size)
{
	FILE *file = fopen("aerie.ini", "we");
	assert_non_null(file);
	fprintf(file, "[service:web]\ncommand = ./w\n%s", keys);
	assert_int_equal(fclose(file), 0);
	return config_load("aerie.ini", config, error, size);
}

static const char *
env_value(const struct config_service *service, const char *key)
{
	size_t length = strlen(key);
	for (size_t i = 0; i < service->env_count; i++)
		if (strncmp(service->env[i], key, length) == 0 && service->env[i][length] == '=')
			return service->env[i] + length + 1;
	return NULL;
}

static void
test_every_key(void **state)
{
	(void)state;
	struct config config;
	char error[512];
	int r = load("user = root\numask = 027\nlimit_nofile = 4096:8192\nlimit_core = "
		     "unlimited\nlimit_as = 1.5G:infinity\nlimit_cpu = 60\nnice = -5\n"
		     "oom_score_adj = -1000\nno_new_privileges = yes\ncgroup = yes\n"
		     "memory_max = 512M\ncpu_weight = 200\n",
		     &config, error, sizeof(error));
	if (r < 0)
		fail_msg("%s", error);
	const struct config_exec *exec = &config.services[0].exec;
	assert_string_equal(exec->user, "root");
	assert_int_equal(exec->uid, 0);
	assert_int_equal(exec->gid, 0);
	/* getgrouplist: root's groups, its primary one among them. */
	bool primary = false;
	for (size_t i = 0; i < exec->group_count; i++)
		primary = primary || exec->groups[i] == 0;
	assert_true(primary);
	assert_true(exec->has_umask);
	assert_int_equal(exec->umask, 027);
	assert_true(exec->has_limit[CONFIG_LIMIT_NOFILE]);
	assert_int_equal(exec->limits[CONFIG_LIMIT_NOFILE].rlim_cur, 4096);
	assert_int_equal(exec->limits[CONFIG_LIMIT_NOFILE].rlim_max, 8192);
	assert_true(exec->limits[CONFIG_LIMIT_CORE].rlim_cur == RLIM_INFINITY);
	assert_true(exec->limits[CONFIG_LIMIT_CORE].rlim_max == RLIM_INFINITY);
	assert_int_equal(exec->limits[CONFIG_LIMIT_AS].rlim_cur, 3ULL << 29);
	assert_true(exec->limits[CONFIG_LIMIT_AS].rlim_max == RLIM_INFINITY);
	assert_int_equal(exec->limits[CONFIG_LIMIT_CPU].rlim_cur, 60);
	assert_int_equal(exec->limits[CONFIG_LIMIT_CPU].rlim_max, 60);
	assert_false(exec->has_limit[CONFIG_LIMIT_NPROC]);
	assert_true(exec->has_nice);
	assert_int_equal(exec->nice, -5);
	assert_true(exec->has_oom_score_adj);
	assert_int_equal(exec->oom_score_adj, -1000);
	assert_true(exec->no_new_privileges);
	assert_int_equal(exec->cgroup, CONFIG_CGROUP_YES);
	assert_int_equal(exec->memory_max, 512ULL << 20);
	assert_int_equal(exec->cpu_weight, 200);
	assert_string_equal(env_value(&config.services[0], "USER"), "root");
	assert_string_equal(env_value(&config.services[0], "LOGNAME"), "root");
	assert_non_null(env_value(&config.services[0], "HOME"));

	/* Only root switches user: a host of another uid is refused, naming the line. */
	assert_int_equal(config_check_user(&config, 0, 0, error, sizeof(error)), 0);
	assert_int_equal(config_check_user(&config, 1000, 1000, error, sizeof(error)), -EPERM);
	char expected[PATH_MAX + 200];
	snprintf(expected, sizeof(expected),
		 "%s/aerie.ini:3: user = root in [service:web] needs a host running as root "
		 "(this one runs as uid 1000)",
		 scratch);
	assert_string_equal(error, expected);
	config_free(&config);
}

static void
test_defaults_and_env_first(void **state)
{
	(void)state;
	struct config config;
	char error[512];
	assert_int_equal(load("", &config, error, sizeof(error)), 0);
	const struct config_exec *exec = &config.services[0].exec;
	assert_null(exec->user);
	assert_null(exec->groups);
	assert_false(exec->has_umask || exec->has_nice || exec->has_oom_score_adj);
	for (int i = 0; i < CONFIG_LIMIT_COUNT; i++)
		assert_false(exec->has_limit[i]);
	assert_int_equal(exec->cgroup, CONFIG_CGROUP_AUTO);
	assert_int_equal(config.services[0].env_count, 0);
	config_free(&config);

	/* env wins over the user's HOME; group (before or after user) wins over its group. */
	assert_int_equal(
	    load("env = HOME=/srv\ngroup = root\nuser = root\n", &config, error, sizeof(error)), 0);
	assert_string_equal(env_value(&config.services[0], "HOME"), "/srv");
	assert_int_equal(config.services[0].env_count, 3);
	assert_int_equal(config.services[0].exec.gid, 0);
	assert_string_equal(config.services[0].exec.group, "root");
	config_free(&config);

	/* group alone: that group is the only one. */
	assert_int_equal(load("group = root\n", &config, error, sizeof(error)), 0);
	assert_int_equal(config.services[0].exec.group_count, 1);
	assert_int_equal(config.services[0].exec.groups[0], 0);
	assert_int_equal(config_check_user(&config, 1000, 0, error, sizeof(error)), 0);
	assert_int_equal(config_check_user(&config, 1000, 1000, error, sizeof(error)), -EPERM);
	config_free(&config);
}

static void
assert_rejected(const char *keys, const char *expected)
{
	struct config config;
	char error[512];
	assert_int_equal(load(keys, &config, error, sizeof(error)), -EINVAL);
	assert_string_equal(error, expected);
}

static void
test_rejected(void **state)
{
	(void)state;
	assert_rejected("user = no-such-user-aerie\n", "aerie.ini:3: invalid user "
						       "\"no-such-user-aerie\" in [service:web] "
						       "(no such user)");
	assert_rejected("limit_stack = 1M:2X\n",
			"aerie.ini:3: invalid limit_stack \"1M:2X\" in [service:web] (expected "
			"SOFT[:HARD], each a size such as 65536, 512M or unlimited)");
	assert_rejected("limit_nofile = :5\n",
			"aerie.ini:3: invalid limit_nofile \":5\" in [service:web] (expected "
			"SOFT[:HARD], each a whole number or unlimited)");
	assert_rejected("limit_nofile = unlimited:5\n",
			"aerie.ini:3: invalid limit_nofile \"unlimited:5\" in [service:web] (the "
			"soft limit is above the hard one)");
	assert_rejected("nice = -21\n",
			"aerie.ini:3: invalid nice \"-21\" in [service:web] (expected a number "
			"from -20 to 19)");
	assert_rejected("nice = --1\n",
			"aerie.ini:3: invalid nice \"--1\" in [service:web] (expected a number "
			"from -20 to 19)");
	assert_rejected("oom_score_adj = 1001\n",
			"aerie.ini:3: invalid oom_score_adj \"1001\" in [service:web] (expected a "
			"number from -1000 to 1000)");
	assert_rejected("umask = 1000\n", "aerie.ini:3: invalid umask \"1000\" in [service:web] "
					  "(expected an octal mask such as 022)");
	assert_rejected("cpu_weight = 10001\n",
			"aerie.ini:3: invalid cpu_weight \"10001\" in [service:web] (expected a "
			"number from 1 to 10000)");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_key),
	    cmocka_unit_test(test_defaults_and_env_first),
	    cmocka_unit_test(test_rejected),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
