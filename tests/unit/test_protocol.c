/* Unit tests of protocol.c and commands.c: request parsing, error replies, and the command
 * table the parser reads. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <signal.h>

#include "lib/protocol.h"

/* Parses text; returns the error code string, or NULL if it parsed. */
static const char *
error_code(const char *text, size_t length, struct protocol_request *request)
{
	static char code[64];
	json_t *error = NULL;
	int r = protocol_parse(text, length, request, &error);
	if (r == 0) {
		assert_null(error);
		return NULL;
	}
	assert_int_equal(r, -EINVAL);
	assert_non_null(error);
	const char *value =
	    json_string_value(json_object_get(json_object_get(error, "error"), "code"));
	const char *message =
	    json_string_value(json_object_get(json_object_get(error, "error"), "message"));
	assert_non_null(value);
	assert_non_null(message);
	assert_true(strlen(message) > 0);
	snprintf(code, sizeof(code), "%s", value);
	json_decref(error);
	return code;
}

#define PARSE(text, request) error_code(text, strlen(text), request)

static void
test_commands(void **state)
{
	(void)state;
	struct protocol_request request;
	assert_null(PARSE("{\"please\":\"metrics\"}", &request));
	assert_int_equal(request.command, COMMAND_METRICS);
	assert_null(PARSE("{\"please\":\"status\"}", &request));
	assert_int_equal(request.command, COMMAND_STATUS);
	assert_null(PARSE(" {\"please\" : \"restart\"} ", &request));
	assert_int_equal(request.command, COMMAND_RESTART);
	assert_string_equal(request.service, "");
	assert_int_equal(request.signal, 0);
	assert_null(PARSE("{\"please\":\"restart\",\"service\":\"web\"}", &request));
	assert_string_equal(request.service, "web");
	assert_null(PARSE("{\"please\":\"metrics\",\"format\":\"json\"}", &request));
	assert_false(request.prometheus);
	assert_null(PARSE("{\"please\":\"metrics\",\"format\":\"prometheus\"}", &request));
	assert_true(request.prometheus);
	/* Unknown extra keys are tolerated, as Falcon's clients may add some. */
	assert_null(PARSE("{\"please\":\"status\",\"extra\":[1,{\"a\":2}]}", &request));
}

static void
test_signals(void **state)
{
	(void)state;
	struct protocol_request request;
	assert_null(PARSE("{\"please\":\"restart\",\"signal\":\"HUP\"}", &request));
	assert_int_equal(request.signal, SIGHUP);
	assert_string_equal(request.signal_name, "HUP");
	assert_null(PARSE("{\"please\":\"restart\",\"signal\":\"SIGINT\"}", &request));
	assert_int_equal(request.signal, SIGINT);
	assert_null(PARSE("{\"please\":\"restart\",\"signal\":15}", &request));
	assert_int_equal(request.signal, SIGTERM);
	assert_null(PARSE("{\"please\":\"restart\",\"signal\":null}", &request));
	assert_int_equal(request.signal, 0);
	assert_string_equal(PARSE("{\"please\":\"restart\",\"signal\":\"FOO\"}", &request),
			    "unknown_signal");
	assert_string_equal(PARSE("{\"please\":\"restart\",\"signal\":0}", &request),
			    "unknown_signal");
	assert_string_equal(PARSE("{\"please\":\"restart\",\"signal\":[1]}", &request),
			    "unknown_signal");
	/* Signals the host does not handle would kill it: refused. */
	assert_string_equal(PARSE("{\"please\":\"restart\",\"signal\":\"KILL\"}", &request),
			    "signal_not_allowed");
	assert_string_equal(PARSE("{\"please\":\"restart\",\"signal\":\"USR2\"}", &request),
			    "signal_not_allowed");
	assert_string_equal(PARSE("{\"please\":\"restart\",\"signal\":9}", &request),
			    "signal_not_allowed");
	assert_null(PARSE("{\"please\":\"restart\",\"signal\":\"USR1\"}", &request));
	assert_int_equal(request.signal, SIGUSR1);
}

