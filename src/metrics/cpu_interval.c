/* cpu_interval: each process's CPU% over the time since the previous capture (see the header). */
#include "metrics/cpu_interval.h"
#include "lib/limits.h"

#include <errno.h>
#include <stdlib.h>

/* Why the lifetime percent and not "a short sample" for a process seen for the first time: a
 * short sample means two reads some 100 ms apart, and the supervisor process must not block
 * (every other client waits) nor hold a reply back for it. It would also be coarse: /proc
 * counts CPU in 10 ms ticks, so a 100 ms sample reads in steps of 10 %. The lifetime percent
 * costs nothing and is exact for the common case, a worker started since the previous capture;
 * for the very first capture it is what `ps` shows, and the next capture is a true interval. */

static int
compare_samples(const void *a, const void *b)
{
	const struct cpu_sample *x = a, *y = b;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return (x->start_ticks > y->start_ticks) - (x->start_ticks < y->start_ticks);
}

double
cpu_interval_percent(const struct cpu_sample *before, double processor_time, double elapsed_time)
{
	double window = elapsed_time - before->elapsed_time;
	double used = processor_time - before->processor_time;
	/* A counter can't go back for one process: if it did, the sample is not comparable. */
	if (used < 0 || window < 0 || window < CPU_INTERVAL_MIN_SECONDS)
		return -1.0;
	return used / window * 100.0;
}

int
cpu_interval_update(struct cpu_interval *interval, struct metrics_tree *tree)
{
	struct cpu_sample *samples = calloc(tree->count ? tree->count : 1, sizeof(*samples));
	for (size_t i = 0; i < tree->count; i++) {
		struct metrics_process *p = &tree->processes[i];
		p->processor_utilization_recent = p->processor_utilization;
		p->has_recent = true;
		if (!samples)
			continue;
		struct cpu_sample now = {.pid = p->pid,
					 .start_ticks = p->start_ticks,
					 .processor_time = p->processor_time,
					 .elapsed_time = p->elapsed_time,
					 .percent = p->processor_utilization};
		const struct cpu_sample *before =
		    interval->count ? bsearch(&now, interval->samples, interval->count, sizeof(now),
					      compare_samples)
				    : NULL;
		if (before) {
			double window = p->elapsed_time - before->elapsed_time;
			double percent =
			    cpu_interval_percent(before, p->processor_time, p->elapsed_time);
			if (percent >= 0) {
				now.percent = percent;
			} else if (window >= 0 && window < CPU_INTERVAL_MIN_SECONDS &&
				   p->processor_time >= before->processor_time) {
				/* Too soon to measure: the last window's value, and its sample
				 * stays the baseline so that the next window is long enough. */
				now = *before;
			}
			/* else a counter went back: start again from this sample, as for a
			 * new process. */
		}
		p->processor_utilization_recent = now.percent;
		samples[i] = now;
	}
	if (!samples)
		return -ENOMEM;
	qsort(samples, tree->count, sizeof(*samples), compare_samples);
	free(interval->samples);
	interval->samples = samples;
	interval->count = tree->count;
	return 0;
}

void
cpu_interval_free(struct cpu_interval *interval)
{
	free(interval->samples);
	*interval = (struct cpu_interval){0};
}
