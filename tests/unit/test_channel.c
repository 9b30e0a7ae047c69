/* Unit tests of channel.c: every type of message through a real SOCK_SEQPACKET pair and back
 * through channel_parse, and every malformed message refused; the host's queue (order, files,
 * its bound) and the supervisor's receiving of files, forged ones refused. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/channel.h"

struct pair {
	int fds[2];
	char buffer[1 << 16];
	size_t length;
};

static int
setup(void **state)
{
	struct pair *pair = calloc(1, sizeof(*pair));
	if (!pair || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair->fds) < 0)
		return -1;
	*state = pair;
	return 0;
}

static int
teardown(void **state)
{
	struct pair *pair = *state;
	close(pair->fds[0]);
	close(pair->fds[1]);
	free(pair);
	return 0;
}

/* Sends one message on the pair, receives it at the other end and parses it. */
static int
round_trip(struct pair *pair, uint32_t type, uint64_t id, const void *payload, size_t length,
	   struct channel_message *ret_message)
{
	assert_int_equal(channel_send(pair->fds[0], type, id, payload, length), 0);
	ssize_t n = recv(pair->fds[1], pair->buffer, sizeof(pair->buffer), MSG_DONTWAIT);
	assert_int_equal(n, sizeof(struct channel_header) + length); /* one datagram, all of it */
	pair->length = (size_t)n;
	return channel_parse(pair->buffer, pair->length, ret_message);
}

static void
test_requests(void **state)
{
	struct pair *pair = *state;
	struct channel_message message;
	size_t requests = 0;
	for (size_t i = 0; i < COMMAND_COUNT; i++) {
		if (command_table[i].answerer != COMMAND_BY_HOST)
			continue;
		requests++;
		assert_int_equal(round_trip(pair, (uint32_t)i, 7 + i, NULL, 0, &message), 0);
		assert_int_equal(message.header.type, i);
		assert_int_equal(message.header.id, 7 + i);
		assert_int_equal(message.header.length, 0);
		assert_int_equal(message.command, i);
		assert_string_equal(message.service, "");
		assert_null(message.reply);
	}
	assert_true(requests >= 2); /* status and restart at least */

	assert_int_equal(round_trip(pair, COMMAND_RESTART, UINT64_MAX, "web", 3, &message), 0);
	assert_int_equal(message.command, COMMAND_RESTART);
	assert_int_equal(message.header.id, UINT64_MAX);
	assert_string_equal(message.service, "web");

	assert_int_equal(message.arguments.worker, -1); /* none sent */

	char longest[PROTOCOL_MAX_SERVICE];
	memset(longest, 'a', sizeof(longest));
	assert_int_equal(round_trip(pair, COMMAND_RESTART, 1, longest, sizeof(longest), &message),
			 0);
	assert_int_equal(strlen(message.service), PROTOCOL_MAX_SERVICE);

	/* A service, its NUL and the arguments of signal and scale. */
	char payload[4 + sizeof(struct channel_arguments)] = "web";
	struct channel_arguments arguments = {.signal = 10, .worker = 2, .count = 7};
	memcpy(payload + 4, &arguments, sizeof(arguments));
	assert_int_equal(round_trip(pair, COMMAND_SIGNAL, 5, payload, sizeof(payload), &message),
			 0);
	assert_string_equal(message.service, "web");
	assert_int_equal(message.arguments.signal, 10);
	assert_int_equal(message.arguments.worker, 2);
	assert_int_equal(message.arguments.count, 7);

	/* The service, a NUL, then logs' arguments. */
	char logs[4 + sizeof(struct channel_arguments)] = "web";
	arguments = (struct channel_arguments){.worker = 2, .lines = 100, .flags = CHANNEL_FOLLOW};
	memcpy(logs + 4, &arguments, sizeof(arguments));
	assert_int_equal(round_trip(pair, COMMAND_LOGS, 9, logs, sizeof(logs), &message), 0);
	assert_string_equal(message.service, "web");
	assert_int_equal(message.arguments.worker, 2);
	assert_int_equal(message.arguments.lines, 100);
	assert_int_equal(message.arguments.flags, CHANNEL_FOLLOW);
}

