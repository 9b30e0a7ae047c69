/* test_top_view: the rows of `top`: grouped by service, sorted, fitted to narrow widths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cli/top_view.h"

static const char status_text[] =
    "{\"host\":{\"pid\":100,\"uptime\":65,\"generation\":2,\"stopping\":false},"
    "\"services\":{"
    "\"web\":{\"count\":3,\"ready\":2,\"restarts\":4,\"generation\":2,\"workers\":["
    "{\"pid\":110,\"index\":0,\"generation\":2,\"state\":\"ready\",\"restarts\":1},"
    "{\"pid\":111,\"index\":1,\"generation\":2,\"state\":\"ready\",\"restarts\":0},"
    "{\"pid\":0,\"index\":2,\"generation\":2,\"state\":\"backoff\",\"restarts\":3,"
    "\"last_exit\":{\"signal\":\"SEGV\"}}]},"
    "\"clock\":{\"count\":1,\"ready\":1,\"restarts\":0,\"generation\":2,\"workers\":["
    "{\"pid\":120,\"index\":0,\"generation\":2,\"state\":\"ready\",\"restarts\":0}]}}}";

/* host 100 → supervisor 101, web.0 110 (→ its child 112), web.1 111, clock.0 120, orphan 130. */
static struct metrics_process processes[] = {
    {.pid = 100, .ppid = 1, .depth = 0, .command = (char *)"aerie host aerie.ini"},
    {.pid = 101, .ppid = 100, .depth = 1, .command = (char *)"aerie supervisor-process"},
    {.pid = 110,
     .ppid = 100,
     .depth = 1,
     .command = (char *)"worker --fast",
     .has_recent = true,
     .processor_utilization_recent = 5.0,
     .resident_size = 1 << 20},
    {.pid = 112, .ppid = 110, .depth = 2, .command = (char *)"helper \x1b[2J"},
    {.pid = 111,
     .ppid = 100,
     .depth = 1,
     .command = (char *)"worker --slow",
     .has_recent = true,
     .processor_utilization_recent = 50.0,
     .resident_size = 4 << 20,
     .has_memory = true,
     .memory = {.proportional_size = 3 << 20, .unique_size = 2 << 20}},
    {.pid = 120, .ppid = 100, .depth = 1, .command = (char *)"clock"},
    {.pid = 130, .ppid = 100, .depth = 1, .command = (char *)"daemon"},
};

static const struct metrics_tree tree = {
    .processes = processes,
    .count = sizeof(processes) / sizeof(processes[0]),
};

/* The row that mentions text, or -1. */
static ssize_t
find(const struct top_lines *lines, const char *text)
{
	for (size_t i = 0; i < lines->count; i++)
		if (strstr(lines->lines[i].text, text))
			return (ssize_t)i;
	return -1;
}

static void
render(enum top_sort sort, size_t width, struct top_lines *header, struct top_lines *rows)
{
	json_t *status = json_loads(status_text, 0, NULL);
	assert_non_null(status);
	assert_int_equal(top_view_render(status, &tree, sort, width, header, rows), 0);
	json_decref(status);
}

static void
test_groups_and_sort(void **state)
{
	(void)state;
	struct top_lines header, rows;
	render(TOP_SORT_CPU, 120, &header, &rows);
	assert_non_null(
	    strstr(header.lines[0].text, "host 100, up 01:05, generation 2, 3/4 ready"));
	assert_non_null(strstr(header.lines[1].text, "CPU 55.0%"));
	assert_int_equal(header.lines[2].style, TOP_STYLE_COLUMNS);
	/* The host group, then web (busiest first, each worker with its child), then clock. */
	assert_int_equal(find(&rows, "host"), 0);
	assert_true(find(&rows, "supervisor") > 0 &&
		    find(&rows, "supervisor") < find(&rows, "web:"));
	assert_true(find(&rows, "orphan") > 0 && find(&rows, "orphan") < find(&rows, "web:"));
	assert_int_equal(rows.lines[find(&rows, "web:")].style, TOP_STYLE_GROUP);
	assert_non_null(
	    strstr(rows.lines[find(&rows, "web:")].text, "2/3 ready, generation 2, 4 restarts"));
	assert_true(find(&rows, "web:") < find(&rows, "web.1"));
	assert_true(find(&rows, "web.1") < find(&rows, "web.0"));
	assert_int_equal(find(&rows, "web.0") + 1, find(&rows, "\\_ helper"));
	assert_true(find(&rows, "web.2") > find(&rows, "helper"));
	assert_true(find(&rows, "web.2") < find(&rows, "clock:"));
	assert_non_null(strstr(rows.lines[find(&rows, "web.2")].text, "last exit: signal SEGV"));
	/* No escape sequence reaches the terminal. */
	assert_null(strchr(rows.lines[find(&rows, "helper")].text, '\x1b'));
	top_lines_free(&header);
	top_lines_free(&rows);

	render(TOP_SORT_PID, 120, &header, &rows);
	assert_true(find(&rows, "web.0") < find(&rows, "web.1"));
	assert_true(find(&rows, "web.1") < find(&rows, "web.2"));
	assert_non_null(strstr(header.lines[1].text, "sorted by pid"));
	top_lines_free(&header);
	top_lines_free(&rows);

	render(TOP_SORT_MEMORY, 120, &header, &rows);
	assert_true(find(&rows, "web.1") < find(&rows, "web.0"));
	top_lines_free(&header);
	top_lines_free(&rows);
}