static void
test_errors(void **state)
{
	(void)state;
	struct protocol_request request;
	assert_string_equal(PARSE("{\"please\":\"explode\"}", &request), "unknown_command");
	assert_string_equal(PARSE("not json", &request), "malformed");
	assert_string_equal(PARSE("", &request), "malformed");
	assert_string_equal(PARSE("{\"please\":\"metrics\"} trailing", &request), "malformed");
	assert_string_equal(PARSE("{\"please\":\"\xff\"}", &request), "malformed");
	assert_string_equal(PARSE("{\"please\":\"metrics\",\"please\":\"status\"}", &request),
			    "malformed");
	assert_string_equal(PARSE("[1]", &request), "invalid_request");
	assert_string_equal(PARSE("\"metrics\"", &request), "invalid_request");
	assert_string_equal(PARSE("3", &request), "invalid_request");
	assert_string_equal(PARSE("{}", &request), "invalid_request");
	assert_string_equal(PARSE("{\"please\":1}", &request), "invalid_request");
	assert_string_equal(PARSE("{\"please\":\"restart\",\"service\":\"\"}", &request),
			    "invalid_request");
	assert_string_equal(PARSE("{\"please\":\"restart\",\"service\":5}", &request),
			    "invalid_request");
	assert_string_equal(PARSE("{\"please\":\"metrics\",\"format\":\"xml\"}", &request),
			    "invalid_request");
}

static void
test_nesting(void **state)
{
	(void)state;
	struct protocol_request request;
	size_t depth = 5000;
	char *text = malloc(depth * 2 + 32);
	assert_non_null(text);
	char *p = stpcpy(text, "{\"please\":\"status\",\"x\":");
	for (size_t i = 0; i < depth; i++)
		*p++ = '[';
	for (size_t i = 0; i < depth; i++)
		*p++ = ']';
	strcpy(p, "}");
	assert_string_equal(PARSE(text, &request), "malformed");
	/* Brackets inside strings are not nesting. */
	assert_null(PARSE("{\"please\":\"status\",\"x\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"}",
			  &request));
	free(text);
}

static void
test_size_limit(void **state)
{
	(void)state;
	struct protocol_request request;
	size_t length = PROTOCOL_MAX_REQUEST;
	char *text = malloc(length + 2);
	assert_non_null(text);
	memset(text, ' ', length + 1);
	memcpy(text, "{\"please\":\"status\"}", 19);
	assert_null(error_code(text, length, &request)); /* exactly the limit: accepted */
	assert_string_equal(error_code(text, length + 1, &request), "too_large");
	free(text);
}

static void
test_encode(void **state)
{
	(void)state;
	json_t *reply = protocol_error(PROTOCOL_CODE_UNKNOWN_COMMAND, "unknown command \"x\"");
	char *text;
	ssize_t length = protocol_encode(reply, &text);
	json_decref(reply);
	assert_true(length > 0);
	assert_int_equal(text[length - 1], '\0'); /* the frame's NUL */
	assert_string_equal(text, "{\"error\":{\"code\":\"unknown_command\",\"message\":\"unknown "
				  "command \\\"x\\\"\"}}");
	free(text);
	/* A message that is not UTF-8 still gives a reply with its code. */
	reply = protocol_error(PROTOCOL_CODE_MALFORMED, "bad \xff");
	assert_non_null(reply);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(reply, "error"), "code")),
	    "malformed");
	json_decref(reply);
}

/* Framing: a request ends at its NUL, may arrive in pieces, and can't be longer than the limit. */
static void
test_frame(void **state)
{
	(void)state;
	const char two[] = "{\"please\":\"status\"}\0{\"please\":\"metrics\"}";
	assert_int_equal(protocol_frame(two, sizeof(two) - 1), 19);
	assert_int_equal(protocol_frame(two + 20, sizeof(two) - 21), PROTOCOL_FRAME_MORE);
	assert_int_equal(protocol_frame("", 0), PROTOCOL_FRAME_MORE);
	assert_int_equal(protocol_frame("\0", 1), 0); /* an empty request: parse says malformed */
	char *big = malloc(PROTOCOL_MAX_REQUEST + 1);
	assert_non_null(big);
	memset(big, ' ', PROTOCOL_MAX_REQUEST + 1);
	assert_int_equal(protocol_frame(big, PROTOCOL_MAX_REQUEST), PROTOCOL_FRAME_MORE);
	assert_int_equal(protocol_frame(big, PROTOCOL_MAX_REQUEST + 1), PROTOCOL_FRAME_TOO_LARGE);
	big[PROTOCOL_MAX_REQUEST] = '\0'; /* the NUL just in time: framed, then too_large */
	assert_int_equal(protocol_frame(big, PROTOCOL_MAX_REQUEST + 1), PROTOCOL_MAX_REQUEST);
	free(big);
}

/* The message of the error reply to text, which must be refused with code. */
static void
assert_message(const char *text, const char *code, const char *message)
{
	struct protocol_request request;
	json_t *error = NULL;
	assert_int_equal(protocol_parse(text, strlen(text), &request, &error), -EINVAL);
	json_t *body = json_object_get(error, "error");
	assert_string_equal(json_string_value(json_object_get(body, "code")), code);
	assert_string_equal(json_string_value(json_object_get(body, "message")), message);
	json_decref(error);
}

