/* protocol: the supervisor's requests and replies (Falcon-compatible NUL-terminated JSON):
 * names, error codes and limits in one place; pure, so that it can be fuzzed. */
#include "lib/protocol.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/limits.h"
#include "lib/signame.h"

static const char *const code_names[PROTOCOL_CODE_COUNT] = {
    [PROTOCOL_CODE_MALFORMED] = "malformed",
    [PROTOCOL_CODE_TOO_LARGE] = "too_large",
    [PROTOCOL_CODE_INVALID_REQUEST] = "invalid_request",
    [PROTOCOL_CODE_UNKNOWN_COMMAND] = "unknown_command",
    [PROTOCOL_CODE_UNKNOWN_SIGNAL] = "unknown_signal",
    [PROTOCOL_CODE_SIGNAL_NOT_ALLOWED] = "signal_not_allowed",
    [PROTOCOL_CODE_SIGNAL_FAILED] = "signal_failed",
    [PROTOCOL_CODE_METRICS_FAILED] = "metrics_failed",
    [PROTOCOL_CODE_RESTART_FAILED] = "restart_failed",
    [PROTOCOL_CODE_HOST_UNAVAILABLE] = "host_unavailable",
    [PROTOCOL_CODE_PERMISSION_DENIED] = "permission_denied",
    [PROTOCOL_CODE_TOO_MANY_CLIENTS] = "too_many_clients",
    [PROTOCOL_CODE_INTERNAL] = "internal",
    [PROTOCOL_CODE_CONFIG] = "config",
    [PROTOCOL_CODE_UNKNOWN_SERVICE] = "unknown_service",
    [PROTOCOL_CODE_UNKNOWN_WORKER] = "unknown_worker",
    [PROTOCOL_CODE_INVALID_COUNT] = "invalid_count",
    [PROTOCOL_CODE_BUSY] = "busy",
    [PROTOCOL_CODE_START_FAILED] = "start_failed",
    [PROTOCOL_CODE_RELOAD_FAILED] = "reload_failed",
    [PROTOCOL_CODE_STOPPING] = "stopping",
};

const char *
protocol_code_name(enum protocol_code code)
{
	/* Out of range is a bug; the reply still carries a code a client knows. */
	if ((unsigned)code >= PROTOCOL_CODE_COUNT || !code_names[code])
		return code_names[PROTOCOL_CODE_INTERNAL];
	return code_names[code];
}

json_t *
protocol_error(enum protocol_code code, const char *message)
{
	const char *name = protocol_code_name(code);
	json_t *error = json_pack("{s:{s:s,s:s}}", "error", "code", name, "message", message);
	/* A message cut inside a UTF-8 sequence is not a JSON string: keep the code at least. */
	return error ? error : json_pack("{s:{s:s,s:s}}", "error", "code", name, "message", name);
}

const char *
protocol_out_of_memory(size_t *ret_length)
{
	static const char reply[] =
	    "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
	*ret_length = sizeof(reply);
	return reply;
}

ssize_t
protocol_frame(const char *input, size_t length)
{
	const char *end = memchr(input, '\0', length);
	if (end)
		return end - input;
	return length > PROTOCOL_MAX_REQUEST ? PROTOCOL_FRAME_TOO_LARGE : PROTOCOL_FRAME_MORE;
}

static int
fail(json_t **ret_error, enum protocol_code code, const char *message)
{
	*ret_error = protocol_error(code, message);
	return -EINVAL;
}

/* "what: expected" and the table's commands, as in `unknown command "x": expected "metrics",
 * "restart" or "status"`. */
static int
fail_expected(json_t **ret_error, enum protocol_code code, const char *what)
{
	char expected[COMMAND_COUNT * 32];
	(void)command_list(expected, sizeof(expected));
	char message[sizeof(expected) + 128];
	(void)snprintf(message, sizeof(message), "%s: expected %s", what, expected);
	return fail(ret_error, code, message);
}

/* jansson's parser allows 2048 levels; a request needs two, so anything deeper is refused
 * before it is parsed at all. Brackets inside strings are skipped. */
static size_t
nesting_depth(const char *data, size_t length)
{
	size_t depth = 0, deepest = 0;
	bool in_string = false;
	for (size_t i = 0; i < length; i++) {
		char c = data[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '{' || c == '[') {
			if (++depth > deepest)
				deepest = depth;
		} else if ((c == '}' || c == ']') && depth > 0) {
			depth--;
		}
	}
	return deepest;
}

/* "signal" as a name ("HUP", "SIGHUP") or a number, into *ret_signal. */
static int
parse_signal_value(json_t *value, int *ret_signal, json_t **ret_error)
{
	char text[32];
	if (json_is_integer(value))
		snprintf(text, sizeof(text), "%lld", (long long)json_integer_value(value));
	else if (json_is_string(value) && json_string_length(value) < sizeof(text))
		snprintf(text, sizeof(text), "%s", json_string_value(value));
	else
		return fail(ret_error, PROTOCOL_CODE_UNKNOWN_SIGNAL,
			    "\"signal\" must be a signal name such as \"HUP\" or a number");
	int signal = signame_parse(text);
	if (signal < 0) {
		char message[96];
		snprintf(message, sizeof(message), "unknown signal \"%s\"", text);
		return fail(ret_error, PROTOCOL_CODE_UNKNOWN_SIGNAL, message);
	}
	*ret_signal = signal;
	return 0;
}

