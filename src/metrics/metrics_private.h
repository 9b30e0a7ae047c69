/* metrics_private: what metrics.c (reading one process), metrics_cache.c (fds kept open between
 * captures) and metrics_pool.c (the threads and the order of a capture) share. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "metrics/metrics.h"
#include "metrics/proc_parse.h"

/* One thread's reusable buffer for a /proc file, NUL-terminated after each read. */
struct metrics_buffer {
	char *data;
	size_t size;
};

/* Growing arrays of pids: a process's children, as one thread reads them. */
struct metrics_pids {
	pid_t *pids;
	size_t count, capacity;
};

/* What every thread of one capture reads and never writes. */
struct metrics_walk_context {
	enum metrics_walk walk;
	double ticks_per_second;
	uint64_t page_size;
	double started; /* CLOCK_BOOTTIME seconds when the capture began */
	/* Only for METRICS_WALK_SCAN: every (ppid, pid) on the system, sorted by ppid. */
	struct metrics_edge {
		pid_t ppid;
		pid_t pid;
	} * edges;
	size_t edge_count;
};

/* A process as the cache knows it. The fds refer to the process itself, not to its pid: once it
 * has exited, reads through them fail (ESRCH or nothing), whatever now has the pid. */
struct metrics_cache_entry {
	pid_t pid;
	/* The identity that the kept files and the command belong to: the start time tells a
	 * reused pid, the rest an exec (which keeps pid and start time). */
	uint64_t start_ticks, start_code, start_stack;
	char comm[64];
	int stat_fd, smaps_fd, children_fd; /* -1 when not kept; children: the main task's */
	char *cmdline;			    /* the raw NUL-separated argv; NULL when not kept */
	size_t cmdline_length;
	double cmdline_read; /* the started of the capture that read it */
	uint64_t seen;	     /* the capture that last claimed it: at most one thread per capture */
};

struct metrics_cache;

int metrics_cache_new(size_t max_fds, struct metrics_cache **ret_cache);
void metrics_cache_free(struct metrics_cache *cache);
/* Under the capture's lock: the entry for pid, created if needed, or NULL (out of memory, or
 * already claimed by this capture: a pid seen twice while it was being reused). */
struct metrics_cache_entry *metrics_cache_claim(struct metrics_cache *cache, pid_t pid,
						uint64_t capture);
/* Takes fd into *slot if the budget has room (true), else leaves it to the caller. */
bool metrics_cache_keep(struct metrics_cache *cache, int *slot, int fd);
void metrics_cache_close(struct metrics_cache *cache, int *slot);
/* Closes the entry's fds and drops its command: it is another process now. */
void metrics_cache_forget(struct metrics_cache *cache, struct metrics_cache_entry *entry);
/* After a capture: drops the entries it did not claim (processes gone or out of the tree). */
void metrics_cache_sweep(struct metrics_cache *cache, uint64_t capture);
/* Drops every entry: no fd left open. */
void metrics_cache_clear(struct metrics_cache *cache);
size_t metrics_cache_open_fds(const struct metrics_cache *cache);

/* Reads one process into ret_process (and its stat into ret_stat), through the entry's kept
 * files where it has them (entry may be NULL: no cache). Returns 0, -ESRCH if it is gone (not
 * an error for the capture), or another -errno. */
int metrics_read_process(const struct metrics_walk_context *context, struct metrics_buffer *buffer,
			 struct metrics_cache *cache, struct metrics_cache_entry *entry, pid_t pid,
			 unsigned depth, struct metrics_process *ret_process,
			 struct metrics_stat *ret_stat);
/* Appends the children of pid to pids, in the order the kernel lists them (or pid order). */
int metrics_read_children(const struct metrics_walk_context *context, struct metrics_buffer *buffer,
			  struct metrics_cache *cache, struct metrics_cache_entry *entry, pid_t pid,
			  uint64_t num_threads, struct metrics_pids *pids);
/* Sets up context: the clock, the page size, and for the scan walk the edges. */
int metrics_walk_context_init(struct metrics_walk_context *context, struct metrics_buffer *buffer,
			      enum metrics_walk walk);
void metrics_walk_context_finish(struct metrics_walk_context *context);
int metrics_buffer_init(struct metrics_buffer *buffer);
int metrics_grow(void **array, size_t *capacity, size_t needed, size_t element_size);