/* utilization = yes: a REQS column of requests in flight per worker and the sums on the
 * service's line; without it (the status above) neither. */
static void
test_requests_in_flight(void **state)
{
	(void)state;
	static const char with_counters[] =
	    "{\"host\":{\"pid\":100,\"uptime\":65,\"generation\":2,\"stopping\":false},"
	    "\"services\":{\"web\":{\"count\":2,\"ready\":2,\"restarts\":0,\"generation\":2,"
	    "\"workers\":["
	    "{\"pid\":110,\"index\":0,\"generation\":2,\"state\":\"ready\",\"restarts\":0,"
	    "\"utilization\":{\"connections_active\":1,\"connections_total\":5,"
	    "\"requests_active\":7,\"requests_total\":40}},"
	    "{\"pid\":111,\"index\":1,\"generation\":2,\"state\":\"ready\",\"restarts\":0,"
	    "\"utilization\":{\"connections_active\":1,\"connections_total\":5,"
	    "\"requests_active\":3,\"requests_total\":2}}],"
	    "\"utilization\":{\"connections_active\":2,\"connections_total\":10,"
	    "\"requests_active\":10,\"requests_total\":142,\"workers\":2}}}}";
	json_t *status = json_loads(with_counters, 0, NULL);
	assert_non_null(status);
	struct top_lines header, rows;
	assert_int_equal(top_view_render(status, &tree, TOP_SORT_PID, 0, &header, &rows), 0);
	json_decref(status);
	assert_non_null(strstr(header.lines[header.count - 1].text, " REQS "));
	assert_non_null(
	    strstr(rows.lines[find(&rows, "web:")].text, "10 requests in flight, 142 served"));
	/* The column's cell: right-aligned in 5, before the command. */
	assert_non_null(strstr(rows.lines[find(&rows, "web.0")].text, "    7  worker --fast"));
	assert_non_null(strstr(rows.lines[find(&rows, "web.1")].text, "    3  worker --slow"));
	top_lines_free(&header);
	top_lines_free(&rows);

	render(TOP_SORT_PID, 0, &header, &rows);
	assert_null(strstr(header.lines[header.count - 1].text, "REQS"));
	assert_null(strstr(rows.lines[find(&rows, "web:")].text, "in flight"));
	top_lines_free(&header);
	top_lines_free(&rows);
}

/* Narrow terminals lose columns, least useful first, and every line fits. */
static void
test_narrow(void **state)
{
	(void)state;
	for (size_t width = 10; width <= 130; width += 5) {
		struct top_lines header, rows;
		render(TOP_SORT_CPU, width, &header, &rows);
		for (size_t i = 0; i < header.count; i++)
			assert_true(strlen(header.lines[i].text) <= width);
		for (size_t i = 0; i < rows.count; i++)
			assert_true(strlen(rows.lines[i].text) <= width);
		if (width >= 40) {
			assert_true(find(&rows, "web.0") >= 0);
			assert_true(find(&rows, "110") >= 0);
			assert_non_null(strstr(header.lines[2].text, "%CPU"));
		}
		if (width < 80)
			assert_null(strstr(header.lines[2].text, "RESTARTS"));
		if (width >= 120)
			assert_non_null(strstr(header.lines[2].text, "RESTARTS"));
		top_lines_free(&header);
		top_lines_free(&rows);
	}
}

/* Before the first reply, and with an error reply instead of a status. */
static void
test_missing_status(void **state)
{
	(void)state;
	struct top_lines header, rows;
	assert_int_equal(top_view_render(NULL, NULL, TOP_SORT_CPU, 80, &header, &rows), 0);
	assert_non_null(strstr(header.lines[0].text, "waiting"));
	assert_int_equal(rows.count, 0);
	top_lines_free(&header);
	top_lines_free(&rows);
	json_t *error = json_loads("{\"error\":{\"code\":\"host_unavailable\",\"message\":\"the "
				   "host does not answer\"}}",
				   0, NULL);
	assert_int_equal(top_view_render(error, &tree, TOP_SORT_CPU, 0, &header, &rows), 0);
	assert_non_null(strstr(header.lines[0].text, "the host does not answer"));
	assert_true(find(&rows, "aerie host") >= 0);
	top_lines_free(&header);
	top_lines_free(&rows);
	json_decref(error);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_groups_and_sort),
	    cmocka_unit_test(test_narrow),
	    cmocka_unit_test(test_requests_in_flight),
	    cmocka_unit_test(test_missing_status),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
