/* utf8: which bytes are valid UTF-8 (see utf8.h). */
#include "lib/utf8.h"

size_t
utf8_length(const unsigned char *s, size_t length)
{
	size_t need;
	unsigned min, code;
	if (length == 0)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		need = 2, min = 0x80, code = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		need = 3, min = 0x800, code = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		need = 4, min = 0x10000, code = s[0] & 0x07;
	else
		return 0;
	if (need > length)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		code = code << 6 | (s[i] & 0x3f);
	}
	if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
		return 0;
	return need;
}
