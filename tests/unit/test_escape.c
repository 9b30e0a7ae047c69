/* test_escape: text for a terminal: C0, DEL, C1 (as UTF-8 and as bytes) and what is not UTF-8
 * become '?', printable UTF-8 stays; JSON keeps its value with DEL and C1 spelled \uXXXX. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "lib/escape.h"

static void
escape_is(const char *text, bool keep_lines, const char *expected)
{
	char *copy = strdup(text);
	assert_non_null(copy);
	assert_string_equal(escape_controls(copy, keep_lines), expected);
	free(copy);

	char *printed = NULL;
	size_t length = 0;
	FILE *out = open_memstream(&printed, &length);
	assert_non_null(out);
	escape_print(out, text);
	assert_int_equal(fclose(out), 0);
	if (!keep_lines)
		assert_string_equal(printed, expected);
	free(printed);
}

static void
test_controls(void **state)
{
	(void)state;
	escape_is("plain text", false, "plain text");
	escape_is("\x1b]0;title\x07\x1b[2Jred\x7f", false, "?]0;title??[2Jred?");
	/* C1 as UTF-8 (U+009B, CSI) and as a single byte, the last C1 and the first that is not. */
	escape_is("a\xc2\x9b"
		  "b\x9b"
		  "c\xc2\x9f"
		  "d\xc2\xa0"
		  "e",
		  false,
		  "a?b?c?d\xc2\xa0"
		  "e");
	escape_is("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xa6", false,
		  "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xa6");
	escape_is("line\nnext\tcell\r", false, "line?next?cell?");
	escape_is("line\nnext\tcell\r", true, "line\nnext\tcell?");
}

static void
test_invalid_utf8(void **state)
{
	(void)state;
	escape_is("\xff\xfe", false, "??");
	escape_is("\xc0\xaf overlong", false, "?? overlong");
	escape_is("\xed\xa0\x80 surrogate", false, "??? surrogate");
	escape_is("\xf4\x90\x80\x80 past U+10FFFF", false, "???? past U+10FFFF");
	escape_is("cut \xe2\x82", false, "cut ??");
	char buffer[6];
	/* A copy cut in the middle of a character shows a '?' for what is left of it. */
	assert_string_equal(escape_copy("abcd\xc3\xa9", buffer, sizeof(buffer)), "abcd?");
	assert_string_equal(escape_copy("a\x1b", buffer, sizeof(buffer)), "a?");
}

static void
test_json(void **state)
{
	(void)state;
	json_t *value = json_pack("{s:s}", "status", "\x1b[2J\x7f\xc2\x9b\xc2\xa0\xc3\xa9");
	assert_non_null(value);
	char *text = json_dumps(value, JSON_COMPACT);
	assert_non_null(text);
	char *printed = NULL;
	size_t length = 0;
	FILE *out = open_memstream(&printed, &length);
	assert_non_null(out);
	assert_int_equal(escape_print_json(out, text), 0);
	assert_int_equal(fclose(out), 0);
	assert_string_equal(printed, "{\"status\":\"\\u001B[2J\\u007F\\u009B\xc2\xa0\xc3\xa9\"}");
	json_t *parsed = json_loads(printed, 0, NULL);
	assert_non_null(parsed);
	assert_true(json_equal(parsed, value));
	json_decref(parsed);
	json_decref(value);
	free(text);
	free(printed);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_controls),
	    cmocka_unit_test(test_invalid_utf8),
	    cmocka_unit_test(test_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
