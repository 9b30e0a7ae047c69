/* loop: one thread's wait point: epoll for fds, a min-heap of deadlines for timers.
 *
 * Hand-written (as redis' ae.c is) because it is the core of the host and small: libevent or
 * libuv would bring their own child-process handling, which fights a subreaper that must reap
 * every pid itself. Timers need no timerfd: the earliest deadline becomes epoll_wait's timeout,
 * so an idle host sleeps in one syscall with no periodic wake-up. */
#include "lib/loop.h"
#include "lib/limits.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

struct watch {
	loop_io_fn fn;
	void *data;
	uint32_t events; /* 0: not watched */
};

struct loop {
	int epoll_fd;
	bool quit;
	/* Indexed by fd, as in ae.c: a callback that removes another fd clears its slot, and the
	 * dispatch skips slots that are clear, so no stale pointer is ever called. */
	struct watch *watches;
	size_t watch_capacity;
	struct loop_timer **heap;
	size_t heap_count, heap_capacity;
	int signal_fd; /* -1: no loop_signals */
	loop_signal_fn signal_fn;
	void *signal_data;
	loop_hook_fn before_wait;
	void *before_wait_data;
};

uint64_t
loop_now(void)
{
	struct timespec now;
	(void)clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

double
loop_now_seconds(void)
{
	return (double)loop_now() / 1e9;
}

double
loop_realtime_seconds(void)
{
	struct timespec now;
	(void)clock_gettime(CLOCK_REALTIME, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

int
loop_new(struct loop **ret_loop)
{
	struct loop *loop = calloc(1, sizeof(*loop));
	if (!loop)
		return -ENOMEM;
	loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epoll_fd < 0) {
		int r = -errno;
		free(loop);
		return r;
	}
	loop->signal_fd = -1;
	*ret_loop = loop;
	return 0;
}

void
loop_free(struct loop *loop)
{
	if (!loop)
		return;
	close(loop->epoll_fd);
	if (loop->signal_fd >= 0)
		close(loop->signal_fd);
	for (size_t i = 0; i < loop->heap_count; i++)
		loop->heap[i]->heap_index = 0;
	free(loop->watches);
	free(loop->heap);
	free(loop);
}

int
loop_add(struct loop *loop, int fd, uint32_t events, loop_io_fn fn, void *data)
{
	if (fd < 0)
		return -EBADF;
	if ((size_t)fd >= loop->watch_capacity) {
		size_t capacity = loop->watch_capacity ? loop->watch_capacity : 64;
		while (capacity <= (size_t)fd)
			capacity *= 2;
		struct watch *watches = reallocarray(loop->watches, capacity, sizeof(*watches));
		if (!watches)
			return -ENOMEM;
		for (size_t i = loop->watch_capacity; i < capacity; i++)
			watches[i] = (struct watch){0};
		loop->watches = watches;
		loop->watch_capacity = capacity;
	}
	struct epoll_event event = {.events = events, .data.fd = fd};
	if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &event) < 0)
		return -errno;
	loop->watches[fd] = (struct watch){fn, data, events ? events : EPOLLHUP};
	return 0;
}

int
loop_modify(struct loop *loop, int fd, uint32_t events)
{
	if (fd < 0 || (size_t)fd >= loop->watch_capacity || !loop->watches[fd].events)
		return -EBADF;
	/* Callers say what they want after each event; most times it is what they have. A
	 * one-shot watch is the exception: the MOD is what arms it again. */
	if (loop->watches[fd].events == (events ? events : EPOLLHUP) && !(events & EPOLLONESHOT))
		return 0;
	struct epoll_event event = {.events = events, .data.fd = fd};
	if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_MOD, fd, &event) < 0)
		return -errno;
	loop->watches[fd].events = events ? events : EPOLLHUP;
	return 0;
}

void
loop_remove(struct loop *loop, int fd)
{
	if (fd < 0 || (size_t)fd >= loop->watch_capacity || !loop->watches[fd].events)
		return;
	/* Fails only if fd was closed already, which removed it from the set anyway. */
	(void)epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
	loop->watches[fd] = (struct watch){0};
}

void
loop_timer_init(struct loop_timer *timer, loop_timer_fn fn, void *data)
{
	*timer = (struct loop_timer){.fn = fn, .data = data};
}

bool
loop_timer_armed(const struct loop_timer *timer)
{
	return timer->heap_index != 0;
}

static void
heap_place(struct loop *loop, size_t i, struct loop_timer *timer)
{
	loop->heap[i] = timer;
	timer->heap_index = i + 1;
}

static void
heap_sift_up(struct loop *loop, size_t i)
{
	struct loop_timer *timer = loop->heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (loop->heap[parent]->deadline <= timer->deadline)
			break;
		heap_place(loop, i, loop->heap[parent]);
		i = parent;
	}
	heap_place(loop, i, timer);
}

