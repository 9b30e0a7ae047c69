/* metrics_json: a captured tree as the SPEC's pid-keyed JSON object (process-metrics names). */
#include "metrics_json.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *
memory_json(const struct metrics_process *process)
{
	const struct metrics_memory *m = &process->memory;
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
			 "resident_size", (json_int_t)m->resident_size,
			 "proportional_size", (json_int_t)m->proportional_size,
			 "shared_clean_size", (json_int_t)m->shared_clean_size,
			 "shared_dirty_size", (json_int_t)m->shared_dirty_size,
			 "private_clean_size", (json_int_t)m->private_clean_size,
			 "private_dirty_size", (json_int_t)m->private_dirty_size,
			 "referenced_size", (json_int_t)m->referenced_size,
			 "anonymous_size", (json_int_t)m->anonymous_size,
			 "swap_size", (json_int_t)m->swap_size,
			 "proportional_swap_size", (json_int_t)m->proportional_swap_size,
			 "unique_size", (json_int_t)m->unique_size,
			 "minor_faults", (json_int_t)process->minor_faults,
			 "major_faults", (json_int_t)process->major_faults);
}

/* JSON strings must be UTF-8 but argv is any bytes: where it isn't valid, bytes outside ASCII
 * become '?', which is what ps shows for what it can't print. */
static json_t *
command_json(const char *command)
{
	json_t *string = json_string(command);
	if (string)
		return string;
	char *ascii = strdup(command);
	if (!ascii)
		return NULL;
	for (char *c = ascii; *c; c++)
		if ((unsigned char)*c >= 0x80)
			*c = '?';
	string = json_string(ascii);
	free(ascii);
	return string;
}

static json_t *
process_json(const struct metrics_process *p)
{
	json_t *command = command_json(p->command);
	if (!command)
		return NULL;
	json_t *memory = p->has_memory ? memory_json(p) : json_null();
	if (!memory) {
		json_decref(command);
		return NULL;
	}
	/* "o" steals the references, also when json_pack fails. */
	return json_pack("{s:i,s:i,s:i,s:f,s:I,s:I,s:f,s:f,s:o,s:o}",
			 "process_id", (int)p->pid,
			 "parent_process_id", (int)p->ppid,
			 "process_group_id", (int)p->pgid,
			 "processor_utilization", p->processor_utilization,
			 "virtual_size", (json_int_t)p->virtual_size,
			 "resident_size", (json_int_t)p->resident_size,
			 "processor_time", p->processor_time,
			 "elapsed_time", p->elapsed_time,
			 "command", command,
			 "memory", memory);
}

json_t *
metrics_json_tree(const struct metrics_tree *tree)
{
	json_t *object = json_object();
	if (!object)
		return NULL;
	for (size_t i = 0; i < tree->count; i++) {
		char key[16];
		snprintf(key, sizeof(key), "%d", (int)tree->processes[i].pid);
		json_t *process = process_json(&tree->processes[i]);
		if (!process || json_object_set_new(object, key, process) < 0) {
			json_decref(object);
			return NULL;
		}
	}
	return object;
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
