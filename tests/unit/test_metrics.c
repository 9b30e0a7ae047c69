/* test_metrics: the /proc parsers on recorded samples, and one live capture of this process.
 *
 * The files in fixtures/proc were recorded on Linux 6.18 (x86_64, 4 KiB pages, 100 ticks/s):
 * stat-sleep, smaps_rollup-sleep   `sleep 30`
 * stat-python-threads              a python3 with 3 threads, cutime/cstime set
 * stat-zombie                      a forked python3 that exited and was not reaped
 * stat-kthreadd                    /proc/2/stat: ppid and pgid 0, no memory
 * stat-weird-comm                  a process that wrote "x) S 1 (y" to /proc/self/comm
 * smaps_rollup-cat                 `cat /proc/self/smaps_rollup`
 * children-python                  /proc/PID/task/PID/children of a python3 with 3 children
 * cmdline-python                   argv: python3 -c "import time; time.sleep(30)"
 *                                        "an arg with spaces" "" "tab<TAB>here" */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "metrics/metrics.h"
#include "metrics/proc_parse.h"

/* Reads fixtures/proc/NAME into a malloc'd NUL-terminated buffer. */
static char *
read_fixture(const char *name, size_t *ret_length)
{
	char path[PATH_MAX];
	fixture_path("proc", name, path, sizeof(path));
	char *text = fixture_read(path, ret_length);
	if (!text)
		fail_msg("cannot open fixture %s", path);
	return text;
}

/* A copy of text with the first occurrence of old replaced by new. */
static char *
replace(const char *text, const char *old, const char *new)
{
	const char *at = strstr(text, old);
	assert_non_null(at);
	char *result;
	assert_true(asprintf(&result, "%.*s%s%s", (int)(at - text), text, new, at + strlen(old)) >=
		    0);
	return result;
}

/* ---- metrics_parse_stat ---- */

static void
stat_recorded_sleep(void **state)
{
	(void)state;
	char *text = read_fixture("stat-sleep", NULL);
	struct metrics_stat stat;
	assert_int_equal(metrics_parse_stat(text, &stat), 0);
	assert_int_equal(stat.pid, 4661);
	assert_string_equal(stat.comm, "sleep");
	assert_int_equal(stat.state, 'S');
	assert_int_equal(stat.ppid, 4659);
	assert_int_equal(stat.pgid, 4659);
	assert_int_equal(stat.minor_faults, 134);
	assert_int_equal(stat.major_faults, 0);
	assert_int_equal(stat.utime_ticks, 0);
	assert_int_equal(stat.stime_ticks, 0);
	assert_int_equal(stat.num_threads, 1);
	assert_int_equal(stat.start_ticks, 32476);
	assert_int_equal(stat.vsize_bytes, 2990080);
	assert_int_equal(stat.rss_pages, 394);
	free(text);
}

/* Every counted field differs from its neighbours, so a field read one off shows. */
static void
stat_recorded_threads(void **state)
{
	(void)state;
	char *text = read_fixture("stat-python-threads", NULL);
	struct metrics_stat stat;
	assert_int_equal(metrics_parse_stat(text, &stat), 0);
	assert_int_equal(stat.pid, 4711);
	assert_string_equal(stat.comm, "python3");
	assert_int_equal(stat.state, 'R');
	assert_int_equal(stat.ppid, 4659);
	assert_int_equal(stat.pgid, 4659);
	assert_int_equal(stat.minor_faults, 3192); /* not cminflt 6551 */
	assert_int_equal(stat.major_faults, 0);
	assert_int_equal(stat.utime_ticks, 7);
	assert_int_equal(stat.stime_ticks, 2); /* not cutime 3, cstime 5 */
	assert_int_equal(stat.num_threads, 3);
	assert_int_equal(stat.start_ticks, 32529);
	assert_int_equal(stat.vsize_bytes, 168005632);
	assert_int_equal(stat.rss_pages, 3347);
	free(text);
}

static void
stat_recorded_zombie(void **state)
{
	(void)state;
	char *text = read_fixture("stat-zombie", NULL);
	struct metrics_stat stat;
	assert_int_equal(metrics_parse_stat(text, &stat), 0);
	assert_int_equal(stat.pid, 4752);
	assert_string_equal(stat.comm, "python3");
	assert_int_equal(stat.state, 'Z');
	assert_int_equal(stat.ppid, 4711);
	assert_int_equal(stat.pgid, 4659);
	assert_int_equal(stat.minor_faults, 228);
	assert_int_equal(stat.num_threads, 1);
	assert_int_equal(stat.start_ticks, 32548);
	assert_int_equal(stat.vsize_bytes, 0);
	assert_int_equal(stat.rss_pages, 0);
	free(text);
}

