/* test_cpu_interval: CPU% over the time since the previous capture: windows, the minimum
 * window, pid reuse, counters that go back, processes that leave; and the JSON field. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics/cpu_interval.h"
#include "metrics/metrics_json.h"

/* A one-process capture: pid started at start_ticks, with cpu seconds after elapsed seconds. */
static struct metrics_process
process(pid_t pid, uint64_t start_ticks, double cpu, double elapsed)
{
	return (struct metrics_process){
	    .pid = pid,
	    .start_ticks = start_ticks,
	    .processor_time = cpu,
	    .elapsed_time = elapsed,
	    .processor_utilization = elapsed > 0 ? cpu / elapsed * 100.0 : 0,
	    .command = (char *)"worker",
	};
}

/* Runs one capture of n processes through interval; returns their recent percents. */
static void
capture(struct cpu_interval *interval, struct metrics_process *processes, size_t n,
	double *ret_percent)
{
	struct metrics_tree tree = {.processes = processes, .count = n, .capacity = n};
	assert_int_equal(cpu_interval_update(interval, &tree), 0);
	for (size_t i = 0; i < n; i++) {
		assert_true(processes[i].has_recent);
		ret_percent[i] = processes[i].processor_utilization_recent;
	}
}

static void
test_first_capture_is_the_lifetime(void **state)
{
	(void)state;
	struct cpu_interval interval = {0};
	struct metrics_process p[] = {process(10, 100, 2.0, 100.0), process(11, 500, 0.5, 1.0)};
	double percent[2];
	capture(&interval, p, 2, percent);
	assert_float_equal(percent[0], 2.0, 1e-9);
	assert_float_equal(percent[1], 50.0, 1e-9);
	cpu_interval_free(&interval);
}

static void
test_interval_since_previous_capture(void **state)
{
	(void)state;
	struct cpu_interval interval = {0};
	struct metrics_process first[] = {process(10, 100, 2.0, 100.0), process(20, 7, 0, 50.0)};
	double percent[2];
	capture(&interval, first, 2, percent);
	/* One second later: pid 10 used 0.25 s, pid 20 (two busy threads) 2 s. */
	struct metrics_process second[] = {process(20, 7, 2.0, 51.0),
					   process(10, 100, 2.25, 101.0)};
	capture(&interval, second, 2, percent);
	assert_float_equal(percent[0], 200.0, 1e-6);
	assert_float_equal(percent[1], 25.0, 1e-6);
	/* Idle for the next 2 s: 0, not the lifetime average. */
	struct metrics_process third[] = {process(10, 100, 2.25, 103.0)};
	capture(&interval, third, 1, percent);
	assert_float_equal(percent[0], 0.0, 1e-9);
	assert_int_equal(interval.count, 1); /* pid 20 left: its sample is dropped */
	cpu_interval_free(&interval);
}

/* A capture right after another (a second client) gets the last full window's value, and the
 * baseline stays, so that the next window is long enough. */
static void
test_short_window_keeps_baseline(void **state)
{
	(void)state;
	struct cpu_interval interval = {0};
	double percent;
	struct metrics_process p = process(10, 100, 10.0, 100.0);
	capture(&interval, &p, 1, &percent);
	p = process(10, 100, 10.5, 101.0);
	capture(&interval, &p, 1, &percent);
	assert_float_equal(percent, 50.0, 1e-6);
	p = process(10, 100, 10.51, 101.01); /* 10 ms later: one tick would read as 100 % */
	capture(&interval, &p, 1, &percent);
	assert_float_equal(percent, 50.0, 1e-6);
	p = process(10, 100, 10.6, 101.3); /* still under the minimum since the baseline */
	capture(&interval, &p, 1, &percent);
	assert_float_equal(percent, 50.0, 1e-6);
	p = process(10, 100, 10.6, 102.0); /* 1 s after the baseline, 0.1 s used */
	capture(&interval, &p, 1, &percent);
	assert_float_equal(percent, 10.0, 1e-6);
	cpu_interval_free(&interval);
}

/* The same pid with another start time is another process: its own lifetime, not a negative
 * or huge difference against the old one's counters. */
static void
test_pid_reuse(void **state)
{
	(void)state;
	struct cpu_interval interval = {0};
	double percent;
	struct metrics_process p = process(10, 100, 50.0, 100.0);
	capture(&interval, &p, 1, &percent);
	p = process(10, 9900, 0.1, 0.5); /* a new process got pid 10 */
	capture(&interval, &p, 1, &percent);
	assert_float_equal(percent, 20.0, 1e-6);
	p = process(10, 9900, 0.6, 1.5);
	capture(&interval, &p, 1, &percent);
	assert_float_equal(percent, 50.0, 1e-6);
	cpu_interval_free(&interval);
}

/* A counter that goes back (which one process's can't) restarts from the new sample as for a
 * new process, instead of a negative percent. */
