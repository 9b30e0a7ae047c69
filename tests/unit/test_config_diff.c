/* test_config_diff: two configs as a reload compares them: what is equal, what is only a count,
 * what else changed and which [host] keys did. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "config/config_diff.h"

static char scratch[] = "/tmp/aerie-test-config-diff-XXXXXX";

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(scratch) ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	char path[sizeof(scratch) + 16];
	snprintf(path, sizeof(path), "%s/aerie.ini", scratch);
	(void)unlink(path);
	return rmdir(scratch);
}

/* The config of text, loaded from the scratch directory's aerie.ini. */
static void
load(const char *text, struct config *config)
{
	char path[sizeof(scratch) + 16];
	snprintf(path, sizeof(path), "%s/aerie.ini", scratch);
	FILE *file = fopen(path, "we");
	assert_non_null(file);
	assert_int_equal(fputs(text, file) >= 0, 1);
	assert_int_equal(fclose(file), 0);
	char error[512];
	int r = config_load(path, config, error, sizeof(error));
	if (r < 0)
		fail_msg("%s", error);
}

static const char base[] = "[service:web]\n"
			   "command = ./worker --threads 2\n"
			   "count = 2\n"
			   "env = A=1\n";

/* The service web of a config made of base with one line replaced or added. */
static enum config_change
diff_with(const char *from, const char *to, const char **ret_key)
{
	char text[512];
	const char *at = strstr(base, from);
	assert_non_null(at);
	snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - base), base, to, at + strlen(from));
	struct config old, new;
	load(base, &old);
	load(text, &new);
	enum config_change change =
	    config_service_diff(&old.services[0], &new.services[0], ret_key);
	config_free(&old);
	config_free(&new);
	return change;
}

static void
test_same(void **state)
{
	(void)state;
	const char *key = "unset";
	assert_int_equal(diff_with("count = 2\n", "count = 2\n", &key), CONFIG_CHANGE_NONE);
	assert_null(key);
	/* Comments and spacing are not fields. */
	assert_int_equal(diff_with("count = 2\n", "count=2   ; two\n", &key), CONFIG_CHANGE_NONE);
	assert_null(key);
}

static void
test_count_only(void **state)
{
	(void)state;
	const char *key = NULL;
	assert_int_equal(diff_with("count = 2\n", "count = 5\n", &key), CONFIG_CHANGE_COUNT);
	assert_string_equal(key, "count");
}

static void
test_other_changes(void **state)
{
	(void)state;
	static const struct {
		const char *from, *to, *key;
	} cases[] = {
	    {"--threads 2", "--threads 3", "command"},
	    {"env = A=1\n", "env = A=2\n", "env"},
	    {"env = A=1\n", "env = A=1\nenv = B=1\n", "env"},
	    {"count = 2\n", "count = 2\nstop_signal = INT\n", "stop_signal"},
	    {"count = 2\n", "count = 2\nstop_timeout = 3\n", "stop_timeout"},
	    {"count = 2\n", "count = 2\nready = notify\n", "ready"},
	    {"count = 2\n", "count = 2\nrestart = never\n", "restart"},
	    {"count = 2\n", "count = 2\nrestart_delay = 1\n", "restart_delay"},
	    {"count = 2\n", "count = 2\nlisten = tcp:127.0.0.1:1\n", "listen"},
	    {"count = 2\n", "count = 2\ndirectory = /tmp\n", "directory"},
	    {"count = 2\n", "count = 2\nmemory_limit = 1G\n", "memory_limit"},
	    {"count = 2\n", "count = 2\nrolling_batch = 1\n", "rolling_batch"},
	    {"count = 2\n", "count = 2\nmin_uptime = 3\n", "min_uptime"},
	    {"count = 2\n", "count = 2\nstart_limit_burst = 2\n", "start_limit_burst"},
	    {"count = 2\n", "count = 2\nstart_limit_interval = 3\n", "start_limit_interval"},
	    {"count = 2\n", "count = 2\nkill_mode = main\n", "kill_mode"},
	    {"count = 2\n", "count = 2\nutilization = yes\n", "utilization"},
	    {"count = 2\n", "count = 2\nlog_lines = 5\n",
	     "log_file, log_max_size, log_keep or log_lines"},
	    {"count = 2\n", "count = 2\nmemory_total_limit = 1G\n", "memory_total_limit"},
	    {"count = 2\n", "count = 2\nmemory_leak_increases = 3\n", "memory_leak_increases"},
	    {"count = 2\n", "count = 2\nuser = nobody\n", "user"},
	    {"count = 2\n", "count = 2\numask = 027\n", "how workers run (exec keys)"},
	    {"count = 2\n", "count = 2\nlimit_nofile = 1000\n", "how workers run (exec keys)"},
	    {"count = 2\n", "count = 2\nnice = 3\n", "how workers run (exec keys)"},
	    /* Another field and the count: a rolling restart, named by the other field. */
	    {"count = 2\n", "count = 3\nstop_signal = INT\n", "stop_signal"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *key = NULL;
		assert_int_equal(diff_with(cases[i].from, cases[i].to, &key), CONFIG_CHANGE_OTHER);
		assert_non_null(key);
		assert_string_equal(key, cases[i].key);
	}
}

static void
test_host_keys(void **state)
{
	(void)state;
	struct config old, new;
	load(base, &old);
	char text[512];
	snprintf(text, sizeof(text),
		 "[host]\nsupervisor = other.ipc\nsocket_mode = 0660\nlog_format = json\n%s", base);
	load(text, &new);
	const char *keys[8];
	assert_int_equal(config_host_diff(&old, &new, keys, 8), 3);
	assert_string_equal(keys[0], "supervisor");
	assert_string_equal(keys[1], "socket_mode");
	assert_string_equal(keys[2], "log_format");
	/* Bounded by the room given. */
	assert_int_equal(config_host_diff(&old, &new, keys, 1), 1);
	assert_int_equal(config_host_diff(&old, &old, keys, 8), 0);
	config_free(&old);
	config_free(&new);
}

/* A field added to either struct must be compared in config_diff.c: this fails until the
 * sizes here are updated, which is the reminder. */
static void
test_every_field_compared(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct config_service), 496);
	assert_int_equal(sizeof(struct config), 96);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_same),
	    cmocka_unit_test(test_count_only),
	    cmocka_unit_test(test_other_changes),
	    cmocka_unit_test(test_host_keys),
	    cmocka_unit_test(test_every_field_compared),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
