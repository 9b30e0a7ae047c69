/* test_encoders: the JSON, Prometheus and table encoders of one fixed tree, against golden files.
 *
 * The tree is built by hand (no /proc): a host, its supervisor process, two workers of the
 * service "web" with a child each, one process without memory (a zombie), two with a recent
 * CPU% from the supervisor process, and commands with a double quote, a backslash, control
 * characters and bytes that are not UTF-8. The status is
 * fixtures/golden/prometheus_status.json, in the shape of host_status_encode. Each output is
 * compared byte for byte with fixtures/golden/metrics.json (no final newline, as the encoder writes
 * none), metrics.prom and metrics.txt.
 *
 * After a deliberate change of an encoder, `AERIE_GOLDEN_UPDATE=1 meson test -C build
 * encoders` rewrites the golden files from the current output; read their diff before
 * committing it. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"
#include "metrics/metrics_json.h"
#include "metrics/metrics_prometheus.h"
#include "metrics/metrics_table.h"

#define HOST_PID 1000
#define SUPERVISOR_PID 1001
/* The time the Prometheus samples are taken at: 199.75 s after web.0's "since". */
#define NOW 1700000200.0

/* Memory as smaps_rollup gives it; every field distinct so that a swapped one shows. */
static struct metrics_memory
memory(uint64_t kib)
{
	struct metrics_memory m = {
	    .resident_size = kib * 1024,
	    .proportional_size = kib * 1024 / 2,
	    .shared_clean_size = kib * 1024 / 4,
	    .shared_dirty_size = 4096,
	    .private_clean_size = 8192,
	    .private_dirty_size = kib * 1024 / 4 - 8192,
	    .referenced_size = kib * 1024 - 12288,
	    .anonymous_size = kib * 1024 / 8,
	    .swap_size = 16384,
	    .proportional_swap_size = 12288,
	};
	m.unique_size = m.private_clean_size + m.private_dirty_size;
	return m;
}

/* Depth-first, root first, as metrics_capture gives it. Times and percents are chosen to be
 * exact in binary, or far from a rounding boundary of the encoders' decimals. */
static struct metrics_process processes[] = {
    {.pid = HOST_PID,
     .ppid = 1,
     .pgid = HOST_PID,
     .depth = 0,
     .processor_utilization = 2.0,
     .virtual_size = 23068672,
     .resident_size = 9437184,
     .processor_time = 0.25,
     .elapsed_time = 12.5,
     .command = "aerie host /srv/aerie.ini",
     .has_memory = true,
     .minor_faults = 1200,
     .major_faults = 3},
    {.pid = SUPERVISOR_PID,
     .ppid = HOST_PID,
     .pgid = HOST_PID,
     .depth = 1,
     .processor_utilization = 0.8,
     .virtual_size = 19922944,
     .resident_size = 6291456,
     .processor_time = 0.1,
     .elapsed_time = 12.5,
     .command = "aerie supervisor-process",
     .has_memory = true,
     .minor_faults = 800,
     .major_faults = 0,
     .processor_utilization_recent = 0.75,
     .has_recent = true},
    {.pid = 1010,
     .ppid = HOST_PID,
     .pgid = 1010,
     .depth = 1,
     .processor_utilization = 37.5,
     .virtual_size = 5368709120,
     .resident_size = 104857600,
     .processor_time = 4.5,
     .elapsed_time = 12,
     .command = "./worker --name \"web\" --root C:\\srv",
     .has_memory = true,
     .minor_faults = 52000,
     .major_faults = 17,
     .processor_utilization_recent = 61.25,
     .has_recent = true},
    {.pid = 1011,
     .ppid = 1010,
     .pgid = 1010,
     .depth = 2,
     .processor_utilization = 0.0,
     .virtual_size = 8192000,
     .resident_size = 1785856,
     .processor_time = 0,
     .elapsed_time = 90061.5,
     .command = "helper \x1b[2J\t\x7f caf\xc3\xa9 \xff\xfe end",
     .has_memory = true,
     .minor_faults = 90,
     .major_faults = 1},
    {.pid = 1020,
     .ppid = HOST_PID,
     .pgid = 1020,
     .depth = 1,
     .processor_utilization = 12.5,
     .virtual_size = 1052672,
     .resident_size = 524288,
     .processor_time = 1,
     .elapsed_time = 8,
     .command = "./worker --threads 2",
     .has_memory = true,
     .minor_faults = 4000,
     .major_faults = 2},
    /* A zombie: no smaps_rollup, so memory is null and PSS/USS are left out. */
    {.pid = 1021,
     .ppid = 1020,
     .pgid = 1020,
     .depth = 2,
     .processor_utilization = 25.0,
     .virtual_size = 0,
     .resident_size = 0,
     .processor_time = 0.5,
     .elapsed_time = 2,
     .command = "[sleep] <defunct>",
     .has_memory = false},
};

