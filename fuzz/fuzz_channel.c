/* libFuzzer target: channel_parse, on any datagram the supervisor process could send the host
 * (and the host the supervisor): what it accepts must be what channel.h promises. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/channel.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct channel_message message;
	if (channel_parse(data, size, &message) < 0)
		return 0;
	if (size != sizeof(struct channel_header) + message.header.length || message.header.id == 0)
		abort();
	if (message.header.type == CHANNEL_REPLY) {
		/* Inside the buffer, one NUL, at its end: a whole frame for the client. */
		const char *payload = (const char *)data + sizeof(struct channel_header);
		if (message.reply != payload || message.reply_length != message.header.length ||
		    message.reply_length < 2 || message.reply_length > CHANNEL_MAX_REPLY ||
		    strlen(message.reply) + 1 != message.reply_length)
			abort();
		return 0;
	}
	/* A batch of `logs -f` frames: inside the buffer, within a datagram, ending in a NUL. */
	if (message.header.type == CHANNEL_LOGS) {
		const char *payload = (const char *)data + sizeof(struct channel_header);
		if (message.reply != payload || message.reply_length != message.header.length ||
		    message.reply_length < 2 || message.reply_length > CHANNEL_MAX_DATAGRAM ||
		    message.reply[message.reply_length - 1] != '\0')
			abort();
		return 0;
	}
	/* A ping, a pong, a file's datagram, a logs ack or cancel: nothing but the header. */
	if (message.header.type == CHANNEL_PING || message.header.type == CHANNEL_PONG ||
	    message.header.type == CHANNEL_FILE || message.header.type == CHANNEL_LOGS_ACK ||
	    message.header.type == CHANNEL_LOGS_CANCEL) {
		if (message.header.length != 0 || message.reply)
			abort();
		return 0;
	}
	/* A request: a command the host answers, naming a service it can hold, and its arguments
	 * after a NUL or none. */
	size_t service = strlen(message.service);
	if (message.header.type >= COMMAND_COUNT || message.command != message.header.type ||
	    command_table[message.command].answerer != COMMAND_BY_HOST ||
	    service > PROTOCOL_MAX_SERVICE ||
	    (service != message.header.length &&
	     service + 1 + sizeof(struct channel_arguments) != message.header.length) ||
	    (service == message.header.length && message.arguments.worker != -1) ||
	    message.header.length > CHANNEL_MAX_REQUEST || message.reply)
		abort();
	return 0;
}
