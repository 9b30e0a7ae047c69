/* cpu_interval: each process's CPU% over the time since the previous capture, from the sample
 * kept per (pid, start time). Pure arithmetic on captured trees: no /proc, no clock. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "metrics/metrics.h"

/* One process as it was at a capture. */
struct cpu_sample {
	pid_t pid;
	uint64_t start_ticks;  /* with pid, identifies the process across pid reuse */
	double processor_time; /* seconds of CPU, user + system */
	double elapsed_time;   /* seconds since it started, read right after processor_time */
	double percent;	       /* over the window that ended with this sample */
};

/* The samples of the previous capture, sorted by (pid, start_ticks). Zero-initialised = empty. */
struct cpu_interval {
	struct cpu_sample *samples;
	size_t count;
};

/* The percent of one CPU that a process used between before and now (at processor_time and
 * elapsed_time), given the same process. Negative if the window can't be measured: too short,
 * or a counter that went back. */
double cpu_interval_percent(const struct cpu_sample *before, double processor_time,
			    double elapsed_time);

/* Sets processor_utilization_recent (and has_recent) of every process in tree, then keeps
 * tree's samples as the previous capture. A process without a previous sample (the first
 * capture, or one that started since, or a reused pid) gets its lifetime percent: its whole
 * life is then the window, which for a process newer than the previous capture is exactly the
 * time since it. Returns 0, or -ENOMEM (then the values are the lifetime ones and the previous
 * samples stay). */
int cpu_interval_update(struct cpu_interval *interval, struct metrics_tree *tree);
void cpu_interval_free(struct cpu_interval *interval);
