/* proc_parse: pure parsers of the /proc files a capture reads, for metrics.c, tests and fuzzing. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "metrics/metrics.h"

/* The fields of /proc/PID/stat that aerie uses, in the kernel's units (ticks, bytes, pages). */
struct metrics_stat {
	pid_t pid;
	char comm[64]; /* the kernel caps it at 16; room for a longer one from a fixture */
	char state;
	pid_t ppid;
	pid_t pgid;
	uint64_t minor_faults;
	uint64_t major_faults;
	uint64_t utime_ticks;
	uint64_t stime_ticks;
	uint64_t num_threads;
	uint64_t start_ticks; /* since boot */
	uint64_t vsize_bytes;
	uint64_t rss_pages;
	uint64_t start_code;  /* of the program's text; with start_stack, new at each exec */
	uint64_t start_stack; /* 0 for both where the reader may not trace the process */
};

/* Each returns 0 or -EINVAL and leaves its ret_* untouched on failure. */
int metrics_parse_stat(const char *text, struct metrics_stat *ret_stat);
int metrics_parse_smaps_rollup(const char *text, struct metrics_memory *ret_memory);
/* The second field of /proc/PID/statm: resident pages. */
int metrics_parse_statm(const char *text, uint64_t *ret_resident_pages);
/* Parses a whitespace separated list of pids; calls add for each. Returns the count or -EINVAL. */
int metrics_parse_children(const char *text, int (*add)(pid_t pid, void *data), void *data);
/* Turns the NUL separated argv of /proc/PID/cmdline into one malloc'd string joined by spaces;
 * when empty (kernel threads, zombies) gives "[comm]" like ps, with " <defunct>" for zombies. */
char *metrics_command_from_cmdline(const char *cmdline, size_t length, const char *comm,
				   char state);
