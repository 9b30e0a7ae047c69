/* utf8: which bytes are valid UTF-8, for the encoders (json_out) and the terminal's escaping. */
#pragma once

#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (at most length bytes), or 0 if it is not one:
 * overlong forms, surrogates and code points past U+10FFFF are not. */
size_t utf8_length(const unsigned char *s, size_t length);
