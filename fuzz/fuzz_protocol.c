/* libFuzzer target: the supervisor's request parser, on any bytes a client can send. */
#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct protocol_request request;
	json_t *error = NULL;
	if (protocol_parse((const char *)data, size, &request, &error) < 0) {
		char *text;
		ssize_t length = error ? protocol_encode(error, &text) : -1;
		if (length >= 0)
			free(text);
		json_decref(error);
	}
	return 0;
}
