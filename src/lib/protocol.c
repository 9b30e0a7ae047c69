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

json_t *
protocol_error(const char *code, const char *message)
{
	json_t *error = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
	/* A message cut inside a UTF-8 sequence is not a JSON string: keep the code at least. */
	return error ? error : json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", code);
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
fail(json_t **ret_error, const char *code, const char *message)
{
	*ret_error = protocol_error(code, message);
	return -EINVAL;
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

static int
parse_signal(json_t *value, struct protocol_request *request, json_t **ret_error)
{
	char text[32];
	if (json_is_integer(value))
		snprintf(text, sizeof(text), "%lld", (long long)json_integer_value(value));
	else if (json_is_string(value) && json_string_length(value) < sizeof(text))
		snprintf(text, sizeof(text), "%s", json_string_value(value));
	else
		return fail(ret_error, "unknown_signal",
			    "\"signal\" must be a signal name such as \"HUP\" or a number");
	int signal = signame_parse(text);
	if (signal < 0) {
		char message[96];
		snprintf(message, sizeof(message), "unknown signal \"%s\"", text);
		return fail(ret_error, "unknown_signal", message);
	}
	/* What the host acts on: a stop, a restart, a log reopen. Anything else (KILL, USR2,
	 * SEGV…) would kill the host and orphan its workers, which no client should be able to
	 * do through this socket. */
	if (signal != SIGHUP && signal != SIGINT && signal != SIGTERM && signal != SIGUSR1) {
		char message[96];
		snprintf(message, sizeof(message),
			 "signal %s is not one the host handles: use HUP, INT, TERM or USR1",
			 signame_name(signal));
		return fail(ret_error, "signal_not_allowed", message);
	}
	request->signal = signal;
	snprintf(request->signal_name, sizeof(request->signal_name), "%s", signame_name(signal));
	return 0;
}

int
protocol_parse(const char *data, size_t length, struct protocol_request *ret_request,
	       json_t **ret_error)
{
	struct protocol_request request = {0};
	if (length > PROTOCOL_MAX_REQUEST)
		return fail(ret_error, "too_large", "request larger than 65536 bytes");
	if (nesting_depth(data, length) > PROTOCOL_MAX_DEPTH)
		return fail(ret_error, "malformed", "JSON nested too deeply");

	json_error_t error;
	json_t *root = json_loadb(data, length, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
	if (!root) {
		char message[256];
		snprintf(message, sizeof(message), "invalid JSON at byte %d: %s", error.position,
			 error.text);
		return fail(ret_error, "malformed", message);
	}
	int r = 0;
	json_t *please = json_object_get(root, "please");
	if (!json_is_object(root)) {
		r = fail(ret_error, "invalid_request",
			 "a request is a JSON object such as {\"please\":\"metrics\"}");
		goto out;
	}
	if (!json_is_string(please)) {
		r = fail(ret_error, "invalid_request",
			 "missing \"please\": expected \"metrics\", \"restart\" or \"status\"");
		goto out;
	}
	const char *command = json_string_value(please);
	if (strcmp(command, "metrics") == 0) {
		request.command = COMMAND_METRICS;
		json_t *format = json_object_get(root, "format");
		const char *name = json_string_value(format);
		if (format &&
		    (!name || (strcmp(name, "json") != 0 && strcmp(name, "prometheus") != 0))) {
			r = fail(ret_error, "invalid_request",
				 "unknown \"format\": expected \"json\" or \"prometheus\"");
			goto out;
		}
		request.prometheus = name && strcmp(name, "prometheus") == 0;
	} else if (strcmp(command, "status") == 0) {
		request.command = COMMAND_STATUS;
	} else if (strcmp(command, "restart") == 0) {
		request.command = COMMAND_RESTART;
		json_t *service = json_object_get(root, "service");
		json_t *signal = json_object_get(root, "signal");
		if (service && (!json_is_string(service) || json_string_length(service) == 0 ||
				json_string_length(service) >= sizeof(request.service))) {
			r = fail(ret_error, "invalid_request",
				 "\"service\" must be the name of a service");
			goto out;
		}
		if (service)
			snprintf(request.service, sizeof(request.service), "%s",
				 json_string_value(service));
		if (signal && !json_is_null(signal)) {
			r = parse_signal(signal, &request, ret_error);
			if (r < 0)
				goto out;
		}
	} else {
		char message[200];
		snprintf(
		    message, sizeof(message),
		    "unknown command \"%.64s\": expected \"metrics\", \"restart\" or \"status\"",
		    command);
		r = fail(ret_error, "unknown_command", message);
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
