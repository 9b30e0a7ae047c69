/* escape: text that a worker or a server chose, made safe to print on a terminal. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Rewrites text in place so that a terminal shows all of it and acts on none of it: each C0
 * control, DEL, C1 control (U+0080 to U+009F) and byte that is not part of valid UTF-8
 * becomes '?', as ps shows what it can't print. With keep_lines, newline and tab stay (for
 * a text of many lines). The text never grows. Returns text. */
char *escape_controls(char *text, bool keep_lines);
/* Writes text to out as escape_controls(…, false) would make it, without copying it. */
void escape_print(FILE *out, const char *text);
/* Writes json (valid UTF-8, as jansson and json_out write it) to out with DEL and C1 controls
 * spelled \u007F and \u0080 to \u009F: the same JSON value, but nothing a terminal acts on.
 * jansson and json_out escape C0 controls already; these they write as they are. Returns 0, or
 * -EIO if out failed. */
int escape_print_json(FILE *out, const char *json);
/* escape_controls(…, false) of text copied into buffer, cut to size. Returns buffer. */
char *escape_copy(const char *text, char *buffer, size_t size);