static void
test_counter_reset(void **state)
{
	(void)state;
	struct cpu_interval interval = {0};
	double percent;
	struct metrics_process p = process(10, 100, 50.0, 100.0);
	capture(&interval, &p, 1, &percent);
	p = process(10, 100, 1.0, 101.0);
	capture(&interval, &p, 1, &percent);
	assert_true(percent >= 0);
	assert_float_equal(percent, 1.0 / 101.0 * 100.0, 1e-6);
	p = process(10, 100, 1.5, 102.0);
	capture(&interval, &p, 1, &percent);
	assert_float_equal(percent, 50.0, 1e-6);
	/* The elapsed time going back (a bad clock read) is treated the same way. */
	p = process(10, 100, 1.6, 90.0);
	capture(&interval, &p, 1, &percent);
	assert_true(percent >= 0);
	p = process(10, 100, 1.7, 91.0);
	capture(&interval, &p, 1, &percent);
	assert_float_equal(percent, 10.0, 1e-6);
	cpu_interval_free(&interval);
}

static void
test_percent_arithmetic(void **state)
{
	(void)state;
	struct cpu_sample before = {.pid = 1, .processor_time = 1.0, .elapsed_time = 10.0};
	assert_float_equal(cpu_interval_percent(&before, 1.5, 11.0), 50.0, 1e-9);
	assert_float_equal(cpu_interval_percent(&before, 1.0, 12.0), 0.0, 1e-9);
	assert_float_equal(cpu_interval_percent(&before, 5.0, 12.0), 200.0, 1e-9);
	assert_true(cpu_interval_percent(&before, 1.01, 10.01) < 0); /* too short */
	assert_true(cpu_interval_percent(&before, 0.5, 11.0) < 0);   /* counter went back */
	assert_true(cpu_interval_percent(&before, 1.5, 9.0) < 0);    /* clock went back */
	assert_true(cpu_interval_percent(&before, 1.0, 10.0) < 0);   /* no time at all */
}

/* Many processes in any order: each finds its own sample. */
static void
test_many_processes(void **state)
{
	(void)state;
	enum { N = 500 };
	struct cpu_interval interval = {0};
	struct metrics_process *p = calloc(N, sizeof(*p));
	double *percent = calloc(N, sizeof(*percent));
	assert_non_null(p);
	assert_non_null(percent);
	for (size_t i = 0; i < N; i++)
		p[i] = process((pid_t)(1000 + (i * 7919) % N), i, 1.0, 10.0);
	capture(&interval, p, N, percent);
	for (size_t i = 0; i < N; i++)
		p[i] =
		    process((pid_t)(1000 + (i * 7919) % N), i, 1.0 + (double)(i % 10) / 10.0, 11.0);
	capture(&interval, p, N, percent);
	for (size_t i = 0; i < N; i++)
		assert_float_equal(percent[i], (double)(i % 10) * 10.0, 1e-6);
	cpu_interval_free(&interval);
	free(p);
	free(percent);
}

/* The encoder writes the field, the lifetime value where none was computed (aerie metrics);
 * the decoder reads it back, and takes the lifetime value from a reply without it (Falcon). */
static void
test_json_field(void **state)
{
	(void)state;
	struct metrics_process p[2] = {process(10, 100, 1.0, 100.0), process(11, 1, 1.0, 10.0)};
	p[1].ppid = 10;
	p[0].has_recent = true;
	p[0].processor_utilization_recent = 42.5;
	struct metrics_tree tree = {.processes = p, .count = 2, .capacity = 2};
	char *text;
	assert_true(metrics_json_encode(&tree, &text) > 0);
	assert_non_null(strstr(text, "\"processor_utilization\":1.00,"
				     "\"processor_utilization_recent\":42.50,"));
	assert_non_null(strstr(text, "\"processor_utilization\":10.00,"
				     "\"processor_utilization_recent\":10.00,"));
	json_t *object = json_loads(text, 0, NULL);
	free(text);
	assert_non_null(object);
	struct metrics_tree parsed;
	assert_int_equal(metrics_json_parse(object, &parsed), 0);
	assert_int_equal(parsed.count, 2);
	assert_true(parsed.processes[0].has_recent);
	assert_float_equal(parsed.processes[0].processor_utilization_recent, 42.5, 1e-9);
	metrics_tree_free(&parsed);
	json_object_del(json_object_get(object, "10"), "processor_utilization_recent");
	assert_int_equal(metrics_json_parse(object, &parsed), 0);
	assert_false(parsed.processes[0].has_recent);
	assert_float_equal(parsed.processes[0].processor_utilization_recent, 1.0, 1e-9);
	metrics_tree_free(&parsed);
	json_decref(object);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_first_capture_is_the_lifetime),
	    cmocka_unit_test(test_interval_since_previous_capture),
	    cmocka_unit_test(test_short_window_keeps_baseline),
	    cmocka_unit_test(test_pid_reuse),
	    cmocka_unit_test(test_counter_reset),
	    cmocka_unit_test(test_percent_arithmetic),
	    cmocka_unit_test(test_many_processes),
	    cmocka_unit_test(test_json_field),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
