/* json_out: a growable buffer for JSON written by hand, for the replies whose shape is fixed
 * and whose size grows with the number of processes (metrics, status). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
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

/* A piece written through a cursor, for the hottest replies (a metrics tree: 30 numbers per
 * process): json_out_begin reserves room for at most `most` bytes and returns where to write,
 * or NULL once out of memory; json_put_* write and return the end; json_out_end takes that end.
 * Nothing between the two may be another json_out call. */
char *json_out_begin(struct json_out *out, size_t most);
/* Room for `more` bytes at once, for a text whose size is known roughly: no copying as it grows. */
void json_out_reserve(struct json_out *out, size_t more);
void json_out_end(struct json_out *out, char *end);
#define JSON_PUT_RAW(cursor, literal)                                                              \
	((void)memcpy((cursor), (literal), sizeof(literal) - 1), (cursor) + sizeof(literal) - 1)
char *json_put_uint(char *cursor, uint64_t value);
char *json_put_int(char *cursor, long long value);
/* value as printf's "%.*f" writes it, byte for byte (the slow path is printf itself), but a
 * value that is not finite, which JSON has no number for, is written as 0. At most
 * JSON_PUT_FIXED_MAX bytes; decimals at most 6. */
#define JSON_PUT_FIXED_MAX 330
char *json_put_fixed(char *cursor, double value, int decimals);

/* text as a JSON string: what is not UTF-8 becomes '?', as ps shows what it can't print, and
 * control characters (C0, DEL and C1) are escaped. */
void json_out_string(struct json_out *out, const char *text);

/* Hands the NUL-terminated text to *ret_text. Returns its length (the NUL not counted), or
 * -ENOMEM after freeing it if any call failed. */
ssize_t json_out_finish(struct json_out *out, char **ret_text);
