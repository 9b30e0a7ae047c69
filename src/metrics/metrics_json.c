/* metrics_json: a captured tree as the SPEC's pid-keyed JSON object (process-metrics names). */
#include "metrics/metrics_json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json_out.h"

/* The encoder is hand-written (json_out), not built from jansson values: see json_out.c for
 * the measurement. The shape is fixed and only the command is a string. */

static void
out_process(struct json_out *out, const struct metrics_process *p)
{
	/* Times have a clock tick's resolution (10 ms): more digits would be noise. */
	json_out_printf(
	    out,
	    "\"%d\":{\"process_id\":%d,\"parent_process_id\":%d,\"process_group_id\":%d,"
	    "\"processor_utilization\":%.2f,\"processor_utilization_recent\":%.2f,"
	    "\"virtual_size\":%" PRIu64 ",\"resident_size\":%" PRIu64 ",\"total_size\":%" PRIu64
	    ",\"processor_time\":%.2f,\"elapsed_time\":%.3f,"
	    "\"command\":",
	    (int)p->pid, (int)p->pid, (int)p->ppid, (int)p->pgid, p->processor_utilization,
	    p->has_recent ? p->processor_utilization_recent : p->processor_utilization,
	    p->virtual_size, p->resident_size, metrics_total_size(p), p->processor_time,
	    p->elapsed_time);
	json_out_string(out, p->command);
	if (!p->has_memory) {
		json_out_printf(out, ",\"memory\":null}");
		return;
	}
	const struct metrics_memory *m = &p->memory;
	json_out_printf(
	    out,
	    ",\"memory\":{\"resident_size\":%" PRIu64 ",\"proportional_size\":%" PRIu64
	    ",\"shared_clean_size\":%" PRIu64 ",\"shared_dirty_size\":%" PRIu64
	    ",\"private_clean_size\":%" PRIu64 ",\"private_dirty_size\":%" PRIu64
	    ",\"referenced_size\":%" PRIu64 ",\"anonymous_size\":%" PRIu64 ",\"swap_size\":%" PRIu64
	    ",\"proportional_swap_size\":%" PRIu64 ",\"unique_size\":%" PRIu64
	    ",\"minor_faults\":%" PRIu64 ",\"major_faults\":%" PRIu64 "}}",
	    m->resident_size, m->proportional_size, m->shared_clean_size, m->shared_dirty_size,
	    m->private_clean_size, m->private_dirty_size, m->referenced_size, m->anonymous_size,
	    m->swap_size, m->proportional_swap_size, m->unique_size, p->minor_faults,
	    p->major_faults);
}

ssize_t
metrics_json_encode(const struct metrics_tree *tree, char **ret_text)
{
	struct json_out out = {0};
	json_out_printf(&out, "{");
	for (size_t i = 0; i < tree->count; i++) {
		if (i > 0)
			json_out_printf(&out, ",");
		out_process(&out, &tree->processes[i]);
	}
	json_out_printf(&out, "}");
	return json_out_finish(&out, ret_text);
}

static uint64_t
size_field(const json_t *object, const char *key)
{
	json_t *value = json_object_get(object, key);
	return json_is_integer(value) && json_integer_value(value) > 0
		   ? (uint64_t)json_integer_value(value)
		   : 0;
}

static double
real_field(const json_t *object, const char *key)
{
	json_t *value = json_object_get(object, key);
	return json_is_number(value) ? json_number_value(value) : 0.0;
}

static int
process_from_json(const json_t *object, struct metrics_process *ret_process)
{
	json_t *pid = json_object_get(object, "process_id");
	json_t *command = json_object_get(object, "command");
	if (!json_is_object(object) || !json_is_integer(pid) || !json_is_string(command))
		return -EINVAL;
	struct metrics_process p = {
	    .pid = (pid_t)json_integer_value(pid),
	    .ppid = (pid_t)size_field(object, "parent_process_id"),
	    .pgid = (pid_t)size_field(object, "process_group_id"),
	    .processor_utilization = real_field(object, "processor_utilization"),
	    .virtual_size = size_field(object, "virtual_size"),
	    .resident_size = size_field(object, "resident_size"),
	    .processor_time = real_field(object, "processor_time"),
	    .elapsed_time = real_field(object, "elapsed_time"),
	};
	/* From an aerie supervisor; Falcon's has only the lifetime value. */
	json_t *recent = json_object_get(object, "processor_utilization_recent");
	p.has_recent = json_is_number(recent);
	p.processor_utilization_recent =
	    p.has_recent ? json_number_value(recent) : p.processor_utilization;
	json_t *memory = json_object_get(object, "memory");
	if (json_is_object(memory)) {
		p.has_memory = true;
		p.memory.resident_size = size_field(memory, "resident_size");
		p.memory.proportional_size = size_field(memory, "proportional_size");
		p.memory.unique_size = size_field(memory, "unique_size");
		p.minor_faults = size_field(memory, "minor_faults");
		p.major_faults = size_field(memory, "major_faults");
	}
	p.command = strdup(json_string_value(command));
	if (!p.command)
		return -ENOMEM;
	*ret_process = p;
	return 0;
}

/* Appends processes[i] and its descendants to out, depth first. Depth is bounded by count, as
 * each process is placed once. */
static void
place_subtree(struct metrics_process *in, size_t count, bool *placed, size_t i, unsigned depth,
	      struct metrics_tree *out)
{
	in[i].depth = depth;
	placed[i] = true;
	out->processes[out->count++] = in[i];
	for (size_t j = 0; j < count; j++)
		if (!placed[j] && in[j].ppid == in[i].pid)
			place_subtree(in, count, placed, j, depth + 1, out);
}

int
metrics_json_parse(const json_t *object, struct metrics_tree *ret_tree)
{
	if (!json_is_object(object))
		return -EINVAL;
	size_t count = json_object_size(object);
	struct metrics_process *in = calloc(count ? count : 1, sizeof(*in));
	bool *placed = calloc(count ? count : 1, sizeof(*placed));
	struct metrics_tree out = {.processes = calloc(count ? count : 1, sizeof(*in)),
				   .capacity = count};
	int r = in && placed && out.processes ? 0 : -ENOMEM;
	size_t n = 0;
	const char *key;
	json_t *value;
	json_object_foreach((json_t *)object, key, value)
	{
		if (r < 0)
			break;
		r = process_from_json(value, &in[n]);
		if (r == 0)
			n++;
	}
	if (r == 0) {
		/* Roots are the processes whose parent is not in the set (the host). */
		for (size_t i = 0; i < n; i++) {
			bool has_parent = false;
			for (size_t j = 0; j < n && !has_parent; j++)
				has_parent = in[j].pid == in[i].ppid && j != i;
			if (!has_parent && !placed[i])
				place_subtree(in, n, placed, i, 0, &out);
		}
		for (size_t i = 0; i < n; i++) /* a cycle, which /proc can't make; kept anyway */
			if (!placed[i])
				place_subtree(in, n, placed, i, 0, &out);
		*ret_tree = out;
	} else {
		for (size_t i = 0; i < n; i++)
			free(in[i].command);
		free(out.processes);
	}
	free(in);
	free(placed);
	return r;
}