static void
test_replies(void **state)
{
	struct pair *pair = *state;
	struct channel_message message;
	const char json[] = "{\"ok\":true,\"generation\":2}";
	assert_int_equal(round_trip(pair, CHANNEL_REPLY, 42, json, sizeof(json), &message), 0);
	assert_int_equal(message.header.type, CHANNEL_REPLY);
	assert_int_equal(message.header.id, 42);
	/* The reply is the frame the client gets: the text and its NUL, inside the buffer. */
	assert_int_equal(message.reply_length, sizeof(json));
	assert_ptr_equal(message.reply, pair->buffer + sizeof(struct channel_header));
	assert_memory_equal(message.reply, json, sizeof(json));

	/* The smallest: one character and its NUL. */
	assert_int_equal(round_trip(pair, CHANNEL_REPLY, 1, "1", 2, &message), 0);
	assert_string_equal(message.reply, "1");

	/* A large one (a status of many workers) is still one datagram. */
	size_t length = sizeof(pair->buffer) - sizeof(struct channel_header);
	char *big = malloc(length);
	assert_non_null(big);
	memset(big, ' ', length - 1);
	big[0] = '"', big[length - 2] = '"', big[length - 1] = '\0';
	int size = 1 << 20;
	assert_int_equal(setsockopt(pair->fds[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)), 0);
	assert_int_equal(round_trip(pair, CHANNEL_REPLY, 9, big, length, &message), 0);
	assert_int_equal(message.reply_length, length);
	free(big);
}

/* Refused, and *ret_message untouched. */
static void
assert_refused(const void *buffer, size_t length)
{
	struct channel_message message, before;
	memset(&message, 0x5a, sizeof(message));
	before = message;
	assert_int_equal(channel_parse(buffer, length, &message), -EBADMSG);
	assert_memory_equal(&message, &before, sizeof(message));
}

/* A datagram of header and payload, as channel_send makes them, with any header at all. */
static size_t
build(char *buffer, uint32_t type, uint32_t length, uint64_t id, const void *payload,
      size_t payload_length)
{
	struct channel_header header = {.type = type, .length = length, .id = id};
	memcpy(buffer, &header, sizeof(header));
	if (payload_length)
		memcpy(buffer + sizeof(header), payload, payload_length);
	return sizeof(header) + payload_length;
}