static void
stat_recorded_kernel_thread(void **state)
{
	(void)state;
	char *text = read_fixture("stat-kthreadd", NULL);
	struct metrics_stat stat;
	assert_int_equal(metrics_parse_stat(text, &stat), 0);
	assert_int_equal(stat.pid, 2);
	assert_string_equal(stat.comm, "kthreadd");
	assert_int_equal(stat.ppid, 0);
	assert_int_equal(stat.pgid, 0);
	assert_int_equal(stat.start_ticks, 14);
	assert_int_equal(stat.vsize_bytes, 0);
	assert_int_equal(stat.rss_pages, 0);
	free(text);
}

/* The comm "x) S 1 (y" looks like the end of the comm plus fields; only the last ')' ends it. */
static void
stat_recorded_weird_comm(void **state)
{
	(void)state;
	char *text = read_fixture("stat-weird-comm", NULL);
	struct metrics_stat stat;
	assert_int_equal(metrics_parse_stat(text, &stat), 0);
	assert_int_equal(stat.pid, 5207);
	assert_string_equal(stat.comm, "x) S 1 (y");
	assert_int_equal(stat.state, 'S');
	assert_int_equal(stat.ppid, 5166);
	assert_int_equal(stat.pgid, 5164);
	assert_int_equal(stat.minor_faults, 294);
	assert_int_equal(stat.start_ticks, 35677);
	assert_int_equal(stat.vsize_bytes, 16965632);
	assert_int_equal(stat.rss_pages, 2603);
	free(text);
}

static void
stat_comm_with_spaces_and_parens(void **state)
{
	(void)state;
	char *sleep = read_fixture("stat-sleep", NULL);
	char *text = replace(sleep, "(sleep)", "(my (weird) prog)");
	struct metrics_stat stat;
	assert_int_equal(metrics_parse_stat(text, &stat), 0);
	assert_string_equal(stat.comm, "my (weird) prog");
	assert_int_equal(stat.state, 'S');
	assert_int_equal(stat.ppid, 4659);
	assert_int_equal(stat.rss_pages, 394);
	free(text);

	/* Empty, and longer than the struct holds (a fixture, not the kernel): cut, not overrun. */
	text = replace(sleep, "(sleep)", "()");
	assert_int_equal(metrics_parse_stat(text, &stat), 0);
	assert_string_equal(stat.comm, "");
	assert_int_equal(stat.vsize_bytes, 2990080);
	free(text);
	char long_comm[200];
	memset(long_comm, 'c', sizeof(long_comm));
	long_comm[0] = '(';
	long_comm[sizeof(long_comm) - 2] = ')';
	long_comm[sizeof(long_comm) - 1] = '\0';
	text = replace(sleep, "(sleep)", long_comm);
	assert_int_equal(metrics_parse_stat(text, &stat), 0);
	assert_int_equal(strlen(stat.comm), sizeof(stat.comm) - 1);
	assert_int_equal(stat.rss_pages, 394);
	free(text);
	free(sleep);
}

/* Real-time priorities and nice values are negative; a terminal gives a tty and a tpgid. */
static void
stat_signed_fields(void **state)
{
	(void)state;
	const char *text = "77 (rt) S 1 77 77 34816 77 4194560 10 0 2 0 30 40 0 0 -51 -20 2 0 "
			   "500 8192 3\n";
	struct metrics_stat stat;
	assert_int_equal(metrics_parse_stat(text, &stat), 0);
	assert_int_equal(stat.minor_faults, 10);
	assert_int_equal(stat.major_faults, 2);
	assert_int_equal(stat.utime_ticks, 30);
	assert_int_equal(stat.stime_ticks, 40);
	assert_int_equal(stat.num_threads, 2);
	assert_int_equal(stat.start_ticks, 500);
	assert_int_equal(stat.vsize_bytes, 8192);
	assert_int_equal(stat.rss_pages, 3);
}

static void
stat_largest_values(void **state)
{
	(void)state;
	const char *text = "2147483647 (big) R 2147483647 2147483647 0 0 -1 0 "
			   "18446744073709551615 0 0 0 18446744073709551615 0 0 0 20 0 1 0 "
			   "18446744073709551615 18446744073709551615 18446744073709551615";
	struct metrics_stat stat;
	assert_int_equal(metrics_parse_stat(text, &stat), 0);
	assert_int_equal(stat.pid, INT_MAX);
	assert_int_equal(stat.ppid, INT_MAX);
	assert_true(stat.minor_faults == UINT64_MAX);
	assert_true(stat.utime_ticks == UINT64_MAX);
	assert_true(stat.start_ticks == UINT64_MAX);
	assert_true(stat.vsize_bytes == UINT64_MAX);
	assert_true(stat.rss_pages == UINT64_MAX);
}

