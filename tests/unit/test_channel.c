/* Unit tests of channel.c: every type of message through a real SOCK_SEQPACKET pair and back
 * through channel_parse, and every malformed message refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

	char longest[CHANNEL_MAX_REQUEST];
	memset(longest, 'a', sizeof(longest));
	assert_int_equal(round_trip(pair, COMMAND_RESTART, 1, longest, sizeof(longest), &message),
			 0);
	assert_int_equal(strlen(message.service), CHANNEL_MAX_REQUEST);
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
				  CHANNEL_REPLY + 1, UINT32_MAX};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		n = build(buffer, types[i], 0, 1, NULL, 0);
		assert_refused(buffer, n);
		n = build(buffer, types[i], 2, 1, "1", 2);
		assert_refused(buffer, n);
	}

	/* A request's service: bounded, and no NUL in it. */
	char name[CHANNEL_MAX_REQUEST + 1];
	memset(name, 'a', sizeof(name));
	n = build(buffer, COMMAND_RESTART, sizeof(name), 1, name, sizeof(name));
	assert_refused(buffer, n);
	n = build(buffer, COMMAND_RESTART, 4, 1, "web", 4); /* its NUL sent too */
	assert_refused(buffer, n);
	n = build(buffer, COMMAND_RESTART, 3, 1, "w\0b", 3);
	assert_refused(buffer, n);

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
	    cmocka_unit_test(test_process),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