/* Every entry of the table is the one its enum indexes, is found by its name, and parses into
 * its command; the parser's messages list the table's names as they always read. */
static void
test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < COMMAND_COUNT; i++) {
		const struct command_entry *entry = &command_table[i];
		assert_int_equal(entry->command, i);
		assert_non_null(entry->name);
		assert_non_null(entry->arguments);
		assert_non_null(entry->help);
		assert_ptr_equal(command_find(entry->name), entry);
		assert_true(entry->answerer == COMMAND_BY_SUPERVISOR ||
			    entry->answerer == COMMAND_BY_HOST);
		/* What a command needs besides its name. */
		static const char *const keys[COMMAND_COUNT] = {
		    [COMMAND_STOP] = ",\"service\":\"web\"",
		    [COMMAND_START] = ",\"service\":\"web\"",
		    [COMMAND_SCALE] = ",\"service\":\"web\",\"count\":3",
		    [COMMAND_SIGNAL] = ",\"service\":\"web\",\"signal\":\"USR1\"",
		};
		char text[128];
		snprintf(text, sizeof(text), "{\"please\":\"%s\"%s}", entry->name,
			 keys[i] ? keys[i] : "");
		struct protocol_request request;
		assert_null(PARSE(text, &request));
		assert_int_equal(request.command, entry->command);
	}
	assert_null(command_find("explode"));
	assert_null(command_find(""));
	assert_null(command_find("Status"));
	assert_int_equal(command_table[COMMAND_METRICS].answerer, COMMAND_BY_SUPERVISOR);
	assert_int_equal(command_table[COMMAND_STATUS].answerer, COMMAND_BY_HOST);
	assert_int_equal(command_table[COMMAND_RESTART].answerer, COMMAND_BY_HOST);

	char list[256];
	const char expected[] = "\"metrics\", \"restart\", \"status\", \"reload\", \"stop\", "
				"\"start\", \"scale\", \"signal\" or \"logs\"";
	assert_int_equal(command_list(list, sizeof(list)), strlen(expected));
	assert_string_equal(list, expected);
	assert_int_equal(command_list(list, 5), strlen(expected)); /* cut, as snprintf cuts */
	assert_string_equal(list, "\"met");
	assert_message(
	    "{\"please\":\"explode\"}", "unknown_command",
	    "unknown command \"explode\": expected \"metrics\", \"restart\", "
	    "\"status\", \"reload\", \"stop\", \"start\", \"scale\", \"signal\" or \"logs\"");
	assert_message("{}", "invalid_request",
		       "missing \"please\": expected \"metrics\", \"restart\", \"status\", "
		       "\"reload\", \"stop\", \"start\", \"scale\", \"signal\" or \"logs\"");
}

/* stop, start, scale and signal: their keys, bounds and codes. */
static void
test_service_commands(void **state)
{
	(void)state;
	struct protocol_request request;
	assert_null(PARSE("{\"please\":\"stop\",\"service\":\"web\"}", &request));
	assert_int_equal(request.command, COMMAND_STOP);
	assert_string_equal(request.service, "web");
	assert_message("{\"please\":\"start\"}", "invalid_request",
		       "\"service\" must be the name of a service");
	assert_message("{\"please\":\"stop\",\"service\":\"\"}", "invalid_request",
		       "\"service\" must be the name of a service");

	assert_null(PARSE("{\"please\":\"scale\",\"service\":\"web\",\"count\":0}", &request));
	assert_int_equal(request.count, 0);
	assert_null(PARSE("{\"please\":\"scale\",\"service\":\"web\",\"count\":10000}", &request));
	assert_int_equal(request.count, 10000);
	static const char *const bad_counts[] = {"10001", "-1", "\"3\"", "1.5", "null"};
	for (size_t i = 0; i < sizeof(bad_counts) / sizeof(bad_counts[0]); i++) {
		char text[128];
		snprintf(text, sizeof(text),
			 "{\"please\":\"scale\",\"service\":\"web\",\"count\":%s}", bad_counts[i]);
		assert_message(text, "invalid_count",
			       "\"count\" must be a number of workers from 0 to 10000");
	}

	/* Any signal: it goes to workers, never to the host. */
	assert_null(
	    PARSE("{\"please\":\"signal\",\"service\":\"web\",\"signal\":\"KILL\"}", &request));
	assert_int_equal(request.signal, SIGKILL);
	assert_int_equal(request.worker, -1);
	assert_null(PARSE("{\"please\":\"signal\",\"service\":\"web\",\"signal\":10,"
			  "\"worker\":2}",
			  &request));
	assert_int_equal(request.signal, 10);
	assert_int_equal(request.worker, 2);
	assert_message("{\"please\":\"signal\",\"service\":\"web\",\"signal\":\"NOPE\"}",
		       "unknown_signal", "unknown signal \"NOPE\"");
	assert_message("{\"please\":\"signal\",\"service\":\"web\"}", "unknown_signal",
		       "missing \"signal\" (a name such as \"USR1\" or a number)");
	assert_message("{\"please\":\"signal\",\"service\":\"web\",\"signal\":\"HUP\","
		       "\"worker\":-1}",
		       "unknown_worker", "\"worker\" must be a worker's index, from 0");
	/* restart's signal stays limited to what the host handles. */
	assert_message("{\"please\":\"restart\",\"signal\":\"KILL\"}", "signal_not_allowed",
		       "signal KILL is not one the host handles: use HUP, INT, TERM or USR1");
}

