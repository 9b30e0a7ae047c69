/* test_utilization: the host's side (host/utilization.c) against the workers' side
 * (include/aerie_utilization.h): segments taken, written through AERIE_UTILIZATION, read,
 * reset into the totals, the file grown past its first page, a planted link never followed,
 * and the file removed at close. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../include/aerie_utilization.h"
#include "host/utilization.h"

static char directory[] = "/tmp/aerie-utilization-XXXXXX";
static char path[256];

static int
setup(void **state)
{
	(void)state;
	if (!mkdtemp(directory))
		return -1;
	snprintf(path, sizeof(path), "%s/supervisor.ipc.web.utilization", directory);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	(void)unlink(path);
	return rmdir(directory);
}

/* What a worker of segment slot would do with AERIE_UTILIZATION. */
static struct aerie_utilization *
worker_open(size_t slot)
{
	char value[300];
	snprintf(value, sizeof(value), "%s:%zu", path, slot * UTILIZATION_SEGMENT_SIZE);
	assert_int_equal(setenv("AERIE_UTILIZATION", value, 1), 0);
	return aerie_utilization_open();
}

static void
test_worker_writes_host_reads(void **state)
{
	(void)state;
	struct utilization u = {0};
	size_t first, second;
	assert_int_equal(utilization_take(&u, path, &first), 0);
	assert_int_equal(utilization_take(&u, path, &second), 0);
	assert_int_not_equal(first, second);
	struct stat st;
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);

	struct aerie_utilization *w = worker_open(second);
	assert_non_null(w);
	aerie_utilization_add(w, AERIE_REQUESTS_ACTIVE, 3);
	aerie_utilization_add(w, AERIE_REQUESTS_ACTIVE, -1);
	aerie_utilization_add(w, AERIE_REQUESTS_TOTAL, 7);
	aerie_utilization_add(w, AERIE_CONNECTIONS_TOTAL, 2);
	aerie_utilization_add(NULL, AERIE_REQUESTS_TOTAL, 1); /* no segment: nothing */
	struct utilization_counters c;
	utilization_read(&u, second, &c);
	assert_int_equal(c.requests_active, 2);
	assert_int_equal(c.requests_total, 7);
	assert_int_equal(c.connections_total, 2);
	assert_int_equal(c.connections_active, 0);
	utilization_read(&u, first, &c);
	assert_int_equal(c.requests_total, 0); /* the other worker's segment is its own */

	/* The worker is replaced: its totals go to the service's, the segment starts over. */
	utilization_reset(&u, second);
	utilization_read(&u, second, &c);
	assert_int_equal(c.requests_total, 0);
	assert_int_equal(u.retired.requests_total, 7);
	assert_int_equal(u.retired.connections_total, 2);
	aerie_utilization_close(w);

	/* Past the first page: the file grows, earlier segments keep what they hold. */
	w = worker_open(first);
	aerie_utilization_add(w, AERIE_CONNECTIONS_ACTIVE, 5);
	size_t slot = 0;
	for (int i = 0; i < 100; i++)
		assert_int_equal(utilization_take(&u, path, &slot), 0);
	assert_int_equal(slot, 101);
	utilization_read(&u, first, &c);
	assert_int_equal(c.connections_active, 5);
	struct aerie_utilization *far = worker_open(slot);
	assert_non_null(far);
	aerie_utilization_add(far, AERIE_REQUESTS_TOTAL, 1);
	utilization_read(&u, slot, &c);
	assert_int_equal(c.requests_total, 1);
	aerie_utilization_close(far);
	aerie_utilization_close(w);

	/* A released segment is the next one taken, zeroed. */
	utilization_release(&u, first);
	assert_int_equal(utilization_take(&u, path, &slot), 0);
	assert_int_equal(slot, first);
	utilization_read(&u, slot, &c);
	assert_int_equal(c.connections_active, 0);
	utilization_close(&u);
	assert_int_equal(lstat(path, &st), -1);
	assert_int_equal(errno, ENOENT);
}

/* A name planted where the file goes (a link to a file of someone else's) is removed, never
 * followed: the target is untouched. */
static void
test_planted_link_not_followed(void **state)
{
	(void)state;
	char target[300];
	snprintf(target, sizeof(target), "%s/target", directory);
	FILE *file = fopen(target, "w");
	assert_non_null(file);
	fputs("precious", file);
	fclose(file);
	assert_int_equal(symlink(target, path), 0);
	struct utilization u = {0};
	size_t slot;
	assert_int_equal(utilization_take(&u, path, &slot), 0);
	struct stat st;
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(stat(target, &st), 0);
	assert_int_equal(st.st_size, 8);
	utilization_close(&u);
	assert_int_equal(unlink(target), 0);
}

/* Bad values of AERIE_UTILIZATION give no segment, not a crash. */
static void
test_bad_environment(void **state)
{
	(void)state;
	const char *bad[] = {"", "nocolon", ":0", "/nonexistent/file:0", "/tmp:12", "/tmp:x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(setenv("AERIE_UTILIZATION", bad[i], 1), 0);
		assert_null(aerie_utilization_open());
	}
	assert_int_equal(unsetenv("AERIE_UTILIZATION"), 0);
	assert_null(aerie_utilization_open());
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_worker_writes_host_reads),
	    cmocka_unit_test(test_planted_link_not_followed),
	    cmocka_unit_test(test_bad_environment),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
