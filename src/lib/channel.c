/* channel: the host↔supervisor messages (see channel.h): send and check, both sides. */
#include "lib/channel.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

int
channel_send(int fd, uint32_t type, uint64_t id, const void *payload, size_t length)
{
	if (length > UINT32_MAX)
		return -EMSGSIZE;
	struct channel_header header = {.type = type, .length = (uint32_t)length, .id = id};
	/* The header and the payload go out as they are, without a copy into one buffer: a
	 * status reply is as large as the host has workers. */
	struct iovec parts[] = {{&header, sizeof(header)}, {(void *)payload, length}};
	struct msghdr message = {.msg_iov = parts, .msg_iovlen = length > 0 ? 2 : 1};
	for (;;) {
		if (sendmsg(fd, &message, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

static bool
is_request(uint32_t type)
{
	return type < COMMAND_COUNT && command_table[type].answerer == COMMAND_BY_HOST;
}

int
channel_parse(const void *buffer, size_t length, struct channel_message *ret_message)
{
	struct channel_header header;
	if (length < sizeof(header))
		return -EBADMSG;
	/* Copied out: a buffer handed in (a fuzzer's) need not be aligned for it. */
	memcpy(&header, buffer, sizeof(header));
	const char *payload = (const char *)buffer + sizeof(header);
	size_t payload_length = length - sizeof(header);
	if (header.length != payload_length || header.id == 0)
		return -EBADMSG;
	if (is_request(header.type)) {
		if (payload_length > CHANNEL_MAX_REQUEST || memchr(payload, '\0', payload_length))
			return -EBADMSG;
		ret_message->header = header;
		ret_message->command = (enum command)header.type;
		memcpy(ret_message->service, payload, payload_length);
		ret_message->service[payload_length] = '\0';
		ret_message->reply = NULL;
		ret_message->reply_length = 0;
		return 0;
	}
	if (header.type != CHANNEL_REPLY)
		return -EBADMSG;
	/* One frame for the client: JSON text, then its NUL and nothing after. An empty text
	 * is no reply at all. */
	if (payload_length < 2 || payload_length > CHANNEL_MAX_REPLY ||
	    memchr(payload, '\0', payload_length) != payload + payload_length - 1)
		return -EBADMSG;
	*ret_message = (struct channel_message){
	    .header = header, .reply = payload, .reply_length = payload_length};
	return 0;
}