static void
assert_stat_invalid(const char *text)
{
	struct metrics_stat stat, untouched;
	memset(&stat, 0xa5, sizeof(stat));
	memcpy(&untouched, &stat, sizeof(stat));
	if (metrics_parse_stat(text, &stat) != -EINVAL)
		fail_msg("accepted: \"%s\"", text);
	/* ret_* is never clobbered on failure. */
	assert_memory_equal(&stat, &untouched, sizeof(stat));
}

static void
stat_truncated(void **state)
{
	(void)state;
	char *text = read_fixture("stat-sleep", NULL);
	/* Cut before each of the first 24 fields' ends: each cut loses a field we need. The cut
	 * after the rss digits ("394") is fine, one inside them is only a smaller number. */
	const char *rss = strstr(text, " 394 ");
	assert_non_null(rss);
	size_t needed = (size_t)(rss - text) + 1;
	for (size_t length = 0; length < needed; length++) {
		char *cut = strndup(text, length);
		assert_non_null(cut);
		assert_stat_invalid(cut);
		free(cut);
	}
	char *cut = strndup(text, needed + 3);
	struct metrics_stat stat;
	assert_int_equal(metrics_parse_stat(cut, &stat), 0);
	assert_int_equal(stat.rss_pages, 394);
	free(cut);
	free(text);
}

static void
stat_garbled(void **state)
{
	(void)state;
	struct metrics_stat stat;
	assert_int_equal(
	    metrics_parse_stat("4 (sleep) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 6 7", &stat),
	    0);
	assert_int_equal(stat.rss_pages, 7);
	assert_stat_invalid("");
	assert_stat_invalid("\n");
	assert_stat_invalid("garbage");
	assert_stat_invalid("(sleep) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 6 7"); /* no pid */
	assert_stat_invalid("-4 (sleep) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 6 7"); /* sign */
	assert_stat_invalid("4 sleep S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 6 7");	 /* no () */
	assert_stat_invalid("4 (sleep S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 6 7");	 /* no ) */
	assert_stat_invalid("4 sleep) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 6 7");	 /* no ( */
	assert_stat_invalid("4 )sleep( S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 6 7");	 /* ) ( */
	assert_stat_invalid("4 (sleep)S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 6 7");	 /* no sp */
	assert_stat_invalid("4 (sleep) 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 6 7");	 /* state */
	assert_stat_invalid("4 (sleep) S -1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 6 7"); /* ppid */
	assert_stat_invalid("4 (sleep) S 1 2 3 0 -1 0 x 0 0 0 0 0 0 0 20 0 1 0 5 6 7"); /* minflt */
	assert_stat_invalid("4 (sleep) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 6 x"); /* rss */
	assert_stat_invalid("4 (sleep) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 -6 7"); /* vsize */
	assert_stat_invalid("4 (sleep) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 6");	 /* short */
	assert_stat_invalid("4 (sleep) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 6 \n7"); /* \n */
}

static void
stat_overflow(void **state)
{
	(void)state;
	/* pid_t is an int. */
	assert_stat_invalid("2147483648 (a) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 6 7");
	assert_stat_invalid("4 (a) S 2147483648 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 6 7");
	assert_stat_invalid("4 (a) S 1 99999999999 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 6 7");
	/* UINT64_MAX + 1, and far beyond. */
	assert_stat_invalid(
	    "4 (a) S 1 2 3 0 -1 0 18446744073709551616 0 0 0 0 0 0 0 20 0 1 0 5 6 7");
	assert_stat_invalid(
	    "4 (a) S 1 2 3 0 -1 0 0 0 0 0 18446744073709551620 0 0 0 20 0 1 0 5 6 7");
	assert_stat_invalid(
	    "4 (a) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 99999999999999999999999 7");
	assert_stat_invalid(
	    "4 (a) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 6 184467440737095516150");
	/* Skipped fields are checked too. */
	assert_stat_invalid(
	    "4 (a) S 1 2 3 0 -18446744073709551616 0 0 0 0 0 0 0 0 0 20 0 1 0 5 6 7");
}

/* ---- metrics_parse_smaps_rollup ---- */