static const uint64_t memory_kib[] = {9216, 6144, 102400, 1744, 512, 0};

static struct metrics_tree
golden_tree(void)
{
	size_t count = sizeof(processes) / sizeof(processes[0]);
	for (size_t i = 0; i < count; i++)
		if (processes[i].has_memory)
			processes[i].memory = memory(memory_kib[i]);
	return (struct metrics_tree){.processes = processes, .count = count, .capacity = count};
}

static void
golden_path(const char *name, char *path, size_t size)
{
	fixture_path("golden", name, path, size);
}

/* Reads fixtures/golden/NAME whole. Returns NULL if it can't be opened. */
static char *
read_golden(const char *name, size_t *ret_length)
{
	char path[PATH_MAX];
	golden_path(name, path, sizeof(path));
	return fixture_read(path, ret_length);
}

/* One line of text (up to its '\n') for a failure message, with what is not printable ASCII as
 * \xNN, so that the message shows the bytes that differ. */
static void
escape_line(const char *line, size_t length, char *buffer, size_t size)
{
	size_t n = 0;
	for (size_t i = 0; i < length && line[i] != '\n' && n + 5 < size; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			buffer[n++] = (char)c;
		else
			n += (size_t)snprintf(buffer + n, size - n, "\\x%02x", c);
	}
	buffer[n] = '\0';
}

/* Fails unless actual is expected byte for byte, with the first differing line of each. */
static void
compare(const char *name, const char *expected, size_t expected_length, const char *actual,
	size_t actual_length)
{
	size_t i = 0, line = 1, line_start = 0;
	while (i < expected_length && i < actual_length && expected[i] == actual[i]) {
		if (expected[i] == '\n') {
			line++;
			line_start = i + 1;
		}
		i++;
	}
	if (i == expected_length && i == actual_length)
		return;
	char expected_line[1024], actual_line[1024];
	escape_line(expected + line_start, expected_length - line_start, expected_line,
		    sizeof(expected_line));
	escape_line(actual + line_start, actual_length - line_start, actual_line,
		    sizeof(actual_line));
	fail_msg("%s differs at line %zu, byte %zu of the line:\n"
		 "  expected: %s%s\n"
		 "  actual:   %s%s",
		 name, line, i - line_start + 1, expected_line,
		 i == expected_length ? " (end of file)" : "", actual_line,
		 i == actual_length ? " (end of output)" : "");
}

/* Compares actual with the golden file NAME; with AERIE_GOLDEN_UPDATE=1, writes actual as the
 * file instead. */
static void
check_golden(const char *name, const char *actual, size_t actual_length)
{
	const char *update = getenv("AERIE_GOLDEN_UPDATE");
	if (update && strcmp(update, "1") == 0) {
		char path[PATH_MAX];
		golden_path(name, path, sizeof(path));
		FILE *file = fopen(path, "wb");
		if (!file)
			fail_msg("cannot write %s", path);
		assert_int_equal(fwrite(actual, 1, actual_length, file), actual_length);
		assert_int_equal(fclose(file), 0);
		print_message("wrote %s\n", path);
		return;
	}
	size_t expected_length;
	char *expected = read_golden(name, &expected_length);
	if (!expected)
		fail_msg("no golden file %s (AERIE_GOLDEN_UPDATE=1 writes it)", name);
	compare(name, expected, expected_length, actual, actual_length);
	free(expected);
}

