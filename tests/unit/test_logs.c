/* Unit tests of logs.c's ring: what `logs` answers after lines of every length, the arena's
 * bound (lines forgotten when their text needs the room), cut lines, the worker filter and the
 * merge of services by time. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "host/logs.h"

static struct config_service
service_config(const char *name, unsigned lines)
{
	return (struct config_service){.name = (char *)name, .log_lines = lines};
}

static struct worker
worker_of(unsigned index, pid_t pid)
{
	struct worker worker = {.index = index, .output_pid = pid};
	snprintf(worker.label, sizeof(worker.label), "web.%u", index);
	return worker;
}

/* The reply's "lines", decoded. */
static json_t *
query(struct logs *const *logs, size_t count, int worker, unsigned lines)
{
	char *text;
	ssize_t length = logs_encode(logs, count, worker, lines, &text);
	assert_true(length > 0);
	json_t *reply = json_loadb(text, (size_t)length, JSON_ALLOW_NUL, NULL);
	free(text);
	assert_non_null(reply);
	json_t *array = json_incref(json_object_get(reply, "lines"));
	json_decref(reply);
	assert_true(json_is_array(array));
	return array;
}

static const char *
line_at(json_t *lines, size_t i)
{
	return json_string_value(json_object_get(json_array_get(lines, i), "line"));
}

static void
add(struct logs *logs, const struct worker *worker, enum worker_stream stream, const char *text)
{
	logs_line(logs, worker, stream, text, strlen(text));
}

static void
test_last_lines(void **state)
{
	(void)state;
	struct config_service config = service_config("web", 4);
	struct logs *logs;
	assert_int_equal(logs_new(&config, &logs), 0);
	struct worker w0 = worker_of(0, 100), w1 = worker_of(1, 101);
	json_t *lines = query(&logs, 1, -1, 10);
	assert_int_equal(json_array_size(lines), 0);
	json_decref(lines);
	char text[16];
	for (int i = 1; i <= 6; i++) {
		snprintf(text, sizeof(text), "line %d", i);
		add(logs, i % 2 ? &w1 : &w0, i == 6 ? WORKER_STDERR : WORKER_STDOUT, text);
	}
	/* log_lines = 4: 3 to 6, oldest first. */
	lines = query(&logs, 1, -1, 100);
	assert_int_equal(json_array_size(lines), 4);
	assert_string_equal(line_at(lines, 0), "line 3");
	assert_string_equal(line_at(lines, 3), "line 6");
	json_t *last = json_array_get(lines, 3);
	assert_string_equal(json_string_value(json_object_get(last, "stream")), "stderr");
	assert_int_equal(json_integer_value(json_object_get(last, "worker")), 0);
	assert_int_equal(json_integer_value(json_object_get(last, "pid")), 100);
	assert_string_equal(json_string_value(json_object_get(last, "service")), "web");
	json_decref(lines);
	/* The last 2; worker 1's only. */
	lines = query(&logs, 1, -1, 2);
	assert_int_equal(json_array_size(lines), 2);
	assert_string_equal(line_at(lines, 0), "line 5");
	json_decref(lines);
	lines = query(&logs, 1, 1, 100);
	assert_int_equal(json_array_size(lines), 2);
	assert_string_equal(line_at(lines, 0), "line 3");
	assert_string_equal(line_at(lines, 1), "line 5");
	json_decref(lines);
	logs_free(logs);
}

/* Lines of every length through a small arena: whatever is kept is the newest lines, whole,
 * in order; a line over LOGS_LINE_MAX is cut and marked. */
