/* loop: one thread's wait point: epoll for fds, a min-heap of deadlines for timers. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;

typedef void (*loop_io_fn)(struct loop *loop, int fd, uint32_t events, void *data);
typedef void (*loop_timer_fn)(struct loop *loop, void *data);
typedef void (*loop_signal_fn)(struct loop *loop, int signal, void *data);
typedef void (*loop_hook_fn)(struct loop *loop, void *data);

/* A timer lives inside its owner (a worker, a client); the loop only points at it, so the owner
 * must cancel it before freeing. */
struct loop_timer {
	uint64_t deadline; /* CLOCK_MONOTONIC, nanoseconds */
	size_t heap_index; /* 0 when not armed, else position + 1 */
	loop_timer_fn fn;
	void *data;
};

int loop_new(struct loop **ret_loop);
void loop_free(struct loop *loop);

/* events are EPOLLIN/EPOLLOUT/…; fn runs with the ready events. fd must not be watched yet. */
int loop_add(struct loop *loop, int fd, uint32_t events, loop_io_fn fn, void *data);
int loop_modify(struct loop *loop, int fd, uint32_t events);
/* Safe from inside any callback, also for an fd with events pending in the current batch. */
void loop_remove(struct loop *loop, int fd);

void loop_timer_init(struct loop_timer *timer, loop_timer_fn fn, void *data);
/* (Re)arms timer to fire once, seconds from now. */
int loop_timer_start(struct loop *loop, struct loop_timer *timer, double seconds);
void loop_timer_stop(struct loop *loop, struct loop_timer *timer);
bool loop_timer_armed(const struct loop_timer *timer);

/* Delivers signals as loop events, written once for every process of aerie: blocks them, so
 * that none interrupts anything, and reads them from a signalfd the loop watches (and closes in
 * loop_free). fn runs once per signal read. Synchronous faults (SEGV, BUS, FPE, ILL, ABRT) do
 * not belong here. One set per loop. Returns 0 or -errno. */
int loop_signals(struct loop *loop, const int *signals, size_t count, loop_signal_fn fn,
		 void *data);

/* fn runs before each wait, after the callbacks of the turn (redis ae.c's beforeSleep): where
 * work that callbacks queued is done, so that no callback re-enters another. One per loop. */
void loop_before_wait(struct loop *loop, loop_hook_fn fn, void *data);

/* Runs until loop_quit; returns 0, or -errno if epoll itself fails. */
int loop_run(struct loop *loop);
void loop_quit(struct loop *loop);

/* CLOCK_MONOTONIC in nanoseconds, and in seconds. */
uint64_t loop_now(void);
double loop_now_seconds(void);
/* CLOCK_REALTIME in seconds: the Unix time that status and logs show. */
double loop_realtime_seconds(void);