static void
heap_sift_down(struct loop *loop, size_t i)
{
	struct loop_timer *timer = loop->heap[i];
	for (;;) {
		size_t child = 2 * i + 1;
		if (child >= loop->heap_count)
			break;
		if (child + 1 < loop->heap_count &&
		    loop->heap[child + 1]->deadline < loop->heap[child]->deadline)
			child++;
		if (timer->deadline <= loop->heap[child]->deadline)
			break;
		heap_place(loop, i, loop->heap[child]);
		i = child;
	}
	heap_place(loop, i, timer);
}

void
loop_timer_stop(struct loop *loop, struct loop_timer *timer)
{
	if (!timer->heap_index)
		return;
	size_t i = timer->heap_index - 1;
	timer->heap_index = 0;
	struct loop_timer *last = loop->heap[--loop->heap_count];
	if (last == timer)
		return;
	loop->heap[i] = last;
	last->heap_index = i + 1;
	heap_sift_down(loop, i);
	heap_sift_up(loop, last->heap_index - 1);
}

int
loop_timer_start(struct loop *loop, struct loop_timer *timer, double seconds)
{
	loop_timer_stop(loop, timer);
	if (loop->heap_count == loop->heap_capacity) {
		size_t capacity = loop->heap_capacity ? loop->heap_capacity * 2 : 32;
		struct loop_timer **heap = reallocarray(loop->heap, capacity, sizeof(*heap));
		if (!heap)
			return -ENOMEM;
		loop->heap = heap;
		loop->heap_capacity = capacity;
	}
	if (seconds < 0)
		seconds = 0;
	timer->deadline = loop_now() + (uint64_t)(seconds * 1e9);
	loop->heap[loop->heap_count] = timer;
	timer->heap_index = ++loop->heap_count;
	heap_sift_up(loop, loop->heap_count - 1);
	return 0;
}

/* Milliseconds until the earliest deadline, rounded up so that the wait never ends early and
 * spins; -1 (forever) with no timer. */
static int
wait_timeout(struct loop *loop)
{
	if (loop->heap_count == 0)
		return -1;
	uint64_t now = loop_now(), deadline = loop->heap[0]->deadline;
	if (deadline <= now)
		return 0;
	uint64_t ms = (deadline - now + 999999) / 1000000;
	return ms > 86400000 ? 86400000 : (int)ms;
}

static void
run_due_timers(struct loop *loop)
{
	uint64_t now = loop_now();
	while (loop->heap_count > 0 && loop->heap[0]->deadline <= now && !loop->quit) {
		struct loop_timer *timer = loop->heap[0];
		loop_timer_stop(loop, timer);
		timer->fn(loop, timer->data);
	}
}

static void
on_signal_fd(struct loop *loop, int fd, uint32_t events, void *data)
{
	(void)events;
	(void)data;
	struct signalfd_siginfo info;
	for (;;) {
		ssize_t n = read(fd, &info, sizeof(info));
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(info))
			return;
		loop->signal_fn(loop, (int)info.ssi_signo, loop->signal_data);
	}
}

int
loop_signals(struct loop *loop, const int *signals, size_t count, loop_signal_fn fn, void *data)
{
	if (loop->signal_fd >= 0)
		return -EBUSY;
	sigset_t mask;
	sigemptyset(&mask);
	for (size_t i = 0; i < count; i++)
		if (sigaddset(&mask, signals[i]) < 0)
			return -errno;
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	int fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	loop->signal_fn = fn;
	loop->signal_data = data;
	int r = loop_add(loop, fd, EPOLLIN, on_signal_fd, NULL);
	if (r < 0) {
		close(fd);
		return r;
	}
	loop->signal_fd = fd;
	return 0;
}

void
loop_before_wait(struct loop *loop, loop_hook_fn fn, void *data)
{
	loop->before_wait = fn;
	loop->before_wait_data = data;
}

int
loop_run(struct loop *loop)
{
	struct epoll_event events[LOOP_EVENTS_PER_WAIT];
	loop->quit = false;
	while (!loop->quit) {
		if (loop->before_wait) {
			loop->before_wait(loop, loop->before_wait_data);
			if (loop->quit)
				break;
		}
		int n =
		    epoll_wait(loop->epoll_fd, events, LOOP_EVENTS_PER_WAIT, wait_timeout(loop));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n && !loop->quit; i++) {
			int fd = events[i].data.fd;
			struct watch *watch = &loop->watches[fd];
			if (!watch->events)
				continue; /* removed by an earlier callback of this batch */
			watch->fn(loop, fd, events[i].events, watch->data);
		}
		run_due_timers(loop);
	}
	return 0;
}

void
loop_quit(struct loop *loop)
{
	loop->quit = true;
}
