/* Unit tests of json_out.c: the pieces of hand-written replies, checked against jansson's parser.
 */
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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
	json_out_raw(&out, ",");
	/* C1 controls (CSI, in octal as 2 is a hex digit; NEL; U+009F) escaped; U+00A0 just past
	 * them is not */
	json_out_string(&out, "\302\2332J \xc2\x85 \xc2\x9f \xc2\xa0");
	json_out_raw(&out, "]");
	char *text = finish(&out);
	assert_non_null(strstr(text, "\"\\u009b2J \\u0085 \\u009f \xc2\xa0\""));
	json_error_t error;
	json_t *parsed = json_loads(text, 0, &error);
	assert_non_null(parsed);
	assert_string_equal(json_string_value(json_array_get(parsed, 0)), "plain");
	assert_string_equal(json_string_value(json_array_get(parsed, 1)),
			    "quote \" back\\slash \t tab \x7f del");
	assert_string_equal(json_string_value(json_array_get(parsed, 2)), "caf\xc3\xa9 ? ??? ??");
	assert_string_equal(json_string_value(json_array_get(parsed, 3)),
			    "\302\2332J \xc2\x85 \xc2\x9f \xc2\xa0");
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

/* The cursor's numbers are printf's, byte for byte: integers at their limits, and numbers with
 * decimals where rounding is hard (halves, values next to them, exact binary halves, huge,
 * tiny, negative, -0) as well as 200,000 random ones. */
static void
test_cursor_numbers(void **state)
{
	(void)state;
	char put[JSON_PUT_FIXED_MAX + 1], printed[JSON_PUT_FIXED_MAX + 1];
	const uint64_t unsigned_values[] = {0, 1, 9, 10, 99, 4096, UINT32_MAX, UINT64_MAX};
	for (size_t i = 0; i < sizeof(unsigned_values) / sizeof(*unsigned_values); i++) {
		*json_put_uint(put, unsigned_values[i]) = '\0';
		snprintf(printed, sizeof(printed), "%" PRIu64, unsigned_values[i]);
		assert_string_equal(put, printed);
	}
	const long long signed_values[] = {0, -1, 42, INT64_MIN, INT64_MAX};
	for (size_t i = 0; i < sizeof(signed_values) / sizeof(*signed_values); i++) {
		*json_put_int(put, signed_values[i]) = '\0';
		snprintf(printed, sizeof(printed), "%lld", signed_values[i]);
		assert_string_equal(put, printed);
	}
	const double hard[] = {0.0,	 -0.0,	    0.005,   0.015,	 0.125, 0.375,	   1.005,
			       2.675,	 12.345,    99.995,  99.9949999, 1e-9,	0.4999999, 0.5,
			       123456.5, 1e11 + .5, 0x1p40,  1e15,	 1e300, -1.25,	   -3e-7,
			       37.5,	 61.25,	    90061.5, 4.5};
	srand(19);
	for (size_t i = 0; i < 200000 + sizeof(hard) / sizeof(*hard); i++) {
		double value = i < sizeof(hard) / sizeof(*hard)
				   ? hard[i]
				   : (double)rand() / RAND_MAX * pow(10, rand() % 12 - 3);
		for (int decimals = 0; decimals <= 6; decimals++) {
			*json_put_fixed(put, value, decimals) = '\0';
			snprintf(printed, sizeof(printed), "%.*f", decimals, value);
			if (strcmp(put, printed) != 0)
				fail_msg("%.17g with %d decimals: %s, printf %s", value, decimals,
					 put, printed);
		}
	}
	*json_put_fixed(put, NAN, 2) = '\0';
	assert_string_equal(put, "0.00");
	*json_put_fixed(put, -INFINITY, 3) = '\0';
	assert_string_equal(put, "0.000");

	struct json_out out = {0};
	char *cursor = json_out_begin(&out, 64);
	assert_non_null(cursor);
	cursor = JSON_PUT_RAW(cursor, "[");
	cursor = json_put_fixed(cursor, 1.5, 2);
	cursor = JSON_PUT_RAW(cursor, "]");
	json_out_end(&out, cursor);
	char *text = finish(&out);
	assert_string_equal(text, "[1.50]");
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_numbers),
	    cmocka_unit_test(test_strings),
	    cmocka_unit_test(test_growth),
	    cmocka_unit_test(test_cursor_numbers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