static int
parse_signal(json_t *value, struct protocol_request *request, json_t **ret_error)
{
	int signal;
	if (parse_signal_value(value, &signal, ret_error) < 0)
		return -EINVAL;
	/* What the host acts on: a stop, a restart, a log reopen. Anything else (KILL, USR2,
	 * SEGV…) would kill the host and orphan its workers, which no client should be able to
	 * do through this socket. */
	if (signal != SIGHUP && signal != SIGINT && signal != SIGTERM && signal != SIGUSR1) {
		char message[96];
		snprintf(message, sizeof(message),
			 "signal %s is not one the host handles: use HUP, INT, TERM or USR1",
			 signame_name(signal));
		return fail(ret_error, PROTOCOL_CODE_SIGNAL_NOT_ALLOWED, message);
	}
	request->signal = signal;
	snprintf(request->signal_name, sizeof(request->signal_name), "%s", signame_name(signal));
	return 0;
}

/* The keys of a metrics request: "format" is "json" (the default) or "prometheus". */
static int
parse_metrics(json_t *root, struct protocol_request *request, json_t **ret_error)
{
	json_t *format = json_object_get(root, "format");
	const char *name = json_string_value(format);
	if (format && (!name || (strcmp(name, "json") != 0 && strcmp(name, "prometheus") != 0)))
		return fail(ret_error, PROTOCOL_CODE_INVALID_REQUEST,
			    "unknown \"format\": expected \"json\" or \"prometheus\"");
	request->prometheus = name && strcmp(name, "prometheus") == 0;
	return 0;
}

/* The keys of a restart request: one "service" or all, and Falcon's "signal". */
static int
parse_restart(json_t *root, struct protocol_request *request, json_t **ret_error)
{
	json_t *service = json_object_get(root, "service");
	json_t *signal = json_object_get(root, "signal");
	if (service && (!json_is_string(service) || json_string_length(service) == 0 ||
			json_string_length(service) > PROTOCOL_MAX_SERVICE))
		return fail(ret_error, PROTOCOL_CODE_INVALID_REQUEST,
			    "\"service\" must be the name of a service");
	if (service)
		snprintf(request->service, sizeof(request->service), "%s",
			 json_string_value(service));
	if (signal && !json_is_null(signal))
		return parse_signal(signal, request, ret_error);
	return 0;
}

/* "service": the name of one service, required. */
static int
parse_one_service(json_t *root, struct protocol_request *request, json_t **ret_error)
{
	json_t *service = json_object_get(root, "service");
	if (!json_is_string(service) || json_string_length(service) == 0 ||
	    json_string_length(service) > PROTOCOL_MAX_SERVICE)
		return fail(ret_error, PROTOCOL_CODE_INVALID_REQUEST,
			    "\"service\" must be the name of a service");
	snprintf(request->service, sizeof(request->service), "%s", json_string_value(service));
	return 0;
}

/* scale: "service" and "count", 0 (stop every worker, as stop does) up to CONFIG_MAX_COUNT. */
static int
parse_scale(json_t *root, struct protocol_request *request, json_t **ret_error)
{
	if (parse_one_service(root, request, ret_error) < 0)
		return -EINVAL;
	json_t *count = json_object_get(root, "count");
	if (!json_is_integer(count) || json_integer_value(count) < 0 ||
	    json_integer_value(count) > CONFIG_MAX_COUNT) {
		char message[96];
		snprintf(message, sizeof(message),
			 "\"count\" must be a number of workers from 0 to %d", CONFIG_MAX_COUNT);
		return fail(ret_error, PROTOCOL_CODE_INVALID_COUNT, message);
	}
	request->count = (unsigned)json_integer_value(count);
	return 0;
}

/* signal: any signal (it goes to workers only), "service" and an optional "worker" index. */
static int
parse_signal_workers(json_t *root, struct protocol_request *request, json_t **ret_error)
{
	if (parse_one_service(root, request, ret_error) < 0)
		return -EINVAL;
	json_t *signal = json_object_get(root, "signal");
	if (!signal)
		return fail(ret_error, PROTOCOL_CODE_UNKNOWN_SIGNAL,
			    "missing \"signal\" (a name such as \"USR1\" or a number)");
	if (parse_signal_value(signal, &request->signal, ret_error) < 0)
		return -EINVAL;
	snprintf(request->signal_name, sizeof(request->signal_name), "%s",
		 signame_name(request->signal));
	json_t *worker = json_object_get(root, "worker");
	if (worker && !json_is_null(worker)) {
		if (!json_is_integer(worker) || json_integer_value(worker) < 0 ||
		    json_integer_value(worker) >= CONFIG_MAX_COUNT)
			return fail(ret_error, PROTOCOL_CODE_UNKNOWN_WORKER,
				    "\"worker\" must be a worker's index, from 0");
		request->worker = (int)json_integer_value(worker);
	}
	return 0;
}

