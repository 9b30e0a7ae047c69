/* test_proc_parse: metrics_parse_statm, the fallback for resident memory where smaps_rollup
 * can't be read (the other parsers are tested in test_metrics.c on recorded samples). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "metrics/proc_parse.h"

static void
statm_forms(void **state)
{
	(void)state;
	uint64_t resident = 0;
	/* As Linux 6.18 writes it for a `sleep`: size resident shared text lib data dt. */
	assert_int_equal(metrics_parse_statm("2042 432 400 4 0 85 0\n", &resident), 0);
	assert_int_equal(resident, 432);
	assert_int_equal(metrics_parse_statm("0 0", &resident), 0);
	assert_int_equal(resident, 0);
	assert_int_equal(metrics_parse_statm("1 18446744073709551615 0", &resident), 0);
	assert_true(resident == UINT64_MAX);
}

static void
statm_garbage(void **state)
{
	(void)state;
	const char *bad[] = {"",       "\n",   "2042", "2042 ",
			     "2042 x", "-1 5", "x 5",  "1 18446744073709551616"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t resident = 7;
		if (metrics_parse_statm(bad[i], &resident) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_int_equal(resident, 7); /* untouched on failure */
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(statm_forms),
	    cmocka_unit_test(statm_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