static void
smaps_recorded(void **state)
{
	(void)state;
	char *text = read_fixture("smaps_rollup-cat", NULL);
	struct metrics_memory memory;
	assert_int_equal(metrics_parse_smaps_rollup(text, &memory), 0);
	assert_int_equal(memory.resident_size, 1620 * 1024);
	assert_int_equal(memory.proportional_size, 409 * 1024); /* not Pss_Dirty etc. */
	assert_int_equal(memory.shared_clean_size, 1452 * 1024);
	assert_int_equal(memory.shared_dirty_size, 0);
	assert_int_equal(memory.private_clean_size, 56 * 1024);
	assert_int_equal(memory.private_dirty_size, 112 * 1024);
	assert_int_equal(memory.referenced_size, 1620 * 1024);
	assert_int_equal(memory.anonymous_size, 112 * 1024);
	assert_int_equal(memory.swap_size, 0);
	assert_int_equal(memory.proportional_swap_size, 0);
	assert_int_equal(memory.unique_size, (56 + 112) * 1024);
	free(text);

	text = read_fixture("smaps_rollup-sleep", NULL);
	assert_int_equal(metrics_parse_smaps_rollup(text, &memory), 0);
	assert_int_equal(memory.resident_size, 1748 * 1024);
	assert_int_equal(memory.proportional_size, 336 * 1024);
	assert_int_equal(memory.private_clean_size, 0);
	assert_int_equal(memory.unique_size, 108 * 1024);
	free(text);
}

/* Swap and SwapPss, Pss and Pss_*, Anonymous and AnonHugePages must not be taken for each
 * other, wherever they come in the file. */
static void
smaps_similar_keys(void **state)
{
	(void)state;
	char *recorded = read_fixture("smaps_rollup-cat", NULL);
	char *a = replace(recorded, "Swap:                  0 kB", "Swap:                  8 kB");
	char *b = replace(a, "SwapPss:               0 kB", "SwapPss:               4 kB");
	char *c = replace(b, "AnonHugePages:         0 kB", "AnonHugePages:      2048 kB");
	struct metrics_memory memory;
	assert_int_equal(metrics_parse_smaps_rollup(c, &memory), 0);
	assert_int_equal(memory.swap_size, 8 * 1024);
	assert_int_equal(memory.proportional_swap_size, 4 * 1024);
	assert_int_equal(memory.anonymous_size, 112 * 1024);
	assert_int_equal(memory.proportional_size, 409 * 1024);
	free(a);
	free(b);
	free(c);
	free(recorded);

	/* Keys in another order, and without the header line or a final newline. */
	const char *reordered = "SwapPss: 1 kB\nPss_Anon: 7 kB\nPss: 3 kB\nSwap: 2 kB\nRss: 5 kB";
	assert_int_equal(metrics_parse_smaps_rollup(reordered, &memory), 0);
	assert_int_equal(memory.resident_size, 5 * 1024);
	assert_int_equal(memory.proportional_size, 3 * 1024);
	assert_int_equal(memory.swap_size, 2 * 1024);
	assert_int_equal(memory.proportional_swap_size, 1 * 1024);
	assert_int_equal(memory.private_clean_size, 0);
	assert_int_equal(memory.unique_size, 0);
}

static void
assert_smaps_invalid(const char *text)
{
	struct metrics_memory memory, untouched;
	memset(&memory, 0xa5, sizeof(memory));
	memcpy(&untouched, &memory, sizeof(memory));
	if (metrics_parse_smaps_rollup(text, &memory) != -EINVAL)
		fail_msg("accepted: \"%s\"", text);
	assert_memory_equal(&memory, &untouched, sizeof(memory));
}