/* The keys of a logs request: "service", "worker" (with a service), "lines", "follow". */
static int
parse_logs(json_t *root, struct protocol_request *request, json_t **ret_error)
{
	json_t *service = json_object_get(root, "service");
	json_t *worker = json_object_get(root, "worker");
	json_t *lines = json_object_get(root, "lines");
	json_t *follow = json_object_get(root, "follow");
	request->worker = -1;
	request->lines = PROTOCOL_LOGS_ALL;
	/* Optional here: without it, every service's lines. */
	if (service && !json_is_null(service) && parse_one_service(root, request, ret_error) < 0)
		return -EINVAL;
	if (worker && !json_is_null(worker)) {
		if (!json_is_integer(worker) || json_integer_value(worker) < 0 ||
		    json_integer_value(worker) >= CONFIG_MAX_COUNT || !request->service[0])
			return fail(ret_error, PROTOCOL_CODE_INVALID_REQUEST,
				    "\"worker\" must be a worker's index, with \"service\"");
		request->worker = (int)json_integer_value(worker);
	}
	if (lines && !json_is_null(lines)) {
		if (!json_is_integer(lines) || json_integer_value(lines) < 0)
			return fail(ret_error, PROTOCOL_CODE_INVALID_REQUEST,
				    "\"lines\" must be a number of lines, 0 or more");
		json_int_t n = json_integer_value(lines);
		request->lines = n > CONFIG_MAX_LOG_LINES ? CONFIG_MAX_LOG_LINES : (unsigned)n;
	}
	if (follow && !json_is_boolean(follow))
		return fail(ret_error, PROTOCOL_CODE_INVALID_REQUEST,
			    "\"follow\" must be true or false");
	request->follow = json_is_true(follow);
	return 0;
}

/* Each command's own keys, read after "please"; a command without keys has none here. */
static int (*const parsers[COMMAND_COUNT])(json_t *root, struct protocol_request *request,
					   json_t **ret_error) = {
    [COMMAND_METRICS] = parse_metrics,	[COMMAND_RESTART] = parse_restart,
    [COMMAND_STOP] = parse_one_service, [COMMAND_START] = parse_one_service,
    [COMMAND_SCALE] = parse_scale,	[COMMAND_SIGNAL] = parse_signal_workers,
    [COMMAND_LOGS] = parse_logs,
};

int
protocol_parse(const char *data, size_t length, struct protocol_request *ret_request,
	       json_t **ret_error)
{
	struct protocol_request request = {.worker = -1};
	if (length > PROTOCOL_MAX_REQUEST)
		return fail(ret_error, PROTOCOL_CODE_TOO_LARGE, "request larger than 65536 bytes");
	if (nesting_depth(data, length) > PROTOCOL_MAX_DEPTH)
		return fail(ret_error, PROTOCOL_CODE_MALFORMED, "JSON nested too deeply");

	json_error_t error;
	json_t *root = json_loadb(data, length, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
	if (!root) {
		char message[256];
		snprintf(message, sizeof(message), "invalid JSON at byte %d: %s", error.position,
			 error.text);
		return fail(ret_error, PROTOCOL_CODE_MALFORMED, message);
	}
	int r = 0;
	json_t *please = json_object_get(root, "please");
	if (!json_is_object(root)) {
		r = fail(ret_error, PROTOCOL_CODE_INVALID_REQUEST,
			 "a request is a JSON object such as {\"please\":\"metrics\"}");
		goto out;
	}
	if (!json_is_string(please)) {
		r = fail_expected(ret_error, PROTOCOL_CODE_INVALID_REQUEST, "missing \"please\"");
		goto out;
	}
	const struct command_entry *entry = command_find(json_string_value(please));
	if (!entry) {
		char what[96];
		(void)snprintf(what, sizeof(what), "unknown command \"%.64s\"",
			       json_string_value(please));
		r = fail_expected(ret_error, PROTOCOL_CODE_UNKNOWN_COMMAND, what);
		goto out;
	}
	request.command = entry->command;
	if (parsers[entry->command]) {
		r = parsers[entry->command](root, &request, ret_error);
		if (r < 0)
			goto out;
	}
	*ret_request = request;
out:
	json_decref(root);
	return r;
}

ssize_t
protocol_encode(const json_t *reply, char **ret_buffer)
{
	char *text = json_dumps(reply, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!text)
		return -ENOMEM;
	/* json_dumps ends the text with a NUL already: that NUL is the frame's terminator. */
	*ret_buffer = text;
	return (ssize_t)strlen(text) + 1;
}
