/* protocol: the supervisor's requests and replies (Falcon-compatible NUL-terminated JSON):
 * names, error codes and limits in one place; pure, so that it can be fuzzed. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lib/commands.h"
#include "lib/limits.h"

struct protocol_request {
	enum command command;
	char service[128]; /* restart: "" for all */
	int signal;	   /* restart: 0, or the signal to deliver to the host */
	char signal_name[16];
	bool prometheus; /* metrics: "format":"prometheus" (a JSON string of exposition text) */
};

/* Frames a client's input: returns the length of its first request (the bytes before that
 * request's NUL), PROTOCOL_FRAME_MORE when no NUL has come yet, or PROTOCOL_FRAME_TOO_LARGE
 * when none came within PROTOCOL_MAX_REQUEST bytes, so the rest can't be framed. Callers hold
 * at most PROTOCOL_MAX_REQUEST + 1 bytes of input (the supervisor reads no further), so that
 * a request framed here is never longer than PROTOCOL_MAX_REQUEST. */
#define PROTOCOL_FRAME_MORE (-1)
#define PROTOCOL_FRAME_TOO_LARGE (-2)
ssize_t protocol_frame(const char *input, size_t length);

/* Parses one request (the bytes before its NUL). Returns 0, or -EINVAL with *ret_error set to
 * an error reply (a new reference) to send instead. */
int protocol_parse(const char *data, size_t length, struct protocol_request *ret_request,
		   json_t **ret_error);

/* {"error":{"code":code,"message":message}}; NULL only when out of memory. */
json_t *protocol_error(const char *code, const char *message);

/* Encodes a reply followed by its NUL into a malloc'd buffer. Returns the length or -ENOMEM. */
ssize_t protocol_encode(const json_t *reply, char **ret_buffer);
