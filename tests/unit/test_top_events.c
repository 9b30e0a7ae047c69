/* test_top_events: the events `top` derives from two status replies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cli/top_events.h"

static json_t *
parse(const char *text)
{
	json_error_t error;
	json_t *value = json_loads(text, 0, &error);
	if (!value)
		fail_msg("bad fixture: %s", error.text);
	return value;
}

/* Diffs before → after and returns the events, oldest first, joined by "\n" (times cut). */
static const char *
diff(const char *before, const char *after)
{
	static char joined[2048];
	struct top_events events = {0};
	json_t *old = parse(before), *new = parse(after);
	top_events_diff(&events, old, new, 0);
	joined[0] = '\0';
	for (size_t i = events.count; i > 0; i--) {
		assert_true(strlen(events.lines[i - 1]) > 9);
		strcat(joined, events.lines[i - 1] + 9); /* after "HH:MM:SS " */
		strcat(joined, "\n");
	}
	top_events_free(&events);
	json_decref(old);
	json_decref(new);
	return joined;
}

#define HOST "\"host\":{\"pid\":1,\"generation\":1,\"stopping\":false}"

static void
test_exit_and_restart(void **state)
{
	(void)state;
	const char *before =
	    "{" HOST ",\"services\":{\"web\":{\"generation\":1,\"workers\":["
	    "{\"pid\":10,\"index\":0,\"generation\":1,\"state\":\"ready\",\"restarts\":0},"
	    "{\"pid\":11,\"index\":1,\"generation\":1,\"state\":\"ready\",\"restarts\":0},"
	    "{\"pid\":12,\"index\":2,\"generation\":1,\"state\":\"ready\",\"restarts\":0}]}}}";
	const char *after =
	    "{" HOST ",\"services\":{\"web\":{\"generation\":1,\"workers\":["
	    "{\"pid\":20,\"index\":0,\"generation\":1,\"state\":\"starting\",\"restarts\":1,"
	    "\"last_exit\":{\"signal\":\"KILL\"}},"
	    "{\"pid\":0,\"index\":1,\"generation\":1,\"state\":\"backoff\",\"restarts\":3,"
	    "\"last_exit\":{\"code\":3}},"
	    "{\"pid\":0,\"index\":2,\"generation\":1,\"state\":\"exited\",\"restarts\":0,"
	    "\"last_exit\":{\"code\":0}}]}}}";
	assert_string_equal(diff(before, after),
			    "web.0 [10] exited (signal KILL), restarted as 20\n"
			    "web.1 [11] exited (status 3), restarting after a delay\n"
			    "web.2 [12] exited (status 0), not restarted\n");
	/* And back from backoff: */
	const char *later =
	    "{" HOST ",\"services\":{\"web\":{\"generation\":1,\"workers\":["
	    "{\"pid\":20,\"index\":0,\"generation\":1,\"state\":\"ready\",\"restarts\":1},"
	    "{\"pid\":30,\"index\":1,\"generation\":1,\"state\":\"starting\",\"restarts\":5},"
	    "{\"pid\":0,\"index\":2,\"generation\":1,\"state\":\"exited\",\"restarts\":0}]}}}";
	assert_string_equal(diff(after, later), "web.1 restarted as 30 (2 restarts)\n");
	assert_string_equal(diff(later, later), "");
}

static void
test_rolling_restart(void **state)
{
	(void)state;
	const char *serving = "{" HOST ",\"services\":{\"web\":{\"generation\":1,\"workers\":["
			      "{\"pid\":10,\"index\":0,\"generation\":1,\"state\":\"ready\"}]}}}";
	const char *rolling =
	    "{" HOST ",\"services\":{\"web\":{\"generation\":1,\"workers\":["
	    "{\"pid\":10,\"index\":0,\"generation\":1,\"state\":\"ready\"},"
	    "{\"pid\":20,\"index\":0,\"generation\":2,\"state\":\"starting\"}]}}}";
	const char *done = "{" HOST ",\"services\":{\"web\":{\"generation\":2,\"workers\":["
			   "{\"pid\":10,\"index\":0,\"generation\":1,\"state\":\"stopping\"},"
			   "{\"pid\":20,\"index\":0,\"generation\":2,\"state\":\"ready\"}]}}}";
	const char *drained = "{" HOST ",\"services\":{\"web\":{\"generation\":2,\"workers\":["
			      "{\"pid\":20,\"index\":0,\"generation\":2,\"state\":\"ready\"}]}}}";
	assert_string_equal(diff(serving, rolling), "web: rolling restart to generation 2 began\n");
	assert_string_equal(diff(rolling, done), "web: rolling restart to generation 2 done\n");
	assert_string_equal(diff(done, drained), ""); /* the old generation leaving is no news */
	/* Begun and done between two looks: only the end was seen. */
	assert_string_equal(diff(serving, done), "web: rolling restart to generation 2 done\n");
	assert_string_equal(
	    diff(rolling, serving),
	    "web: rolling restart to generation 2 failed; generation 1 keeps serving\n");
}

static void
test_host_changes(void **state)
{
	(void)state;
	assert_string_equal(diff("{" HOST ",\"services\":{}}",
				 "{\"host\":{\"pid\":1,\"stopping\":true},\"services\":{}}"),
			    "the host is stopping\n");
	assert_string_equal(diff("{" HOST ",\"services\":{}}",
				 "{\"host\":{\"pid\":2,\"stopping\":false},\"services\":{}}"),
			    "a new host: pid 2\n");
	/* An error reply on either side says nothing. */
	assert_string_equal(diff("{\"error\":{\"code\":\"x\"}}", "{" HOST ",\"services\":{}}"), "");
}

static void
test_keeps_the_latest(void **state)
{
	(void)state;
	struct top_events events = {0};
	for (int i = 0; i < 40; i++)
		top_events_add(&events, 0, "event %d", i);
	assert_int_equal(events.count, TOP_EVENTS_KEPT);
	assert_non_null(strstr(events.lines[0], "event 39"));
	assert_non_null(strstr(events.lines[TOP_EVENTS_KEPT - 1], "event 24"));
	top_events_free(&events);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exit_and_restart),
	    cmocka_unit_test(test_rolling_restart),
	    cmocka_unit_test(test_host_changes),
	    cmocka_unit_test(test_keeps_the_latest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