static void
smaps_missing_or_garbage(void **state)
{
	(void)state;
	char *recorded = read_fixture("smaps_rollup-cat", NULL);
	char *no_rss = replace(recorded, "Rss:                1620 kB\n", "");
	char *no_pss = replace(recorded, "Pss:                 409 kB\n", "");
	assert_smaps_invalid(no_rss);
	assert_smaps_invalid(no_pss); /* Pss_Anon, Pss_File etc. are not Pss */
	char *bad_number =
	    replace(recorded, "Private_Dirty:       112 kB", "Private_Dirty:       x kB");
	assert_smaps_invalid(bad_number);
	char *negative = replace(recorded, "Shared_Clean:       1452", "Shared_Clean:      -1452");
	assert_smaps_invalid(negative);
	free(no_rss);
	free(no_pss);
	free(bad_number);
	free(negative);
	free(recorded);

	assert_smaps_invalid(""); /* a zombie's or kernel thread's rollup is empty */
	assert_smaps_invalid("\n\n");
	assert_smaps_invalid("garbage\nmore garbage");
	assert_smaps_invalid("Rss: 4 kB\n");
	assert_smaps_invalid("Pss: 4 kB\n");
	assert_smaps_invalid("Rss:\nPss: 4 kB\n");
	assert_smaps_invalid("Rss: kB\nPss: 4 kB\n");
	/* A key name alone (the kernel writes a space after the colon). */
	assert_smaps_invalid("Rss:");
	/* kB that overflow bytes: UINT64_MAX / 1024 + 1, and UINT64_MAX + 1. */
	assert_smaps_invalid("Rss: 18014398509481984 kB\nPss: 1 kB\n");
	assert_smaps_invalid("Rss: 1 kB\nPss: 18446744073709551616 kB\n");

	struct metrics_memory memory;
	assert_int_equal(
	    metrics_parse_smaps_rollup("Rss: 18014398509481983 kB\nPss: 0 kB\n", &memory), 0);
	assert_true(memory.resident_size == UINT64_C(18014398509481983) * 1024);
}

/* ---- metrics_parse_children ---- */

struct pids {
	pid_t pid[16];
	int count;
	int fail_at; /* add returns -ENOMEM for this index; -1 for never */
};

static int
add_pid(pid_t pid, void *data)
{
	struct pids *pids = data;
	if (pids->count == pids->fail_at)
		return -ENOMEM;
	assert_true(pids->count < 16);
	pids->pid[pids->count++] = pid;
	return 0;
}

static void
children_recorded(void **state)
{
	(void)state;
	char *text = read_fixture("children-python", NULL);
	struct pids pids = {.fail_at = -1};
	assert_int_equal(metrics_parse_children(text, add_pid, &pids), 3);
	assert_int_equal(pids.count, 3);
	assert_int_equal(pids.pid[0], 4752);
	assert_int_equal(pids.pid[1], 4753);
	assert_int_equal(pids.pid[2], 4754);
	free(text);
}

static void
children_forms(void **state)
{
	(void)state;
	struct pids pids = {.fail_at = -1};
	assert_int_equal(metrics_parse_children("", add_pid, &pids), 0);
	assert_int_equal(metrics_parse_children(" ", add_pid, &pids), 0);
	assert_int_equal(metrics_parse_children("\n", add_pid, &pids), 0);
	assert_int_equal(pids.count, 0);

	assert_int_equal(metrics_parse_children("42", add_pid, &pids), 1);
	assert_int_equal(pids.pid[0], 42);
	pids.count = 0;
	assert_int_equal(metrics_parse_children("1 2 3 \n", add_pid, &pids), 3);
	assert_int_equal(pids.pid[2], 3);
	pids.count = 0;
	assert_int_equal(metrics_parse_children("  7  8\n9\n\n", add_pid, &pids), 3);
	assert_int_equal(pids.pid[0], 7);
	assert_int_equal(pids.pid[2], 9);
	pids.count = 0;
	assert_int_equal(metrics_parse_children("2147483647 ", add_pid, &pids), 1);
	assert_int_equal(pids.pid[0], INT_MAX);
}

static void
children_garbage(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "x",   "12 x", "12x", "-5", "0", "1 0 2", "2147483648", "99999999999999999999999",
	    "1,2", "1\t2", "+3",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct pids pids = {.fail_at = -1};
		if (metrics_parse_children(bad[i], add_pid, &pids) != -EINVAL)
			fail_msg("accepted: \"%s\"", bad[i]);
	}
	/* The callback's error stops the parse and is returned as it is. */
	struct pids pids = {.fail_at = 1};
	assert_int_equal(metrics_parse_children("5 6 7", add_pid, &pids), -ENOMEM);
	assert_int_equal(pids.count, 1);
}

/* ---- metrics_command_from_cmdline ---- */

static void
assert_command(const char *cmdline, size_t length, const char *comm, char state,
	       const char *expected)
{
	char *command = metrics_command_from_cmdline(cmdline, length, comm, state);
	assert_non_null(command);
	assert_string_equal(command, expected);
	free(command);
}

static void
command_recorded(void **state)
{
	(void)state;
	size_t length;
	char *cmdline = read_fixture("cmdline-python", &length);
	assert_int_equal(length, 68);
	/* What `ps -ww -o args=` printed for the same process. */
	assert_command(cmdline, length, "python3", 'S',
		       "python3 -c import time; time.sleep(30) an arg with spaces  tab?here");
	free(cmdline);
}