static void
test_malformed(void **state)
{
	(void)state;
	static char buffer[sizeof(struct channel_header) + CHANNEL_MAX_REQUEST + 64];
	size_t n;

	/* Shorter than a header. */
	assert_refused(buffer, 0);
	n = build(buffer, COMMAND_STATUS, 0, 1, NULL, 0);
	assert_int_equal(channel_parse(buffer, n, &(struct channel_message){0}), 0);
	for (size_t cut = 0; cut < n; cut++)
		assert_refused(buffer, cut);

	/* A length that is not the payload's. */
	n = build(buffer, COMMAND_RESTART, 4, 1, "web", 3);
	assert_refused(buffer, n);
	n = build(buffer, COMMAND_RESTART, 2, 1, "web", 3);
	assert_refused(buffer, n);
	n = build(buffer, COMMAND_RESTART, UINT32_MAX, 1, "web", 3);
	assert_refused(buffer, n);

	/* Id 0 is no request's. */
	n = build(buffer, COMMAND_STATUS, 0, 0, NULL, 0);
	assert_refused(buffer, n);
	n = build(buffer, CHANNEL_REPLY, 2, 0, "1", 2);
	assert_refused(buffer, n);

	/* Types: unknown, and a command the host does not answer. */
	const uint32_t types[] = {COMMAND_COUNT, COMMAND_METRICS, CHANNEL_REPLY - 1,
				  CHANNEL_LOGS_CANCEL + 1, UINT32_MAX};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		n = build(buffer, types[i], 0, 1, NULL, 0);
		assert_refused(buffer, n);
		n = build(buffer, types[i], 2, 1, "1", 2);
		assert_refused(buffer, n);
	}

	/* A request's service: bounded, and after a NUL only whole arguments. */
	char name[PROTOCOL_MAX_SERVICE + 1];
	memset(name, 'a', sizeof(name));
	n = build(buffer, COMMAND_RESTART, sizeof(name), 1, name, sizeof(name));
	assert_refused(buffer, n);
	n = build(buffer, COMMAND_RESTART, 4, 1, "web", 4); /* its NUL sent too */
	assert_refused(buffer, n);
	n = build(buffer, COMMAND_RESTART, 3, 1, "w\0b", 3);
	assert_refused(buffer, n);
	char short_arguments[4 + sizeof(struct channel_arguments) - 1] = "web";
	n = build(buffer, COMMAND_SCALE, sizeof(short_arguments), 1, short_arguments,
		  sizeof(short_arguments));
	assert_refused(buffer, n);
	n = build(buffer, COMMAND_LOGS, 6, 1, "web\0ab", 6);
	assert_refused(buffer, n);

	/* Log lines: frames ending in a NUL; acks and cancels without payload. */
	n = build(buffer, CHANNEL_LOGS, 3, 1, "{}\0", 3);
	assert_int_equal(channel_parse(buffer, n, &(struct channel_message){0}), 0);
	n = build(buffer, CHANNEL_LOGS, 2, 1, "{}", 2);
	assert_refused(buffer, n);
	n = build(buffer, CHANNEL_LOGS_ACK, 2, 1, "{}", 2);
	assert_refused(buffer, n);
	n = build(buffer, CHANNEL_LOGS_CANCEL, 0, 1, NULL, 0);
	assert_int_equal(channel_parse(buffer, n, &(struct channel_message){0}), 0);

	/* A reply: JSON text and one NUL, at its end. */
	n = build(buffer, CHANNEL_REPLY, 0, 1, NULL, 0);
	assert_refused(buffer, n);
	n = build(buffer, CHANNEL_REPLY, 1, 1, "", 1);
	assert_refused(buffer, n);
	n = build(buffer, CHANNEL_REPLY, 2, 1, "{}", 2);
	assert_refused(buffer, n);
	n = build(buffer, CHANNEL_REPLY, 4, 1,
		  "1\0"
		  "2",
		  4);
	assert_refused(buffer, n);
	n = build(buffer, CHANNEL_REPLY, 3, 1, "1\0", 3);
	assert_refused(buffer, n);

	/* A reply longer than a client may have unread. */
	size_t length = CHANNEL_MAX_REPLY + 1;
	char *big = malloc(sizeof(struct channel_header) + length);
	assert_non_null(big);
	memset(big + sizeof(struct channel_header), '1', length - 1);
	big[sizeof(struct channel_header) + length - 1] = '\0';
	struct channel_header header = {.type = CHANNEL_REPLY, .length = length, .id = 1};
	memcpy(big, &header, sizeof(header));
	assert_refused(big, sizeof(header) + length);
	header.length = length - 1; /* one byte less: the largest, accepted */
	memcpy(big, &header, sizeof(header));
	big[sizeof(struct channel_header) + length - 2] = '\0';
	struct channel_message message;
	assert_int_equal(channel_parse(big, sizeof(header) + length - 1, &message), 0);
	assert_int_equal(message.reply_length, CHANNEL_MAX_REPLY);
	free(big);
}

/* channel_parse reads the header from any address, as a fuzzer's buffer is. */
static void
test_unaligned(void **state)
{
	(void)state;
	static char buffer[sizeof(struct channel_header) + 16];
	size_t n = build(buffer + 1, COMMAND_RESTART, 3, 5, "api", 3);
	struct channel_message message;
	assert_int_equal(channel_parse(buffer + 1, n, &message), 0);
	assert_int_equal(message.header.id, 5);
	assert_string_equal(message.service, "api");
}

/* A closed peer and a message too large for the socket come back as -errno. */
static void
test_send_errors(void **state)
{
	struct pair *pair = *state;
	int size = 4096;
	assert_int_equal(setsockopt(pair->fds[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)), 0);
	size_t length = 1 << 20;
	char *big = calloc(1, length);
	assert_non_null(big);
	assert_int_equal(channel_send(pair->fds[0], CHANNEL_REPLY, 1, big, length), -EMSGSIZE);
	free(big);
	close(pair->fds[1]);
	pair->fds[1] = -1;
	assert_int_equal(channel_send(pair->fds[0], COMMAND_STATUS, 1, NULL, 0), -EPIPE);
}

