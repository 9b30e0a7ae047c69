/* libFuzzer target: the supervisor's framer and request parser, on any bytes a client can send.
 * The first byte sets the size of the reads the bytes arrive in, so that frames are split
 * across reads as they are on a real socket; the buffer is bounded as in supervisor.c. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/protocol.h"

static void
parse_one(const char *data, size_t size)
{
	struct protocol_request request;
	json_t *error = NULL;
	if (protocol_parse(data, size, &request, &error) < 0) {
		if (!error)
			abort(); /* a refused request always comes with its error reply */
		char *text;
		ssize_t length = protocol_encode(error, &text);
		if (length >= 0)
			free(text);
		json_decref(error);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char input[PROTOCOL_MAX_REQUEST + 1];
	if (size == 0)
		return 0;
	size_t read_size = (size_t)data[0] * 257 + 1;
	data++, size--;
	size_t input_length = 0;
	while (size > 0) {
		size_t room = sizeof(input) - input_length;
		size_t n = size < read_size ? size : read_size;
		if (n > room)
			n = room;
		memcpy(input + input_length, data, n);
		input_length += n, data += n, size -= n;
		for (;;) {
			ssize_t framed = protocol_frame(input, input_length);
			if (framed == PROTOCOL_FRAME_TOO_LARGE)
				return 0; /* the supervisor answers too_large and closes */
			if (framed == PROTOCOL_FRAME_MORE) {
				if (input_length == sizeof(input))
					abort(); /* a full buffer waiting for more would stall the
						    client */
				break;
			}
			parse_one(input, (size_t)framed);
			input_length -= (size_t)framed + 1;
			memmove(input, input + framed + 1, input_length);
		}
	}
	return 0;
}
