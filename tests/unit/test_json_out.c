/* Unit tests of json_out.c: the pieces of hand-written replies, checked against jansson's parser.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "lib/json_out.h"

static char *
finish(struct json_out *out)
{
	char *text = NULL;
	ssize_t length = json_out_finish(out, &text);
	assert_true(length >= 0);
	assert_int_equal(strlen(text), (size_t)length);
	return text;
}

static void
test_numbers(void **state)
{
	(void)state;
	struct json_out out = {0};
	json_out_field(&out, "[", 0);
	json_out_raw(&out, ",");
	json_out_int(&out, -42);
	json_out_raw(&out, ",");
	json_out_int(&out, INT64_MIN);
	json_out_raw(&out, ",");
	json_out_seconds(&out, 1795794936.3324435);
	json_out_raw(&out, ",");
	json_out_seconds(&out, -0.25);
	json_out_raw(&out, ",");
	json_out_seconds(&out, 0.0000004);
	json_out_raw(&out, ",");
	json_out_seconds(&out, 1.9999999);
	json_out_raw(&out, ",");
	json_out_seconds(&out, NAN);
	json_out_raw(&out, "]");
	char *text = finish(&out);
	assert_string_equal(text, "[0,-42,-9223372036854775808,1795794936.332444,-0.250000,"
				  "0.000000,2.000000,0.0]");
	json_error_t error;
	json_t *parsed = json_loads(text, 0, &error);
	assert_non_null(parsed);
	assert_true(json_is_real(json_array_get(parsed, 3)));
	json_decref(parsed);
	free(text);
}

static void
test_strings(void **state)
{
	(void)state;
	struct json_out out = {0};
	json_out_raw(&out, "[");
	json_out_string(&out, "plain");
	json_out_raw(&out, ",");
	json_out_string(&out, "quote \" back\\slash \t tab \x7f del");
	json_out_raw(&out, ",");
	/* é, a stray byte, a surrogate, a sequence cut short */
	json_out_string(&out, "caf\xc3\xa9 \xff \xed\xa0\x80 \xe2\x82");
	json_out_raw(&out, "]");
	char *text = finish(&out);
	json_error_t error;
	json_t *parsed = json_loads(text, 0, &error);
	assert_non_null(parsed);
	assert_string_equal(json_string_value(json_array_get(parsed, 0)), "plain");
	assert_string_equal(json_string_value(json_array_get(parsed, 1)),
			    "quote \" back\\slash \t tab \x7f del");
	assert_string_equal(json_string_value(json_array_get(parsed, 2)), "caf\xc3\xa9 ? ??? ??");
	json_decref(parsed);
	free(text);
}

/* A reply bigger than the first buffer grows it; printf pieces and raw pieces mix. */
static void
test_growth(void **state)
{
	(void)state;
	struct json_out out = {0};
	json_out_raw(&out, "[");
	for (int i = 0; i < 100000; i++)
		json_out_printf(&out, "%s%d", i ? "," : "", i);
	json_out_raw(&out, "]");
	char *text = finish(&out);
	json_t *parsed = json_loads(text, 0, NULL);
	assert_non_null(parsed);
	assert_int_equal(json_array_size(parsed), 100000);
	assert_int_equal(json_integer_value(json_array_get(parsed, 99999)), 99999);
	json_decref(parsed);
	free(text);

	/* The text is whole whatever the last piece was: here a string. */
	struct json_out last = {0};
	json_out_string(&last, "ab");
	text = finish(&last);
	assert_string_equal(text, "\"ab\"");
	free(text);

	struct json_out empty = {0};
	text = finish(&empty);
	assert_string_equal(text, "");
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_numbers),
	    cmocka_unit_test(test_strings),
	    cmocka_unit_test(test_growth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
