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
	char service[PROTOCOL_MAX_SERVICE + 1]; /* restart: "" for all; stop…signal: the one */
	int signal; /* restart: 0, or the signal to deliver to the host; signal: to the workers */
	char signal_name[16];
	unsigned count;	 /* scale: 0…CONFIG_MAX_COUNT */
	int worker;	 /* signal, logs: a worker's index, or -1 for every worker */
	bool prometheus; /* metrics: "format":"prometheus" (a JSON string of exposition text) */
	/* logs: "service" ("" for all), "worker", "lines" (the last ones kept;
	 * PROTOCOL_LOGS_ALL: as many as are kept), "follow". */
	unsigned lines;
	bool follow;
};
#define PROTOCOL_LOGS_ALL 0xffffffffu

/* The "code" of an error reply: clients and scripts match on its name, so a name never
 * changes once released. */
enum protocol_code {
	PROTOCOL_CODE_MALFORMED,	  /* not JSON, or nested too deeply */
	PROTOCOL_CODE_TOO_LARGE,	  /* a request over PROTOCOL_MAX_REQUEST, or its reply */
	PROTOCOL_CODE_INVALID_REQUEST,	  /* JSON, but not a request's shape */
	PROTOCOL_CODE_UNKNOWN_COMMAND,	  /* a "please" that is not in command_table */
	PROTOCOL_CODE_UNKNOWN_SIGNAL,	  /* restart's "signal" names none */
	PROTOCOL_CODE_SIGNAL_NOT_ALLOWED, /* one the host does not handle */
	PROTOCOL_CODE_SIGNAL_FAILED,	  /* kill(2) on the host failed */
	PROTOCOL_CODE_METRICS_FAILED,	  /* /proc could not be read */
	PROTOCOL_CODE_RESTART_FAILED,	  /* the new generation did not become ready */
	PROTOCOL_CODE_HOST_UNAVAILABLE,	  /* the supervisor process can't reach the host */
	PROTOCOL_CODE_PERMISSION_DENIED,  /* the peer gate refused the client */
	PROTOCOL_CODE_TOO_MANY_CLIENTS,	  /* PROTOCOL_MAX_CLIENTS are connected */
	PROTOCOL_CODE_INTERNAL,		  /* out of memory, or a bug */
	PROTOCOL_CODE_CONFIG,		  /* reload: the config has an error; nothing changed */
	PROTOCOL_CODE_UNKNOWN_SERVICE,	  /* no service of that name */
	PROTOCOL_CODE_UNKNOWN_WORKER,	  /* signal: no worker of that index is running */
	PROTOCOL_CODE_INVALID_COUNT,	  /* scale: not a count of workers */
	PROTOCOL_CODE_BUSY,		  /* another change to that service is under way */
	PROTOCOL_CODE_START_FAILED,	  /* start, scale: a new worker exited before ready */
	PROTOCOL_CODE_RELOAD_FAILED,	  /* reload: a part of the difference failed */
	PROTOCOL_CODE_STOPPING,		  /* the host is stopping */
	PROTOCOL_CODE_COUNT,		  /* not a code: the size of the name table */
};

/* The code's name as replies carry it, such as "too_large". */
const char *protocol_code_name(enum protocol_code code);

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

/* {"error":{"code":code's name,"message":message}}; NULL only when out of memory. */
json_t *protocol_error(enum protocol_code code, const char *message);

/* The reply to send when not even an error reply can be allocated (an "internal" error), with
 * its NUL; *ret_length counts that NUL. */
const char *protocol_out_of_memory(size_t *ret_length);

/* Encodes a reply followed by its NUL into a malloc'd buffer. Returns the length or -ENOMEM. */
ssize_t protocol_encode(const json_t *reply, char **ret_buffer);
