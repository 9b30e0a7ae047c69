/* metrics_json: a captured tree as the SPEC's pid-keyed JSON object (process-metrics names). */
#include "metrics_json.h"

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