/* Each code has its own name, and one out of range is still a code clients know. */
static void
test_logs(void **state)
{
	(void)state;
	struct protocol_request request;
	assert_null(PARSE("{\"please\":\"logs\"}", &request));
	assert_int_equal(request.command, COMMAND_LOGS);
	assert_string_equal(request.service, "");
	assert_int_equal(request.worker, -1);
	assert_int_equal(request.lines, PROTOCOL_LOGS_ALL);
	assert_false(request.follow);
	assert_null(PARSE("{\"please\":\"logs\",\"service\":\"web\",\"worker\":0,\"lines\":100,"
			  "\"follow\":true}",
			  &request));
	assert_string_equal(request.service, "web");
	assert_int_equal(request.worker, 0);
	assert_int_equal(request.lines, 100);
	assert_true(request.follow);
	/* More lines than any ring keeps: as many as are kept. */
	assert_null(PARSE("{\"please\":\"logs\",\"lines\":99999999999}", &request));
	assert_int_equal(request.lines, CONFIG_MAX_LOG_LINES);
	const char *invalid[] = {
	    "{\"please\":\"logs\",\"worker\":0}", /* a worker needs its service */
	    "{\"please\":\"logs\",\"service\":\"web\",\"worker\":-1}",
	    "{\"please\":\"logs\",\"service\":\"web\",\"worker\":\"0\"}",
	    "{\"please\":\"logs\",\"service\":\"web\",\"worker\":10000}",
	    "{\"please\":\"logs\",\"service\":\"\"}",
	    "{\"please\":\"logs\",\"service\":7}",
	    "{\"please\":\"logs\",\"lines\":-1}",
	    "{\"please\":\"logs\",\"lines\":1.5}",
	    "{\"please\":\"logs\",\"follow\":1}",
	};
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
		assert_string_equal(PARSE(invalid[i], &request), "invalid_request");
}

static void
test_codes(void **state)
{
	(void)state;
	for (int i = 0; i < PROTOCOL_CODE_COUNT; i++) {
		const char *name = protocol_code_name((enum protocol_code)i);
		assert_non_null(name);
		assert_true(strlen(name) > 0);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(name, protocol_code_name((enum protocol_code)j));
	}
	assert_string_equal(protocol_code_name(PROTOCOL_CODE_TOO_LARGE), "too_large");
	assert_string_equal(protocol_code_name(PROTOCOL_CODE_RESTART_FAILED), "restart_failed");
	assert_string_equal(protocol_code_name(PROTOCOL_CODE_COUNT), "internal");
	assert_string_equal(protocol_code_name((enum protocol_code) - 1), "internal");
	size_t length;
	const char *fallback = protocol_out_of_memory(&length);
	assert_int_equal(fallback[length - 1], '\0');
	assert_int_equal(strlen(fallback) + 1, length);
	json_t *reply = json_loads(fallback, 0, NULL);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(reply, "error"), "code")),
	    "internal");
	json_decref(reply);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_commands),   cmocka_unit_test(test_signals),
	    cmocka_unit_test(test_errors),     cmocka_unit_test(test_nesting),
	    cmocka_unit_test(test_size_limit), cmocka_unit_test(test_encode),
	    cmocka_unit_test(test_frame),      cmocka_unit_test(test_table),
	    cmocka_unit_test(test_codes),      cmocka_unit_test(test_service_commands),
	    cmocka_unit_test(test_logs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
