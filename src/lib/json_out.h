/* json_out: a growable buffer for JSON written by hand, for the replies whose shape is fixed
 * and whose size grows with the number of processes (metrics, status). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct json_out {
	char *data;
	size_t length, capacity;
	bool failed; /* out of memory: every later call does nothing */
};

void json_out_printf(struct json_out *out, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* The pieces of a hot reply, without printf's parsing of a format and its floating point:
 * text as it is (JSON already), an integer, and seconds with microseconds. */
void json_out_raw(struct json_out *out, const char *json);
void json_out_int(struct json_out *out, long long value);
void json_out_seconds(struct json_out *out, double seconds);
/* json_out_raw(prefix) then json_out_int(value): an integer member, prefix being its key with
 * the punctuation around it, as in ",\"pid\":". */
void json_out_field(struct json_out *out, const char *prefix, long long value);

/* text as a JSON string: what is not UTF-8 becomes '?', as ps shows what it can't print, and
 * control characters are escaped. */
void json_out_string(struct json_out *out, const char *text);

/* Hands the NUL-terminated text to *ret_text. Returns its length (the NUL not counted), or
 * -ENOMEM after freeing it if any call failed. */
ssize_t json_out_finish(struct json_out *out, char **ret_text);