static void
test_arena(void **state)
{
	(void)state;
	struct config_service config = service_config("web", 8); /* arena: 2 x LOGS_LINE_MAX */
	struct logs *logs;
	assert_int_equal(logs_new(&config, &logs), 0);
	struct worker w = worker_of(0, 7);
	static char text[LOGS_LINE_MAX * 2];
	unsigned seed = 1;
	for (int i = 0; i < 5000; i++) {
		seed = seed * 1103515245 + 12345;
		size_t length = (seed >> 8) % (i % 50 == 0 ? sizeof(text) - 1 : 700);
		int n = snprintf(text, sizeof(text), "%d:", i);
		memset(text + n, 'a' + i % 26, length > (size_t)n ? length - (size_t)n : 0);
		text[length > (size_t)n ? length : (size_t)n] = '\0';
		add(logs, &w, WORKER_STDOUT, text);
		json_t *lines = query(&logs, 1, -1, 100);
		size_t count = json_array_size(lines);
		assert_true(count >= 1 && count <= 8);
		for (size_t k = 0; k < count; k++) {
			const char *line = line_at(lines, k);
			int number = atoi(line);
			assert_int_equal(number, i - (int)(count - 1 - k));
			/* Whole: one letter after the number, to the end, not overwritten. */
			const char *body = strchr(line, ':') + 1;
			for (const char *p = body; *p; p++)
				assert_int_equal(*p, 'a' + number % 26);
			json_t *cut = json_object_get(json_array_get(lines, k), "cut");
			assert_true(json_is_true(cut) == (strlen(line) == LOGS_LINE_MAX && cut));
			assert_true(strlen(line) <= LOGS_LINE_MAX);
		}
		json_decref(lines);
	}
	add(logs, &w, WORKER_STDOUT, "");
	json_t *lines = query(&logs, 1, -1, 1);
	assert_string_equal(line_at(lines, 0), "");
	json_decref(lines);
	logs_free(logs);
}

static void
test_cut_and_escaped(void **state)
{
	(void)state;
	struct config_service config = service_config("web", 10);
	struct logs *logs;
	assert_int_equal(logs_new(&config, &logs), 0);
	struct worker w = worker_of(0, 7);
	static char text[LOGS_LINE_MAX + 100];
	memset(text, 'x', sizeof(text));
	logs_line(logs, &w, WORKER_STDOUT, text, sizeof(text));
	logs_line(logs, &w, WORKER_STDOUT, "a\0b\x1b\xff\"", 6);
	json_t *lines = query(&logs, 1, -1, 10);
	assert_int_equal(strlen(line_at(lines, 0)), LOGS_LINE_MAX);
	assert_true(json_is_true(json_object_get(json_array_get(lines, 0), "cut")));
	assert_null(json_object_get(json_array_get(lines, 1), "cut"));
	/* NUL and ESC as \u escapes, the stray byte as U+FFFD: still JSON. */
	const char *line = json_string_value(json_object_get(json_array_get(lines, 1), "line"));
	assert_memory_equal(line, "a\0b\x1b\xef\xbf\xbd\"", 8);
	json_decref(lines);
	logs_free(logs);
}

static void
test_services_merged(void **state)
{
	(void)state;
	struct config_service a = service_config("a", 10), b = service_config("b", 10),
			      none = service_config("none", 0);
	struct logs *logs[3];
	assert_int_equal(logs_new(&a, &logs[0]), 0);
	assert_int_equal(logs_new(&b, &logs[1]), 0);
	assert_int_equal(logs_new(&none, &logs[2]), 0);
	struct worker w = worker_of(0, 7);
	add(logs[0], &w, WORKER_STDOUT, "1");
	add(logs[1], &w, WORKER_STDOUT, "2");
	add(logs[2], &w, WORKER_STDOUT, "never kept");
	add(logs[0], &w, WORKER_STDOUT, "3");
	json_t *lines = query(logs, 3, -1, 10);
	assert_int_equal(json_array_size(lines), 3);
	for (size_t i = 0; i < 3; i++) {
		char expected[2] = {(char)('1' + i), 0};
		assert_string_equal(line_at(lines, i), expected);
	}
	json_decref(lines);
	lines = query(logs, 3, -1, 2);
	assert_string_equal(line_at(lines, 0), "2");
	json_decref(lines);
	for (size_t i = 0; i < 3; i++)
		logs_free(logs[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_last_lines),
	    cmocka_unit_test(test_arena),
	    cmocka_unit_test(test_cut_and_escaped),
	    cmocka_unit_test(test_services_merged),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