/* Pings, pongs and files have no payload, and an id like every message. */
static void
test_control_types(void **state)
{
	(void)state;
	char buffer[sizeof(struct channel_header) + 8];
	const uint32_t types[] = {CHANNEL_PING, CHANNEL_PONG, CHANNEL_FILE};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct channel_message message;
		size_t n = build(buffer, types[i], 0, 3, NULL, 0);
		assert_int_equal(channel_parse(buffer, n, &message), 0);
		assert_int_equal(message.header.type, types[i]);
		assert_int_equal(message.header.id, 3);
		assert_null(message.reply);
		n = build(buffer, types[i], 0, 0, NULL, 0);
		assert_refused(buffer, n);
		n = build(buffer, types[i], 2, 3, "1", 2);
		assert_refused(buffer, n);
	}
}

static size_t
open_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	assert_non_null(dir);
	size_t count = 0;
	while (readdir(dir))
		count++;
	closedir(dir);
	return count;
}

/* A reply "N" padded with spaces to length bytes with its NUL: JSON text a client could get. */
static char *
reply_text(unsigned number, size_t length)
{
	char *text = malloc(length);
	assert_non_null(text);
	memset(text, ' ', length - 1);
	char head[16];
	int n = snprintf(head, sizeof(head), "%u", number);
	memcpy(text, head, (size_t)n);
	text[length - 1] = '\0';
	return text;
}

/* Receives the next message, flushing the sender's queue whenever the channel is empty. */
static void
receive_next(struct pair *pair, struct channel_queue *queue, struct channel_received *received)
{
	for (int tries = 0; tries < 1000; tries++) {
		int r = channel_receive(pair->fds[1], received);
		if (r == 0)
			return;
		assert_int_equal(r, -EAGAIN);
		r = channel_queue_flush(queue, pair->fds[0]);
		assert_true(r == 0 || r == -EAGAIN);
	}
	fail_msg("nothing came");
}

/* Replies the peer cannot take yet wait in the queue, none lost, in order; small ones inline,
 * large ones in a file that the receiver maps. */
static void
test_queue_keeps_everything_in_order(void **state)
{
	struct pair *pair = *state;
	int size = 4096;
	assert_int_equal(setsockopt(pair->fds[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)), 0);
	size_t fds_before = open_fds();
	struct channel_queue queue = {0};
	enum { COUNT = 60 };
	size_t lengths[COUNT];
	for (unsigned i = 0; i < COUNT; i++) {
		/* Every seventh is larger than a datagram may be. */
		lengths[i] = i % 7 == 3 ? CHANNEL_MAX_DATAGRAM + 1000u * i : 100 + 37u * i;
		char *text = reply_text(i, lengths[i]);
		assert_int_equal(channel_queue_send(&queue, pair->fds[0], CHANNEL_REPLY, i + 1,
						    text, lengths[i]),
				 0);
		free(text);
	}
	assert_true(queue.count > 0); /* the peer has not read: most of them wait */
	assert_int_equal(channel_queue_flush(&queue, pair->fds[0]), -EAGAIN);
	for (unsigned i = 0; i < COUNT; i++) {
		struct channel_received received;
		receive_next(pair, &queue, &received);
		assert_int_equal(received.message.header.type, CHANNEL_REPLY);
		assert_int_equal(received.message.header.id, i + 1);
		assert_int_equal(received.message.reply_length, lengths[i]);
		assert_int_equal(received.mapped, lengths[i] > CHANNEL_MAX_DATAGRAM);
		char *text = reply_text(i, lengths[i]);
		assert_memory_equal(received.message.reply, text, lengths[i]);
		free(text);
		channel_received_free(&received);
	}
	assert_int_equal(queue.count, 0);
	assert_int_equal(queue.bytes, 0);
	assert_int_equal(channel_receive(pair->fds[1], &(struct channel_received){0}), -EAGAIN);
	assert_int_equal(open_fds(), fds_before); /* every memfd closed on both sides */
}