static void
command_forms(void **state)
{
	(void)state;
	assert_command("sleep\0"
		       "30",
		       8, "sleep", 'S', "sleep 30");
	assert_command("sh\0-c\0sleep 30 # an arg with spaces\0", 36, "sh", 'S',
		       "sh -c sleep 30 # an arg with spaces");
	/* Trailing NULs, as a process that shortened its argv in place leaves them. */
	assert_command("nginx: worker\0\0\0\0\0", 18, "nginx", 'S', "nginx: worker");
	assert_command("a\0\0b\0", 5, "a", 'R', "a  b");
	/* Empty: a kernel thread, a zombie, or a cmdline we could not read. */
	assert_command("", 0, "kthreadd", 'S', "[kthreadd]");
	assert_command("\0\0", 2, "kworker/0:1", 'I', "[kworker/0:1]");
	assert_command("", 0, "sleep", 'Z', "[sleep] <defunct>");
	assert_command("", 0, "my (weird) prog", 'Z', "[my (weird) prog] <defunct>");
	/* A zombie's argv is gone; a non-empty one wins whatever the state says. */
	assert_command("sleep\0"
		       "1",
		       7, "sleep", 'Z', "sleep 1");
	/* Control characters become '?', as in ps; bytes above ASCII are left as they are. */
	assert_command("echo\0a\tb\nc\x7f\x1b[0m\0", 16, "echo", 'S', "echo a?b?c??[0m");
	assert_command("caf\xc3\xa9", 5, "x", 'S', "caf\xc3\xa9");
	/* length, not the NULs, bounds what is read. */
	assert_command("ab\0cd", 2, "x", 'S', "ab");
}

/* ---- metrics_capture ---- */

static double
boottime_seconds(void)
{
	struct timespec now;
	assert_int_equal(clock_gettime(CLOCK_BOOTTIME, &now), 0);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static void
check_self(enum metrics_walk walk)
{
	struct metrics_tree tree;
	double before = boottime_seconds();
	assert_int_equal(metrics_capture(getpid(), walk, &tree), 0);
	double after = boottime_seconds();
	assert_int_equal(tree.count, 1);
	const struct metrics_process *p = &tree.processes[0];
	assert_int_equal(p->pid, getpid());
	assert_int_equal(p->ppid, getppid());
	assert_int_equal(p->pgid, getpgrp());
	assert_int_equal(p->depth, 0);
	assert_non_null(p->command);
	assert_non_null(strstr(p->command, "test_metrics"));
	assert_true(p->has_memory);
	assert_true(p->resident_size > 0);
	assert_true(p->resident_size == p->memory.resident_size);
	assert_true(p->resident_size % 1024 == 0);
	assert_true(p->virtual_size >= p->resident_size);
	assert_true(p->memory.proportional_size > 0);
	assert_true(p->memory.proportional_size <= p->memory.resident_size);
	assert_true(p->memory.unique_size ==
		    p->memory.private_clean_size + p->memory.private_dirty_size);
	assert_true(p->memory.unique_size <= p->memory.resident_size);
	assert_true(p->memory.anonymous_size > 0);
	assert_true(p->minor_faults > 0);
	assert_true(p->start_ticks > 0);
	/* Elapsed time is counted up to one instant of the capture (its start, as it happens);
	 * the start time is in ticks, cut down to a tick, which can only add to it. CPU time is
	 * read later, so it is bounded by the end of the capture: on a busy machine and with the
	 * scan walk, a young process can show more CPU time than elapsed time. */
	double ticks = (double)sysconf(_SC_CLK_TCK);
	double started = (double)p->start_ticks / ticks;
	if (p->elapsed_time < before - started - 0.001 ||
	    p->elapsed_time > after - started + 1 / ticks + 0.001)
		fail_msg("elapsed_time %.3f s, not within [%.3f, %.3f] s", p->elapsed_time,
			 before - started, after - started);
	/* One thread can't have run longer than it has existed (up to a tick). */
	if (p->processor_time < 0 || p->processor_time > after - started + 1 / ticks)
		fail_msg("processor_time %.3f s, but %.3f s since the start", p->processor_time,
			 after - started);
	assert_true(p->processor_utilization >= 0);
	if (p->elapsed_time > 0 &&
	    fabs(p->processor_utilization - p->processor_time / p->elapsed_time * 100) > 1e-9)
		fail_msg("processor_utilization %f", p->processor_utilization);
	metrics_tree_free(&tree);
	assert_null(tree.processes);
	assert_int_equal(tree.count, 0);
}

static void
capture_self_children_walk(void **state)
{
	(void)state;
	check_self(METRICS_WALK_CHILDREN);
}

static void
capture_self_scan_walk(void **state)
{
	(void)state;
	check_self(METRICS_WALK_SCAN);
}

/* A family for this process: a child forked by the main thread, one forked by a second thread
 * (the children file lists it under that thread's task only), and a zombie. */
struct family {
	int hold[2];	   /* the children block reading this until its write end is closed */
	int thread_out[2]; /* the thread writes its child's pid here, then waits on hold */
	pthread_t thread;
	pid_t main_child, thread_child, zombie;
};

static pid_t
fork_blocked_child(int hold_read, int hold_write)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char c;
		close(hold_write);
		_exit(read(hold_read, &c, 1) == 0 ? 0 : 1);
	}
	return pid;
}