static json_t *
golden_status(void)
{
	size_t length;
	char *text = read_golden("prometheus_status.json", &length);
	assert_non_null(text);
	json_error_t error;
	json_t *status = json_loadb(text, length, 0, &error);
	if (!status)
		fail_msg("prometheus_status.json:%d: %s", error.line, error.text);
	free(text);
	return status;
}

static void
json_golden(void **state)
{
	(void)state;
	struct metrics_tree tree = golden_tree();
	char *text;
	ssize_t length = metrics_json_encode(&tree, &text);
	assert_true(length > 0);
	assert_int_equal(strlen(text), (size_t)length);
	check_golden("metrics.json", text, (size_t)length);
	free(text);
}

static void
prometheus_golden(void **state)
{
	(void)state;
	struct metrics_tree tree = golden_tree();
	json_t *status = golden_status();
	char *text;
	ssize_t length =
	    metrics_prometheus_format_at(&tree, status, HOST_PID, SUPERVISOR_PID, NOW, &text);
	assert_true(length > 0);
	assert_int_equal(strlen(text), (size_t)length);
	check_golden("metrics.prom", text, (size_t)length);
	free(text);
	json_decref(status);
}

static char *
table_of(const struct metrics_tree *tree, size_t *ret_length)
{
	char *text = NULL;
	size_t length = 0;
	FILE *out = open_memstream(&text, &length);
	assert_non_null(out);
	metrics_table_print(out, tree);
	assert_int_equal(fclose(out), 0);
	*ret_length = length;
	return text;
}

static void
table_golden(void **state)
{
	(void)state;
	struct metrics_tree tree = golden_tree();
	size_t length;
	char *text = table_of(&tree, &length);
	check_golden("metrics.txt", text, length);
	free(text);
}

/* `aerie supervisor metrics` prints the table of the tree it parses back from the JSON: with
 * values that survive the JSON's decimals, it is the same table as the local one, and the
 * command's bytes that JSON can't carry come out as the JSON shows them. */
static void
table_of_parsed_json(void **state)
{
	(void)state;
	struct metrics_tree tree = golden_tree();
	char *text;
	ssize_t length = metrics_json_encode(&tree, &text);
	assert_true(length > 0);
	json_error_t error;
	json_t *object = json_loadb(text, (size_t)length, 0, &error);
	assert_non_null(object);
	free(text);
	struct metrics_tree parsed;
	assert_int_equal(metrics_json_parse(object, &parsed), 0);
	json_decref(object);
	assert_int_equal(parsed.count, tree.count);
	for (size_t i = 0; i < tree.count; i++) {
		assert_int_equal(parsed.processes[i].pid, tree.processes[i].pid);
		assert_int_equal(parsed.processes[i].depth, tree.processes[i].depth);
	}
	/* Only the command of 1011 differs: its bytes that are not UTF-8 are '?' in the JSON. */
	assert_string_equal(parsed.processes[3].command, "helper \x1b[2J\t\x7f caf\xc3\xa9 ?? end");
	free(parsed.processes[3].command);
	parsed.processes[3].command = strdup(tree.processes[3].command);
	assert_non_null(parsed.processes[3].command);

	size_t local_length, parsed_length;
	char *local = table_of(&tree, &local_length);
	char *table = table_of(&parsed, &parsed_length);
	compare("the table of the parsed JSON", local, local_length, table, parsed_length);
	free(local);
	free(table);
	metrics_tree_free(&parsed);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(json_golden),
	    cmocka_unit_test(prometheus_golden),
	    cmocka_unit_test(table_golden),
	    cmocka_unit_test(table_of_parsed_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