/* A reply larger than the socket's buffer, but within CHANNEL_MAX_DATAGRAM, goes as a file. */
static void
test_queue_too_large_for_the_buffer(void **state)
{
	struct pair *pair = *state;
	int size = 4096;
	assert_int_equal(setsockopt(pair->fds[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)), 0);
	struct channel_queue queue = {0};
	size_t length = CHANNEL_MAX_DATAGRAM;
	char *text = reply_text(5, length);
	assert_int_equal(channel_queue_send(&queue, pair->fds[0], CHANNEL_REPLY, 5, text, length),
			 0);
	assert_int_equal(queue.count, 0);
	struct channel_received received;
	assert_int_equal(channel_receive(pair->fds[1], &received), 0);
	assert_true(received.mapped);
	assert_int_equal(received.message.reply_length, length);
	assert_memory_equal(received.message.reply, text, length);
	channel_received_free(&received);
	free(text);
}

/* Past its bounds the queue says so (its owner then reads no more requests); a reply over
 * CHANNEL_MAX_REPLY is refused at once; a peer gone is -EPIPE. */
static void
test_queue_bounds(void **state)
{
	struct pair *pair = *state;
	struct channel_queue queue = {0};
	for (unsigned i = 0; !channel_queue_full(&queue); i++) {
		assert_true(i < 100000);
		assert_int_equal(
		    channel_queue_send(&queue, pair->fds[0], CHANNEL_PING, i + 1, NULL, 0), 0);
	}
	assert_int_equal(queue.count, CHANNEL_QUEUE_MAX_MESSAGES);
	assert_int_equal(
	    channel_queue_send(&queue, pair->fds[0], CHANNEL_REPLY, 1, "1", CHANNEL_MAX_REPLY + 1),
	    -EMSGSIZE);
	assert_int_equal(queue.count, CHANNEL_QUEUE_MAX_MESSAGES);
	channel_queue_clear(&queue);
	assert_int_equal(queue.count, 0);
	assert_null(queue.head);
	/* Gone with messages unread, the peer resets the channel. */
	close(pair->fds[1]);
	pair->fds[1] = -1;
	int r = channel_queue_send(&queue, pair->fds[0], CHANNEL_PING, 1, NULL, 0);
	assert_true(r == -EPIPE || r == -ECONNRESET);
}

/* A datagram with fds, as a forger would send it. */
static void
send_with_fds(int fd, uint32_t type, uint64_t id, const void *payload, size_t length,
	      const int *fds, size_t count)
{
	char buffer[sizeof(struct channel_header) + 64];
	size_t n = build(buffer, type, (uint32_t)length, id, payload, length);
	struct iovec part = {buffer, n};
	union {
		struct cmsghdr align;
		char buffer[CMSG_SPACE(4 * sizeof(int))];
	} control;
	memset(&control, 0, sizeof(control));
	struct msghdr message = {.msg_iov = &part, .msg_iovlen = 1};
	if (count > 0) {
		message.msg_control = control.buffer;
		message.msg_controllen = CMSG_SPACE(count * sizeof(int));
		struct cmsghdr *cmsg = CMSG_FIRSTHDR(&message);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(count * sizeof(int));
		memcpy(CMSG_DATA(cmsg), fds, count * sizeof(int));
	}
	assert_true(sendmsg(fd, &message, 0) >= 0);
}

