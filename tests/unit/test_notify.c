/* Unit tests of notify.c: parsing sd_notify datagrams, and a real datagram with credentials. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/loop.h"
#include "host/notify.h"

static void
test_parse(void **state)
{
	(void)state;
	char text[] = "READY=1\nSTATUS=serving 4 clients\nMAINPID=12\nSTOPPING=1";
	struct notify_message message = {0};
	notify_parse(text, &message);
	assert_true(message.ready);
	assert_true(message.stopping);
	assert_false(message.reloading);
	assert_string_equal(message.status, "serving 4 clients");

	char other[] = "READY=0\nRELOADING=1\n\nSTATUS=";
	struct notify_message second = {0};
	notify_parse(other, &second);
	assert_false(second.ready);
	assert_true(second.reloading);
	assert_string_equal(second.status, "");
}

struct received {
	struct loop *loop;
	pid_t pid;
	bool ready;
	char status[64];
};

static void
on_message(const struct notify_message *message, void *data)
{
	struct received *received = data;
	received->pid = message->pid;
	received->ready = message->ready;
	snprintf(received->status, sizeof(received->status), "%s", message->status);
	loop_quit(received->loop);
}

static void
test_datagram_carries_sender_pid(void **state)
{
	(void)state;
	struct received received = {0};
	assert_int_equal(loop_new(&received.loop), 0);
	struct notify *notify;
	assert_int_equal(notify_open(received.loop, on_message, &received, &notify), 0);
	const char *address = notify_address(notify);
	assert_int_equal(address[0], '@');

	struct sockaddr_un to = {.sun_family = AF_UNIX};
	size_t length = strlen(address);
	memcpy(to.sun_path, address, length);
	to.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	const char text[] = "READY=1\nSTATUS=up";
	assert_int_equal(sendto(fd, text, sizeof(text) - 1, 0, (struct sockaddr *)&to,
				(socklen_t)(offsetof(struct sockaddr_un, sun_path) + length)),
			 (ssize_t)sizeof(text) - 1);
	assert_int_equal(loop_run(received.loop), 0);
	assert_int_equal(received.pid, getpid());
	assert_true(received.ready);
	assert_string_equal(received.status, "up");
	close(fd);
	notify_close(notify);
	loop_free(received.loop);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_datagram_carries_sender_pid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
