/* Unit tests of status.c: services and workers built by hand, encoded and compared byte for byte
 * with fixtures/golden/status.json. After a deliberate change of the reply, write the file again
 * with AERIE_GOLDEN_UPDATE=1 meson test -C build status, and check the difference by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <limits.h>
#include <signal.h>
#include <sys/wait.h>

#include "fixture.h"
#include "host/status.h"

/* Wait statuses as waitpid gives them. */
#define EXITED(code) ((code) << 8)
#define KILLED(signal) (signal)
#define CORE_DUMPED 0x80

static char *
golden_path(void)
{
	static char path[PATH_MAX];
	fixture_path("golden", "status.json", path, sizeof(path));
	return path;
}

/* The file holds the reply and a newline, so that it is a text file like any other. */
static void
compare_golden(const char *text, size_t length)
{
	const char *path = golden_path();
	const char *update = getenv("AERIE_GOLDEN_UPDATE");
	if (update && strcmp(update, "1") == 0) {
		FILE *file = fopen(path, "wb");
		if (!file)
			fail_msg("cannot write %s", path);
		assert_int_equal(fwrite(text, 1, length, file), length);
		assert_int_equal(fputc('\n', file), '\n');
		assert_int_equal(fclose(file), 0);
		return;
	}
	size_t expected_length;
	char *expected = fixture_read(path, &expected_length);
	if (!expected)
		fail_msg("cannot open %s (AERIE_GOLDEN_UPDATE=1 writes it)", path);
	assert_true(expected_length > 0);
	assert_int_equal(expected[expected_length - 1], '\n');
	expected[--expected_length] = '\0';
	if (expected_length != length || memcmp(expected, text, length) != 0)
		fail_msg("status differs from %s:\nexpected %s\nactual   %s", path, expected, text);
	free(expected);
}

static void
test_golden(void **state)
{
	(void)state;
	/* Generation 1 serves "web" no more: a rolling restart to generation 2 is under way,
	 * one old worker still stopping. Every state, exits by code, by signal (with a core
	 * dump) and none yet, and STATUS= texts that need escaping. */
	struct config_service web_config = {.name = "web", .count = 3};
	struct config_service batch_config = {.name = "batch", .count = 3};
	struct worker web_workers[] = {
	    {.pid = 101,
	     .index = 0,
	     .generation = 1,
	     .state = WORKER_STOPPING,
	     .since = 1700000000.5,
	     .restarts = 2,
	     .health_kills = 1,
	     .exit_status = EXITED(3),
	     .status_text = "old \"v1\""},
	    {.pid = 102,
	     .index = 0,
	     .generation = 2,
	     .state = WORKER_READY,
	     .since = 1700000001.25,
	     .exit_status = -1,
	     .status_text = "say \"hi\"\\ tab\there \x01 bell\x7f caf\xc3\xa9 bad\xff\xfe end"},
	    {.pid = 103,
	     .index = 1,
	     .generation = 2,
	     .state = WORKER_STARTING,
	     .since = 1700000002.125,
	     .restarts = 1,
	     .memory_replacements = 4,
	     .exit_status = KILLED(SIGKILL)},
	    {.pid = 0,
	     .index = 2,
	     .generation = 2,
	     .state = WORKER_BACKOFF,
	     .since = 1700000003.0,
	     .restarts = 7,
	     .exit_status = EXITED(1),
	     .retry_at = 1700000004.5},
	};
	struct worker batch_workers[] = {
	    {.pid = 0,
	     .index = 0,
	     .generation = 1,
	     .state = WORKER_EXITED,
	     .since = 1699999999.75,
	     .exit_status = KILLED(SIGSEGV) | CORE_DUMPED,
	     .status_text = ""},
	    {.pid = 0,
	     .index = 1,
	     .generation = 1,
	     .state = WORKER_FAILED,
	     .since = 1699999999.5,
	     .restarts = 4,
	     .exit_status = EXITED(2)},
	    {.pid = 0,
	     .index = 2,
	     .generation = 1,
	     .state = WORKER_DONE,
	     .since = 1699999999.25,
	     .exit_status = EXITED(0)},
	};
	/* The stopping worker comes first in the list: status puts it last. */
	struct worker *web_list[] = {&web_workers[0], &web_workers[1], &web_workers[2],
				     &web_workers[3]};
	struct worker *batch_list[] = {&batch_workers[0], &batch_workers[1], &batch_workers[2]};
	struct service web = {.name = "web",
			      .config = &web_config,
			      .workers = web_list,
			      .worker_count = 4,
			      .generation = 2,
			      .roll_generation = 2,
			      .restarts = 10,
			      .failures = 6,
			      .health_kills = 1,
			      .memory_replacements = 4};
	struct service batch = {.name = "batch",
				.config = &batch_config,
				.workers = batch_list,
				.worker_count = 3,
				.generation = 1,
				.restarts = 0};
	struct service *services[] = {&web, &batch};
	struct status_host host = {
	    .pid = 4242, .uptime = 12.3456789, .generation = 2, .stopping = true};

	char *text = NULL;
	ssize_t length = status_encode(&host, services, 2, &text);
	assert_true(length > 0);
	assert_int_equal(strlen(text), (size_t)length);
	compare_golden(text, (size_t)length);
	free(text);
}

static void
test_no_services(void **state)
{
	(void)state;
	struct status_host host = {.pid = 1, .uptime = 0.0000004, .generation = 0};
	char *text = NULL;
	ssize_t length = status_encode(&host, NULL, 0, &text);
	assert_string_equal(
	    text, "{\"host\":{\"pid\":1,\"uptime\":0.000000,\"generation\":0,\"stopping\":false},"
		  "\"services\":{}}");
	assert_int_equal(length, strlen(text));
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_golden),
	    cmocka_unit_test(test_no_services),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