/* A memfd holding header and payload, with seals. */
static int
memfd_with(uint32_t type, uint64_t id, const char *payload, size_t length, int seals)
{
	int fd = memfd_create("test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_true(fd >= 0);
	struct channel_header header = {.type = type, .length = (uint32_t)length, .id = id};
	assert_int_equal(write(fd, &header, sizeof(header)), sizeof(header));
	assert_int_equal(write(fd, payload, length), (ssize_t)length);
	if (seals)
		assert_int_equal(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

static void
assert_receive_refused(struct pair *pair)
{
	struct channel_received received = {0};
	assert_int_equal(channel_receive(pair->fds[1], &received), -EBADMSG);
	assert_null(received.data);
}

/* The supervisor maps only what cannot change under it and says what it should. */
static void
test_receive_refuses_forgeries(void **state)
{
	struct pair *pair = *state;
	const int sealed = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
	size_t fds_before = open_fds();
	struct channel_received received;

	/* The genuine article. */
	int file = memfd_with(CHANNEL_REPLY, 8, "{}", 3, sealed);
	send_with_fds(pair->fds[0], CHANNEL_FILE, 8, NULL, 0, &file, 1);
	close(file);
	assert_int_equal(channel_receive(pair->fds[1], &received), 0);
	assert_string_equal(received.message.reply, "{}");
	assert_int_equal(received.message.header.id, 8);
	channel_received_free(&received);

	/* Not sealed against shrinking, or writing. */
	const int weak[] = {0, F_SEAL_GROW | F_SEAL_WRITE, F_SEAL_SHRINK | F_SEAL_GROW};
	for (size_t i = 0; i < sizeof(weak) / sizeof(weak[0]); i++) {
		file = memfd_with(CHANNEL_REPLY, 8, "{}", 3, weak[i]);
		send_with_fds(pair->fds[0], CHANNEL_FILE, 8, NULL, 0, &file, 1);
		close(file);
		assert_receive_refused(pair);
	}
	/* Another id inside; a file of something other than a reply; a bad reply inside. */
	file = memfd_with(CHANNEL_REPLY, 9, "{}", 3, sealed);
	send_with_fds(pair->fds[0], CHANNEL_FILE, 8, NULL, 0, &file, 1);
	close(file);
	assert_receive_refused(pair);
	file = memfd_with(CHANNEL_PING, 8, "", 0, sealed);
	send_with_fds(pair->fds[0], CHANNEL_FILE, 8, NULL, 0, &file, 1);
	close(file);
	assert_receive_refused(pair);
	file = memfd_with(CHANNEL_REPLY, 8, "{}", 2, sealed);
	send_with_fds(pair->fds[0], CHANNEL_FILE, 8, NULL, 0, &file, 1);
	close(file);
	assert_receive_refused(pair);
	/* A file that is not a regular one: a pipe, sealed or not. */
	int pipes[2];
	assert_int_equal(pipe2(pipes, O_CLOEXEC), 0);
	send_with_fds(pair->fds[0], CHANNEL_FILE, 8, NULL, 0, pipes, 1);
	assert_receive_refused(pair);
	/* A file without its fd; an fd with what is no file; two fds. */
	send_with_fds(pair->fds[0], CHANNEL_FILE, 8, NULL, 0, NULL, 0);
	assert_receive_refused(pair);
	send_with_fds(pair->fds[0], CHANNEL_REPLY, 8, "{}", 3, pipes, 1);
	assert_receive_refused(pair);
	file = memfd_with(CHANNEL_REPLY, 8, "{}", 3, sealed);
	int two[] = {file, pipes[1]};
	send_with_fds(pair->fds[0], CHANNEL_FILE, 8, NULL, 0, two, 2);
	close(file);
	assert_receive_refused(pair);
	close(pipes[0]);
	close(pipes[1]);

	/* Every fd that came was closed. */
	assert_int_equal(channel_receive(pair->fds[1], &received), -EAGAIN);
	assert_int_equal(open_fds(), fds_before);
	close(pair->fds[0]);
	pair->fds[0] = -1;
	assert_int_equal(channel_receive(pair->fds[1], &received), -EPIPE);
}

/* The supervisor process's fds, in the order the host hands them over. */
static void
test_process(void **state)
{
	(void)state;
	assert_int_equal(CHANNEL_FD_CONTROL, 3);
	assert_int_equal(CHANNEL_FD_HOST, 4);
	assert_int_equal(CHANNEL_FD_HTTP, 5);
	assert_string_equal("--" CHANNEL_OPTION_HOST_PID, "--host-pid");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_replies, setup, teardown),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_unaligned),
	    cmocka_unit_test_setup_teardown(test_send_errors, setup, teardown),
	    cmocka_unit_test(test_control_types),
	    cmocka_unit_test_setup_teardown(test_queue_keeps_everything_in_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_queue_too_large_for_the_buffer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_queue_bounds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_receive_refuses_forgeries, setup, teardown),
	    cmocka_unit_test(test_process),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
