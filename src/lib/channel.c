/* channel: the host↔supervisor messages (see channel.h): send, queue and check, both sides. */
#include "lib/channel.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* What a memfd must be sealed against before the supervisor maps it: a file that could shrink
 * under the mapping would fault (SIGBUS) the reader. */
#define FILE_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

int
channel_send(int fd, uint32_t type, uint64_t id, const void *payload, size_t length)
{
	if (length > UINT32_MAX)
		return -EMSGSIZE;
	struct channel_header header = {.type = type, .length = (uint32_t)length, .id = id};
	/* The header and the payload go out as they are, without a copy into one buffer. */
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
		/* The service, then, if there is a NUL, exactly one struct channel_arguments. */
		const char *nul = memchr(payload, '\0', payload_length);
		size_t service_length = nul ? (size_t)(nul - payload) : payload_length;
		struct channel_arguments arguments = {.worker = -1};
		if (payload_length > CHANNEL_MAX_REQUEST || service_length > PROTOCOL_MAX_SERVICE ||
		    (nul && payload_length - service_length - 1 != sizeof(arguments)))
			return -EBADMSG;
		if (nul)
			memcpy(&arguments, nul + 1, sizeof(arguments));
		ret_message->header = header;
		ret_message->command = (enum command)header.type;
		memcpy(ret_message->service, payload, service_length);
		ret_message->service[service_length] = '\0';
		ret_message->arguments = arguments;
		ret_message->reply = NULL;
		ret_message->reply_length = 0;
		return 0;
	}
	if (header.type == CHANNEL_LOGS) {
		/* Frames for the client, the last ending in its NUL. */
		if (payload_length < 2 || payload_length > CHANNEL_MAX_DATAGRAM ||
		    payload[payload_length - 1] != '\0')
			return -EBADMSG;
		*ret_message = (struct channel_message){
		    .header = header, .reply = payload, .reply_length = payload_length};
		return 0;
	}
	if (header.type == CHANNEL_PING || header.type == CHANNEL_PONG ||
	    header.type == CHANNEL_FILE || header.type == CHANNEL_LOGS_ACK ||
	    header.type == CHANNEL_LOGS_CANCEL) {
		if (payload_length != 0)
			return -EBADMSG;
		*ret_message = (struct channel_message){.header = header};
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

/* The queue ------------------------------------------------------------------------------ */

struct channel_queued {
	struct channel_queued *next;
	struct channel_header header; /* the message's own (a file's: the one inside it) */
	int file;		      /* a memfd holding the whole message, or -1: payload */
	char payload[];
};

/* Writes the whole message into a memfd and seals it, so that the reader may map it without
 * fear of it changing. Returns the fd or -errno. */
static int
file_create(const struct channel_header *header, const void *payload)
{
	int fd = memfd_create("aerie-channel", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	struct iovec parts[] = {{(void *)header, sizeof(*header)},
				{(void *)payload, header->length}};
	size_t total = sizeof(*header) + header->length, written = 0;
	while (written < total) {
		/* Writes to a memfd are not short unless memory runs out; resume where it
		 * stopped all the same. */
		struct iovec rest[2];
		int count = 0;
		size_t skip = written;
		for (int i = 0; i < 2; i++) {
			if (skip >= parts[i].iov_len) {
				skip -= parts[i].iov_len;
				continue;
			}
			rest[count++] = (struct iovec){(char *)parts[i].iov_base + skip,
						       parts[i].iov_len - skip};
			skip = 0;
		}
		ssize_t n = writev(fd, rest, count);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int r = n < 0 ? -errno : -ENOSPC;
			close(fd);
			return r;
		}
		written += (size_t)n;
	}
	if (fcntl(fd, F_ADD_SEALS, FILE_SEALS | F_SEAL_SEAL) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* The datagram that carries a file: a CHANNEL_FILE header and the fd. */
static int
file_send(int fd, uint64_t id, int file)
{
	struct channel_header header = {.type = CHANNEL_FILE, .length = 0, .id = id};
	struct iovec part = {&header, sizeof(header)};
	union {
		struct cmsghdr align;
		char buffer[CMSG_SPACE(sizeof(int))];
	} control;
	memset(&control, 0, sizeof(control));
	struct msghdr message = {.msg_iov = &part,
				 .msg_iovlen = 1,
				 .msg_control = control.buffer,
				 .msg_controllen = sizeof(control.buffer)};
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&message);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &file, sizeof(int));
	for (;;) {
		if (sendmsg(fd, &message, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

static void
item_free(struct channel_queued *item)
{
	if (item->file >= 0)
		close(item->file);
	free(item);
}

/* Sends item's message. A payload the socket finds too large for a datagram (its buffer is
 * smaller than CHANNEL_MAX_DATAGRAM on this machine) moves into a file, which is then sent. */
static int
item_send(int fd, struct channel_queued *item)
{
	if (item->file < 0) {
		int r = channel_send(fd, item->header.type, item->header.id, item->payload,
				     item->header.length);
		if (r != -EMSGSIZE && r != -ENOBUFS)
			return r;
		r = file_create(&item->header, item->payload);
		if (r < 0)
			return r;
		item->file = r;
	}
	return file_send(fd, item->header.id, item->file);
}

/* A message as a queue item: its payload copied, or written into a file when it is large. */
static struct channel_queued *
item_new(uint32_t type, uint64_t id, const void *payload, size_t length, int *ret_error)
{
	bool in_file = length > CHANNEL_MAX_DATAGRAM;
	struct channel_queued *item = malloc(sizeof(*item) + (in_file ? 0 : length));
	if (!item) {
		*ret_error = -ENOMEM;
		return NULL;
	}
	*item = (struct channel_queued){
	    .header = {.type = type, .length = (uint32_t)length, .id = id}, .file = -1};
	if (!in_file) {
		if (length > 0)
			memcpy(item->payload, payload, length);
		return item;
	}
	int r = file_create(&item->header, payload);
	if (r < 0) {
		free(item);
		*ret_error = r;
		return NULL;
	}
	item->file = r;
	return item;
}

static void
queue_pop(struct channel_queue *queue)
{
	struct channel_queued *item = queue->head;
	queue->head = item->next;
	if (!queue->head)
		queue->tail = NULL;
	queue->count--;
	queue->bytes -= item->header.length;
	item_free(item);
}

int
channel_queue_send(struct channel_queue *queue, int fd, uint32_t type, uint64_t id,
		   const void *payload, size_t length)
{
	if (length > CHANNEL_MAX_REPLY)
		return -EMSGSIZE;
	/* The common case, a small reply to a supervisor that keeps up, costs no copy. */
	if (!queue->head && length <= CHANNEL_MAX_DATAGRAM) {
		int r = channel_send(fd, type, id, payload, length);
		if (r == 0 || (r != -EAGAIN && r != -EMSGSIZE && r != -ENOBUFS))
			return r;
	}
	int r = 0;
	struct channel_queued *item = item_new(type, id, payload, length, &r);
	if (!item)
		return r;
	if (queue->tail)
		queue->tail->next = item;
	else
		queue->head = item;
	queue->tail = item;
	queue->count++;
	queue->bytes += length;
	r = channel_queue_flush(queue, fd);
	return r == -EAGAIN ? 0 : r;
}

int
channel_queue_flush(struct channel_queue *queue, int fd)
{
	while (queue->head) {
		int r = item_send(fd, queue->head);
		if (r < 0)
			return r;
		queue_pop(queue);
	}
	return 0;
}

bool
channel_queue_full(const struct channel_queue *queue)
{
	return queue->count >= CHANNEL_QUEUE_MAX_MESSAGES ||
	       queue->bytes >= CHANNEL_QUEUE_MAX_BYTES;
}

void
channel_queue_clear(struct channel_queue *queue)
{
	while (queue->head)
		queue_pop(queue);
}

/* Receiving ------------------------------------------------------------------------------ */

/* The reply in a CHANNEL_FILE's memfd, mapped into received; takes file. */
static int
file_map(int file, uint64_t id, struct channel_received *received)
{
	struct stat st;
	int seals = fcntl(file, F_GET_SEALS);
	int r = 0;
	if (seals < 0 || (seals & FILE_SEALS) != FILE_SEALS || fstat(file, &st) < 0 ||
	    !S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(struct channel_header) ||
	    (uint64_t)st.st_size > sizeof(struct channel_header) + (uint64_t)CHANNEL_MAX_REPLY)
		r = -EBADMSG;
	void *data =
	    r == 0 ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, file, 0) : MAP_FAILED;
	close(file);
	if (r == 0 && data == MAP_FAILED)
		r = errno == ENOMEM ? -ENOMEM : -EBADMSG;
	if (r < 0)
		return r;
	struct channel_message message;
	if (channel_parse(data, (size_t)st.st_size, &message) < 0 ||
	    message.header.type != CHANNEL_REPLY || message.header.id != id) {
		munmap(data, (size_t)st.st_size);
		return -EBADMSG;
	}
	*received = (struct channel_received){
	    .message = message, .data = data, .size = (size_t)st.st_size, .mapped = true};
	return 0;
}

/* Closes every fd a received control message holds but the first, which it returns (or -1).
 * *ret_more tells whether there were others. */
static int
take_fds(struct msghdr *message, bool *ret_more)
{
	int first = -1;
	*ret_more = false;
	for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(message); cmsg;
	     cmsg = CMSG_NXTHDR(message, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < count; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
			if (first < 0) {
				first = fd;
			} else {
				*ret_more = true;
				close(fd);
			}
		}
	}
	return first;
}

int
channel_receive(int fd, struct channel_received *ret_received)
{
	/* One datagram per message, as large as its sender made it: its size first, then a
	 * buffer that fits. */
	ssize_t size;
	do
		size = recv(fd, NULL, 0, MSG_DONTWAIT | MSG_PEEK | MSG_TRUNC);
	while (size < 0 && errno == EINTR);
	if (size < 0)
		return errno == EAGAIN ? -EAGAIN : -EPIPE;
	if (size == 0)
		return -EPIPE;
	char *buffer = malloc((size_t)size);
	union {
		struct cmsghdr align;
		char buffer[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec part = {buffer, (size_t)size};
	struct msghdr message = {.msg_iov = &part,
				 .msg_iovlen = 1,
				 .msg_control = control.buffer,
				 .msg_controllen = sizeof(control.buffer)};
	if (!buffer) {
		/* Taken off the channel all the same, or it would come back forever. */
		part = (struct iovec){NULL, 0};
	}
	ssize_t n;
	do
		n = recvmsg(fd, &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	bool more_fds;
	int file = n >= 0 ? take_fds(&message, &more_fds) : -1;
	if (!buffer) {
		if (file >= 0)
			close(file);
		return -ENOMEM;
	}
	if (n <= 0) {
		free(buffer);
		return n == 0 || errno != EAGAIN ? -EPIPE : -EAGAIN;
	}
	struct channel_message parsed;
	bool truncated = message.msg_flags & (MSG_TRUNC | MSG_CTRUNC);
	int r = !truncated && !more_fds ? channel_parse(buffer, (size_t)n, &parsed) : -EBADMSG;
	/* An fd goes with a file and only with it. */
	if (r == 0 && (parsed.header.type == CHANNEL_FILE) != (file >= 0))
		r = -EBADMSG;
	if (r < 0) {
		if (file >= 0)
			close(file);
		free(buffer);
		return r;
	}
	if (file >= 0) {
		free(buffer);
		return file_map(file, parsed.header.id, ret_received);
	}
	*ret_received = (struct channel_received){
	    .message = parsed, .data = buffer, .size = (size_t)n, .mapped = false};
	return 0;
}

void
channel_received_free(struct channel_received *received)
{
	if (received->mapped)
		munmap(received->data, received->size);
	else
		free(received->data);
	received->data = NULL;
}
