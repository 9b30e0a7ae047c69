/* metrics: capture a process tree (a pid and its descendants) from /proc into plain structs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* From /proc/PID/smaps_rollup, in bytes. */
struct metrics_memory {
	uint64_t resident_size;
	uint64_t proportional_size;
	uint64_t shared_clean_size;
	uint64_t shared_dirty_size;
	uint64_t private_clean_size;
	uint64_t private_dirty_size;
	uint64_t referenced_size;
	uint64_t anonymous_size;
	uint64_t swap_size;
	uint64_t proportional_swap_size;
	uint64_t unique_size; /* private_clean + private_dirty */
};

struct metrics_process {
	pid_t pid;
	pid_t ppid;
	pid_t pgid;
	unsigned depth;		      /* 0 for the root; for tree display */
	double processor_utilization; /* percent, as `ps -o pcpu`: cpu time / elapsed */
	uint64_t virtual_size;	      /* bytes */
	uint64_t resident_size;	      /* bytes; smaps_rollup's Rss where readable */
	double processor_time;	      /* seconds, user + system */
	double elapsed_time;	      /* seconds since the process started */
	uint64_t start_ticks;	      /* identifies the process with its pid (pid reuse) */
	char *command;		      /* argv joined by spaces, or "[comm]" as ps shows it */
	bool has_memory;	      /* false where smaps_rollup can't be read */
	struct metrics_memory memory;
	uint64_t minor_faults;
	uint64_t major_faults;
	/* Percent over the time since the previous capture where has_recent (cpu_interval.c, in
	 * the supervisor process); without it the encoder writes processor_utilization. */
	double processor_utilization_recent;
	bool has_recent;
};

/* Processes in depth-first order, root first, so that a tree prints top to bottom. */
struct metrics_tree {
	struct metrics_process *processes;
	size_t count;
	size_t capacity;
};

enum metrics_walk {
	/* Follow /proc/PID/task/TID/children: touches only the tree's own files. */
	METRICS_WALK_CHILDREN,
	/* Read every /proc/PID/stat to find parents: for kernels built without
	 * CONFIG_PROC_CHILDREN. Chosen automatically when the children files are missing. */
	METRICS_WALK_SCAN,
};

/* process-metrics 0.11's total_size: the PSS where memory was read, else the RSS. */
static inline uint64_t
metrics_total_size(const struct metrics_process *process)
{
	return process->has_memory ? process->memory.proportional_size : process->resident_size;
}

/* Captures root and every descendant. Processes that exit during the capture are left out.
 * Returns 0, -ESRCH if root does not exist, or another -errno. With a pool of threads for
 * the capture only, and no cache. */
int metrics_capture(pid_t root, enum metrics_walk walk, struct metrics_tree *ret_tree);

/* A reader that captures again and again (metrics_pool.c): the reads of different processes
 * spread over a few threads, one per CPU the process may run on (the caller's being one),
 * started at its first capture; and, with max_cached_fds > 0, a cache of the tree's /proc
 * files kept open and of its commands (metrics_cache.c). The same tree as metrics_capture, in
 * the same order, with the same values. */
struct metrics_reader;
int metrics_reader_new(size_t max_cached_fds, struct metrics_reader **ret_reader);
int metrics_reader_capture(struct metrics_reader *reader, pid_t root, enum metrics_walk walk,
			   struct metrics_tree *ret_tree);
/* Ends the threads and closes every kept fd: the reader costs nothing until its next capture. */
void metrics_reader_idle(struct metrics_reader *reader);
/* Threads running and fds kept (for tests and the log). */
size_t metrics_reader_threads(const struct metrics_reader *reader);
size_t metrics_reader_cached_fds(const struct metrics_reader *reader);
void metrics_reader_free(struct metrics_reader *reader);
void metrics_tree_free(struct metrics_tree *tree);
