/* Unit tests of loop.c: fd callbacks, removal during a batch, the timer heap. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "lib/loop.h"

struct order {
	int fired[64];
	size_t count;
	struct loop *loop;
};

struct tagged {
	struct order *order;
	int tag;
};

static void
on_timer(struct loop *loop, void *data)
{
	struct tagged *t = data;
	t->order->fired[t->order->count++] = t->tag;
	if (t->tag < 0)
		loop_quit(loop);
}

static void
test_timers_fire_in_deadline_order(void **state)
{
	(void)state;
	struct loop *loop;
	assert_int_equal(loop_new(&loop), 0);
	struct order order = {.loop = loop};
	double delays[] = {0.030, 0.010, 0.050, 0.020, 0.040, 0.005};
	struct tagged tags[6];
	struct loop_timer timers[6];
	for (int i = 0; i < 6; i++) {
		tags[i] = (struct tagged){&order, i};
		loop_timer_init(&timers[i], on_timer, &tags[i]);
		assert_int_equal(loop_timer_start(loop, &timers[i], delays[i]), 0);
	}
	/* Stopping one and re-arming another reorders the heap. */
	loop_timer_stop(loop, &timers[4]);
	assert_false(loop_timer_armed(&timers[4]));
	assert_int_equal(loop_timer_start(loop, &timers[2], 0.001), 0);
	struct tagged last = {&order, -1};
	struct loop_timer quit;
	loop_timer_init(&quit, on_timer, &last);
	assert_int_equal(loop_timer_start(loop, &quit, 0.060), 0);

	double start = loop_now_seconds();
	assert_int_equal(loop_run(loop), 0);
	assert_true(loop_now_seconds() - start >= 0.060);
	int expected[] = {2, 5, 1, 3, 0, -1};
	assert_int_equal(order.count, 6);
	assert_memory_equal(order.fired, expected, sizeof(expected));
	loop_free(loop);
}

struct pair {
	struct loop *loop;
	int fds[2][2];
	int calls;
};

/* Whichever pipe is served first removes and closes the other: its pending event in the same
 * batch must not be delivered. */
static void
on_readable(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct pair *pair = data;
	(void)events;
	pair->calls++;
	int other = fd == pair->fds[0][0] ? pair->fds[1][0] : pair->fds[0][0];
	loop_remove(loop, other);
	loop_remove(loop, fd);
	loop_quit(loop);
}

static void
test_remove_during_batch(void **state)
{
	(void)state;
	struct pair pair = {0};
	assert_int_equal(loop_new(&pair.loop), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pipe2(pair.fds[i], O_CLOEXEC), 0);
		assert_int_equal(write(pair.fds[i][1], "x", 1), 1);
		assert_int_equal(loop_add(pair.loop, pair.fds[i][0], EPOLLIN, on_readable, &pair),
				 0);
	}
	assert_int_equal(loop_add(pair.loop, pair.fds[0][0], EPOLLIN, on_readable, &pair), -EEXIST);
	assert_int_equal(loop_run(pair.loop), 0);
	assert_int_equal(pair.calls, 1);
	for (int i = 0; i < 2; i++) {
		close(pair.fds[i][0]);
		close(pair.fds[i][1]);
	}
	loop_free(pair.loop);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_timers_fire_in_deadline_order),
	    cmocka_unit_test(test_remove_during_batch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