static void *
family_thread(void *data)
{
	struct family *family = data;
	pid_t pid = fork_blocked_child(family->hold[0], family->hold[1]);
	if (write(family->thread_out[1], &pid, sizeof(pid)) != sizeof(pid))
		abort();
	/* Stay alive while the capture runs: the child hangs off this task. */
	char c;
	(void)read(family->hold[0], &c, 1);
	return NULL;
}

static void
family_start(struct family *family)
{
	assert_int_equal(pipe2(family->hold, O_CLOEXEC), 0);
	assert_int_equal(pipe2(family->thread_out, O_CLOEXEC), 0);
	family->main_child = fork_blocked_child(family->hold[0], family->hold[1]);
	assert_int_equal(pthread_create(&family->thread, NULL, family_thread, family), 0);
	assert_int_equal(read(family->thread_out[0], &family->thread_child, sizeof(pid_t)),
			 sizeof(pid_t));
	family->zombie = fork();
	assert_true(family->zombie >= 0);
	if (family->zombie == 0)
		_exit(0);
	/* Wait until it is a zombie, without reaping it. */
	siginfo_t info;
	assert_int_equal(waitid(P_PID, (id_t)family->zombie, &info, WEXITED | WNOWAIT), 0);
}

static void
family_stop(struct family *family)
{
	close(family->hold[1]);
	assert_int_equal(pthread_join(family->thread, NULL), 0);
	const pid_t pids[] = {family->main_child, family->thread_child, family->zombie};
	for (size_t i = 0; i < 3; i++) {
		int status;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	close(family->hold[0]);
	close(family->thread_out[0]);
	close(family->thread_out[1]);
}

static const struct metrics_process *
find_process(const struct metrics_tree *tree, pid_t pid)
{
	for (size_t i = 0; i < tree->count; i++)
		if (tree->processes[i].pid == pid)
			return &tree->processes[i];
	fail_msg("pid %d is not in the capture", (int)pid);
	return NULL;
}

static void
check_family(const struct family *family, enum metrics_walk walk)
{
	struct metrics_tree tree;
	assert_int_equal(metrics_capture(getpid(), walk, &tree), 0);
	assert_int_equal(tree.count, 4);
	assert_int_equal(tree.processes[0].pid, getpid());
	assert_int_equal(tree.processes[0].depth, 0);
	const pid_t children[] = {family->main_child, family->thread_child, family->zombie};
	for (size_t i = 0; i < 3; i++) {
		const struct metrics_process *p = find_process(&tree, children[i]);
		assert_int_equal(p->ppid, getpid());
		assert_int_equal(p->pgid, getpgrp());
		assert_int_equal(p->depth, 1);
	}
	const struct metrics_process *zombie = find_process(&tree, family->zombie);
	/* The kernel's comm: "test_metrics", or the tool's under valgrind. */
	char comm[32], defunct[64];
	FILE *file = fopen("/proc/self/comm", "r");
	assert_non_null(file);
	assert_non_null(fgets(comm, sizeof(comm), file));
	fclose(file);
	comm[strcspn(comm, "\n")] = '\0';
	snprintf(defunct, sizeof(defunct), "[%s] <defunct>", comm);
	assert_string_equal(zombie->command, defunct);
	assert_false(zombie->has_memory);
	assert_int_equal(zombie->virtual_size, 0);
	assert_int_equal(zombie->resident_size, 0);
	const struct metrics_process *child = find_process(&tree, family->thread_child);
	assert_true(child->has_memory);
	assert_non_null(strstr(child->command, "test_metrics")); /* forked, not exec'd */
	metrics_tree_free(&tree);
}

static void
capture_family(void **state)
{
	(void)state;
	struct family family;
	family_start(&family);
	check_family(&family, METRICS_WALK_CHILDREN);
	check_family(&family, METRICS_WALK_SCAN);
	family_stop(&family);
}

/* Another user (here nobody) gets EACCES for this process's smaps_rollup: memory is null, and
 * resident_size is statm's count, the one ps shows, not stat's approximate rss field. The
 * capture runs in a child that drops to nobody while this process waits, so nothing moves. */
static const char *const nobody_failures[] = {
    NULL,
    "setresuid to nobody failed",
    "metrics_capture failed",
    "cannot read statm",
    "the root is not this process or has memory",
    "resident_size is not statm's resident count",
};

static int
capture_as_nobody(pid_t root)
{
	if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
		return 1;
	struct metrics_tree tree;
	if (metrics_capture(root, METRICS_WALK_CHILDREN, &tree) < 0)
		return 2;
	const struct metrics_process *p = &tree.processes[0];
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/statm", (int)root);
	FILE *file = fopen(path, "r");
	unsigned long long size, resident;
	if (!file || fscanf(file, "%llu %llu", &size, &resident) != 2)
		return 3;
	fclose(file);
	if (p->pid != root || p->has_memory || !strstr(p->command, "test_metrics"))
		return 4;
	if (p->resident_size != resident * (uint64_t)sysconf(_SC_PAGESIZE))
		return 5;
	metrics_tree_free(&tree);
	return 0;
}

static void
capture_without_rollup(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	pid_t root = getpid();
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0)
		_exit(capture_as_nobody(root));
	int status;
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) != 0)
		fail_msg("as nobody: %s",
			 WEXITSTATUS(status) < 6 ? nobody_failures[WEXITSTATUS(status)] : "?");
}

