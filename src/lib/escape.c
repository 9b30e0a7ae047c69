/* escape: text that a worker or a server chose, made safe to print on a terminal. */
#include "lib/escape.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/utf8.h"

/* The length of the character at s (1 for a byte that is not UTF-8), and whether a terminal
 * would act on it. A terminal acts on C1 controls whether they come as UTF-8 (xterm, VTE) or as
 * single bytes (a terminal in an 8-bit mode): U+009B is CSI, as ESC [ is. Single bytes 0x80 to
 * 0x9f are never valid UTF-8, so both forms are caught. */
static size_t
next_character(const unsigned char *s, size_t left, bool keep_lines, bool *ret_control)
{
	size_t n = utf8_length(s, left);
	if (n == 0) {
		*ret_control = true;
		return 1;
	}
	*ret_control =
	    (n == 1 && (*s < 0x20 || *s == 0x7f) && !(keep_lines && (*s == '\n' || *s == '\t'))) ||
	    (n == 2 && s[0] == 0xc2 && s[1] < 0xa0);
	return n;
}

char *
escape_controls(char *text, bool keep_lines)
{
	unsigned char *in = (unsigned char *)text, *out = in;
	size_t left = strlen(text);
	while (left > 0) {
		bool control;
		size_t n = next_character(in, left, keep_lines, &control);
		if (control) {
			*out++ = '?';
		} else {
			memmove(out, in, n);
			out += n;
		}
		in += n;
		left -= n;
	}
	*out = '\0';
	return text;
}

void
escape_print(FILE *out, const char *text)
{
	const unsigned char *in = (const unsigned char *)text;
	size_t left = strlen(text);
	while (left > 0) {
		bool control;
		size_t n = next_character(in, left, false, &control);
		if (control)
			fputc('?', out);
		else
			fwrite(in, 1, n, out);
		in += n;
		left -= n;
	}
}

/* Such characters occur only inside strings (outside them JSON is ASCII punctuation), and in
 * valid UTF-8 a 0xc2 is always the first byte of a character. */
int
escape_print_json(FILE *out, const char *json)
{
	/* Runs between the bytes that may need it go out whole, found with strcspn (vectorised in
	 * glibc): a metrics reply of 1000 processes is 700 KB, and a write per byte, or even a test
	 * per byte, cost more than the capture's own code. */
	const char *run = json;
	for (;;) {
		size_t length = strcspn(run, "\x7f\xc2");
		(void)fwrite(run, 1, length, out);
		const unsigned char *c = (const unsigned char *)run + length;
		if (*c == '\0')
			break;
		if (*c == 0x7f) {
			fputs("\\u007F", out); /* upper case, as jansson writes \u001B */
			run = (const char *)c + 1;
		} else if (c[1] >= 0x80 && c[1] < 0xa0) { /* U+0080 to U+009F: C1 controls */
			fprintf(out, "\\u%04X", c[1]);
			run = (const char *)c + 2;
		} else {
			(void)fputc(*c, out); /* another character starting with 0xc2 */
			run = (const char *)c + 1;
		}
	}
	return ferror(out) ? -EIO : 0;
}

char *
escape_copy(const char *text, char *buffer, size_t size)
{
	if (size == 0)
		return buffer;
	snprintf(buffer, size, "%s", text);
	return escape_controls(buffer, false);
}