static void
capture_missing_pid(void **state)
{
	(void)state;
	/* pid_max itself is never a pid: they run from 1 to pid_max - 1. */
	FILE *file = fopen("/proc/sys/kernel/pid_max", "r");
	assert_non_null(file);
	int pid_max = 0;
	assert_int_equal(fscanf(file, "%d", &pid_max), 1);
	fclose(file);
	const pid_t missing[] = {pid_max, INT_MAX};
	for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
		struct metrics_tree tree = {.count = 12345};
		assert_int_equal(metrics_capture(missing[i], METRICS_WALK_CHILDREN, &tree), -ESRCH);
		assert_int_equal(tree.count, 12345); /* not clobbered */
		assert_int_equal(metrics_capture(missing[i], METRICS_WALK_SCAN, &tree), -ESRCH);
		assert_int_equal(tree.count, 12345);
	}
}

/* Seen during chaos: a process being reaped, pgid and session -1 (state X). */
static void
test_stat_of_a_process_being_reaped(void **state)
{
	(void)state;
	struct metrics_stat stat;
	const char *line =
	    "23276 (http_worker) X 0 -1 -1 0 -1 4194572 152 0 0 0 0 0 0 0 20 0 1 0 "
	    "6578612 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
	assert_int_equal(metrics_parse_stat(line, &stat), 0);
	assert_int_equal(stat.state, 'X');
	assert_int_equal(stat.pgid, -1);
	assert_int_equal(stat.ppid, 0);
	/* "-12" is not the kernel's -1 for "none": still garbage. */
	assert_int_equal(
	    metrics_parse_stat("1 (a) S 0 -12 0 0 0 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0", &stat),
	    -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stat_of_a_process_being_reaped),
	    cmocka_unit_test(stat_recorded_sleep),
	    cmocka_unit_test(stat_recorded_threads),
	    cmocka_unit_test(stat_recorded_zombie),
	    cmocka_unit_test(stat_recorded_kernel_thread),
	    cmocka_unit_test(stat_recorded_weird_comm),
	    cmocka_unit_test(stat_comm_with_spaces_and_parens),
	    cmocka_unit_test(stat_signed_fields),
	    cmocka_unit_test(stat_largest_values),
	    cmocka_unit_test(stat_truncated),
	    cmocka_unit_test(stat_garbled),
	    cmocka_unit_test(stat_overflow),
	    cmocka_unit_test(smaps_recorded),
	    cmocka_unit_test(smaps_similar_keys),
	    cmocka_unit_test(smaps_missing_or_garbage),
	    cmocka_unit_test(children_recorded),
	    cmocka_unit_test(children_forms),
	    cmocka_unit_test(children_garbage),
	    cmocka_unit_test(command_recorded),
	    cmocka_unit_test(command_forms),
	    cmocka_unit_test(capture_self_children_walk),
	    cmocka_unit_test(capture_self_scan_walk),
	    cmocka_unit_test(capture_family),
	    cmocka_unit_test(capture_without_rollup),
	    cmocka_unit_test(capture_missing_pid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
