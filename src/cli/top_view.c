/* top_view: the text of `aerie supervisor top` (see the header): rows grouped by service, each
 * worker with its descendants under it, workers sorted inside their service. */
#include "cli/top_view.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/escape.h"
#include "lib/format.h"

enum column {
	COLUMN_PID,
	COLUMN_NAME,
	COLUMN_STATE,
	COLUMN_GENERATION,
	COLUMN_RESTARTS,
	COLUMN_CPU,
	COLUMN_RSS,
	COLUMN_PSS,
	COLUMN_USS,
	COLUMN_UPTIME,
	COLUMN_REQUESTS, /* requests in flight (utilization = yes); shown only with it */
	COLUMN_COUNT,
};

static const struct {
	const char *title;
	int width;
	bool left;
} columns[COLUMN_COUNT] = {
    [COLUMN_PID] = {"PID", 7, false},		[COLUMN_NAME] = {"NAME", 10, true},
    [COLUMN_STATE] = {"STATE", 8, true},	[COLUMN_GENERATION] = {"GEN", 3, false},
    [COLUMN_RESTARTS] = {"RESTARTS", 8, false}, [COLUMN_CPU] = {"%CPU", 6, false},
    [COLUMN_RSS] = {"RSS", 8, false},		[COLUMN_PSS] = {"PSS", 8, false},
    [COLUMN_USS] = {"USS", 8, false},		[COLUMN_UPTIME] = {"UPTIME", 10, false},
    [COLUMN_REQUESTS] = {"REQS", 5, false},
};

/* Which columns stay as the terminal narrows: the first ones in this list. */
static const enum column priority[COLUMN_COUNT] = {
    COLUMN_PID, COLUMN_NAME,   COLUMN_CPU,	  COLUMN_STATE,	   COLUMN_RSS,	    COLUMN_USS,
    COLUMN_PSS, COLUMN_UPTIME, COLUMN_GENERATION, COLUMN_RESTARTS, COLUMN_REQUESTS,
};

#define COMMAND_MIN_WIDTH 12

struct render {
	size_t width; /* 0: no limit */
	bool shown[COLUMN_COUNT];
	struct top_lines *lines; /* where add_line goes */
	/* The tree's indices sorted by pid, and which processes are workers, so that a host of
	 * 10,000 workers costs a sort, not 10,000 scans of the tree. */
	const struct metrics_tree *tree;
	size_t *by_pid;
	bool *is_worker;
	bool failed;
};

const char *
top_sort_name(enum top_sort sort)
{
	static const char *const names[TOP_SORT_COUNT] = {
	    [TOP_SORT_CPU] = "cpu", [TOP_SORT_MEMORY] = "memory", [TOP_SORT_PID] = "pid"};
	return sort < TOP_SORT_COUNT ? names[sort] : "?";
}

void
top_lines_free(struct top_lines *lines)
{
	for (size_t i = 0; i < lines->count; i++)
		free(lines->lines[i].text);
	free(lines->lines);
	*lines = (struct top_lines){0};
}

static void add_line(struct render *render, enum top_style style, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends one line, cut to the width; with a width, what is not printable ASCII becomes '?'
 * so that a command can't move the cursor or take two cells. Without, control characters and
 * what is not UTF-8 do (the snapshot may go to a terminal too). */
static void
add_line(struct render *render, enum top_style style, const char *format, ...)
{
	struct top_lines *lines = render->lines;
	if (render->failed)
		return;
	char *text;
	va_list args;
	va_start(args, format);
	int n = vasprintf(&text, format, args);
	va_end(args);
	if (n < 0) {
		render->failed = true;
		return;
	}
	if (!render->width) {
		escape_controls(text, false);
	} else {
		for (char *p = text; *p; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
				*p = '?';
		if ((size_t)n > render->width)
			text[render->width] = '\0';
	}
	if (lines->count == lines->capacity) {
		size_t capacity = lines->capacity ? lines->capacity * 2 : 64;
		struct top_line *bigger = reallocarray(lines->lines, capacity, sizeof(*bigger));
		if (!bigger) {
			free(text);
			render->failed = true;
			return;
		}
		lines->lines = bigger;
		lines->capacity = capacity;
	}
	lines->lines[lines->count++] = (struct top_line){text, style, 0};
}

/* Whether a service of status has utilization = yes (its "utilization" sums). */
static bool
has_utilization(const json_t *status)
{
	const char *name;
	json_t *service;
	json_object_foreach(json_object_get(status, "services"), name, service)
	{
		if (json_object_get(service, "utilization"))
			return true;
	}
	return false;
}

static void
choose_columns(struct render *render, const json_t *status)
{
	size_t used = 0;
	bool requests = has_utilization(status);
	for (size_t i = 0; i < COLUMN_COUNT; i++) {
		enum column c = priority[i];
		if (c == COLUMN_REQUESTS && !requests)
			continue;
		size_t need = (size_t)columns[c].width + 1;
		if (render->width && used + need + 1 + COMMAND_MIN_WIDTH > render->width)
			break;
		used += need;
		render->shown[c] = true;
	}
}

/* The cells of one row, as text (empty: blank). */
struct cells {
	char text[COLUMN_COUNT][32];
};

/* Joins the shown cells and the command into one line. */
static void
add_row(struct render *render, enum top_style style, const struct cells *cells, const char *command)
{
	char line[512];
	size_t length = 0;
	for (int c = 0; c < COLUMN_COUNT; c++) {
		if (!render->shown[c])
			continue;
		int n = snprintf(line + length, sizeof(line) - length,
				 columns[c].left ? "%-*.*s " : "%*.*s ", columns[c].width,
				 columns[c].width, cells->text[c]);
		if (n > 0 && (size_t)n < sizeof(line) - length)
			length += (size_t)n;
	}
	add_line(render, style, "%s %s", line, command);
}

static void
add_titles(struct render *render)
{
	struct cells cells;
	for (int c = 0; c < COLUMN_COUNT; c++)
		snprintf(cells.text[c], sizeof(cells.text[c]), "%s", columns[c].title);
	add_row(render, TOP_STYLE_COLUMNS, &cells, "COMMAND");
}

static void
process_cells(const struct metrics_process *p, struct cells *cells)
{
	snprintf(cells->text[COLUMN_PID], sizeof(cells->text[0]), "%d", (int)p->pid);
	snprintf(cells->text[COLUMN_CPU], sizeof(cells->text[0]), "%.1f",
		 p->has_recent ? p->processor_utilization_recent : p->processor_utilization);
	format_size(p->resident_size, cells->text[COLUMN_RSS], sizeof(cells->text[0]));
	if (p->has_memory) {
		format_size(p->memory.proportional_size, cells->text[COLUMN_PSS],
			    sizeof(cells->text[0]));
		format_size(p->memory.unique_size, cells->text[COLUMN_USS], sizeof(cells->text[0]));
	} else {
		strcpy(cells->text[COLUMN_PSS], "-");
		strcpy(cells->text[COLUMN_USS], "-");
	}
	format_duration(p->elapsed_time, cells->text[COLUMN_UPTIME], sizeof(cells->text[0]));
}

/* The row just added is the process pid's (top's log pane finds the worker by it). */
static void
mark_pid(struct render *render, int pid)
{
	if (!render->failed && render->lines->count > 0)
		render->lines->lines[render->lines->count - 1].pid = pid;
}

/* A process row: cells from the process, the command indented under its parent as `ps f`
 * does. */
static void
add_process(struct render *render, const struct metrics_process *p, unsigned depth,
	    struct cells *cells)
{
	process_cells(p, cells);
	char command[4096];
	size_t length = 0;
	for (unsigned d = 1; d < depth && length < 256; d++)
		length += (size_t)sprintf(command + length, "    ");
	snprintf(command + length, sizeof(command) - length, "%s%s", depth ? " \\_ " : "",
		 p->command);
	add_row(render, TOP_STYLE_PLAIN, cells, command);
	mark_pid(render, (int)p->pid);
}

/* The processes under tree->processes[i], which come right after it in depth-first order. */
static size_t
subtree_end(const struct metrics_tree *tree, size_t i)
{
	size_t end = i + 1;
	while (end < tree->count && tree->processes[end].depth > tree->processes[i].depth)
		end++;
	return end;
}

static void
add_subtree(struct render *render, const struct metrics_tree *tree, size_t i, unsigned depth,
	    const struct cells *first)
{
	size_t end = subtree_end(tree, i);
	for (size_t j = i; j < end; j++) {
		struct cells cells = {0};
		if (j == i)
			cells = *first;
		add_process(render, &tree->processes[j],
			    depth + tree->processes[j].depth - tree->processes[i].depth, &cells);
	}
}

static long long
integer(const json_t *object, const char *key)
{
	return json_integer_value(json_object_get(object, key));
}

static int
compare_pids(const void *a, const void *b, void *data)
{
	const struct metrics_tree *tree = data;
	pid_t x = tree->processes[*(const size_t *)a].pid;
	pid_t y = tree->processes[*(const size_t *)b].pid;
	return (x > y) - (x < y);
}

/* The index of pid in the tree, or -1. */
static ssize_t
find_pid(const struct render *render, long long pid)
{
	size_t low = 0, high = render->tree && render->by_pid ? render->tree->count : 0;
	while (low < high) {
		size_t middle = low + (high - low) / 2;
		pid_t found = render->tree->processes[render->by_pid[middle]].pid;
		if (found == pid)
			return (ssize_t)render->by_pid[middle];
		if (found < pid)
			low = middle + 1;
		else
			high = middle;
	}
	return -1;
}

/* Fills render's index of the tree and marks the workers that status names. */
static void
index_tree(struct render *render, const json_t *status, const struct metrics_tree *tree)
{
	render->tree = tree;
	if (!tree || tree->count == 0)
		return;
	render->by_pid = calloc(tree->count, sizeof(*render->by_pid));
	render->is_worker = calloc(tree->count, sizeof(*render->is_worker));
	if (!render->by_pid || !render->is_worker) {
		render->failed = true;
		return;
	}
	for (size_t i = 0; i < tree->count; i++)
		render->by_pid[i] = i;
	qsort_r(render->by_pid, tree->count, sizeof(*render->by_pid), compare_pids, (void *)tree);
	const char *name;
	json_t *service;
	json_object_foreach(json_object_get(status, "services"), name, service)
	{
		const json_t *worker;
		size_t i;
		json_array_foreach(json_object_get(service, "workers"), i, worker)
		{
			ssize_t found = find_pid(render, integer(worker, "pid"));
			if (found >= 0)
				render->is_worker[found] = true;
		}
	}
}

/* One worker of a service, with what it is sorted by. */
struct unit {
	const json_t *worker;
	ssize_t process; /* index in the tree, or -1 when not running or not captured */
	double cpu;
	uint64_t memory;
	long long pid, index, generation;
};

static int
compare_units(const void *a, const void *b, void *data)
{
	const struct unit *x = a, *y = b;
	enum top_sort sort_by = *(const enum top_sort *)data;
	if (sort_by == TOP_SORT_CPU && x->cpu != y->cpu)
		return x->cpu > y->cpu ? -1 : 1;
	if (sort_by == TOP_SORT_MEMORY && x->memory != y->memory)
		return x->memory > y->memory ? -1 : 1;
	if (sort_by == TOP_SORT_PID && x->pid != y->pid) /* not running (0) last */
		return x->pid == 0 ? 1 : y->pid == 0 ? -1 : x->pid < y->pid ? -1 : 1;
	if (x->index != y->index)
		return x->index < y->index ? -1 : 1;
	return (x->generation > y->generation) - (x->generation < y->generation);
}

static void
add_service(struct render *render, const char *name, const json_t *service,
	    const struct metrics_tree *tree, enum top_sort sort)
{
	long long restarts = integer(service, "restarts");
	const json_t *sum = json_object_get(service, "utilization");
	char requests[96] = "";
	if (sum)
		snprintf(requests, sizeof(requests), ", %lld requests in flight, %lld served",
			 integer(sum, "requests_active"), integer(sum, "requests_total"));
	add_line(render, TOP_STYLE_GROUP, "%s: %lld/%lld ready, generation %lld, %lld restart%s%s",
		 name, integer(service, "ready"), integer(service, "count"),
		 integer(service, "generation"), restarts, restarts == 1 ? "" : "s", requests);
	const json_t *workers = json_object_get(service, "workers");
	size_t count = json_array_size(workers);
	struct unit *units = calloc(count ? count : 1, sizeof(*units));
	if (!units) {
		render->failed = true;
		return;
	}
	for (size_t i = 0; i < count; i++) {
		const json_t *worker = json_array_get(workers, i);
		struct unit *u = &units[i];
		*u = (struct unit){.worker = worker,
				   .pid = integer(worker, "pid"),
				   .index = integer(worker, "index"),
				   .generation = integer(worker, "generation"),
				   .cpu = -1};
		u->process = u->pid > 0 ? find_pid(render, u->pid) : -1;
		if (u->process >= 0) {
			const struct metrics_process *p = &tree->processes[u->process];
			u->cpu = p->has_recent ? p->processor_utilization_recent
					       : p->processor_utilization;
			u->memory = p->has_memory ? p->memory.proportional_size : p->resident_size;
		}
	}
	qsort_r(units, count, sizeof(*units), compare_units, &sort);
	for (size_t i = 0; i < count; i++) {
		const struct unit *u = &units[i];
		struct cells cells = {0};
		snprintf(cells.text[COLUMN_NAME], sizeof(cells.text[0]), "%s.%lld", name, u->index);
		snprintf(cells.text[COLUMN_STATE], sizeof(cells.text[0]), "%s",
			 json_string_value(json_object_get(u->worker, "state")) ?: "?");
		snprintf(cells.text[COLUMN_GENERATION], sizeof(cells.text[0]), "%lld",
			 u->generation);
		snprintf(cells.text[COLUMN_RESTARTS], sizeof(cells.text[0]), "%lld",
			 integer(u->worker, "restarts"));
		const json_t *counters = json_object_get(u->worker, "utilization");
		if (counters)
			snprintf(cells.text[COLUMN_REQUESTS], sizeof(cells.text[0]), "%lld",
				 integer(counters, "requests_active"));
		if (u->process >= 0) {
			add_subtree(render, tree, (size_t)u->process, 0, &cells);
			continue;
		}
		/* Not running (backoff, exited) or gone between the two replies. */
		const json_t *exit = json_object_get(u->worker, "last_exit");
		char note[96] = "(not running)";
		if (json_object_get(exit, "code"))
			snprintf(note, sizeof(note), "(last exit: status %lld)",
				 integer(exit, "code"));
		else if (json_object_get(exit, "signal"))
			snprintf(note, sizeof(note), "(last exit: signal %s)",
				 json_string_value(json_object_get(exit, "signal")) ?: "?");
		if (u->pid > 0)
			snprintf(cells.text[COLUMN_PID], sizeof(cells.text[0]), "%lld", u->pid);
		else
			strcpy(cells.text[COLUMN_PID], "-");
		add_row(render, TOP_STYLE_PLAIN, &cells, u->pid > 0 ? "" : note);
		mark_pid(render, u->pid > 0 ? (int)u->pid : 0);
	}
	free(units);
}

/* The host, the supervisor process and whatever else hangs off the host but is no worker
 * (orphans of workers, which the host adopts as a subreaper). */
static void
add_host(struct render *render, const json_t *status, const struct metrics_tree *tree)
{
	if (!tree || tree->count == 0 || render->failed)
		return;
	struct cells cells = {0};
	strcpy(cells.text[COLUMN_NAME], "host");
	snprintf(cells.text[COLUMN_GENERATION], sizeof(cells.text[0]), "%lld",
		 integer(json_object_get(status, "host"), "generation"));
	add_process(render, &tree->processes[0], 0, &cells);
	for (size_t i = 1; i < tree->count; i = subtree_end(tree, i)) {
		const struct metrics_process *p = &tree->processes[i];
		if (render->is_worker[i])
			continue;
		struct cells first = {0};
		snprintf(first.text[COLUMN_NAME], sizeof(first.text[0]), "%s",
			 strstr(p->command, "supervisor-process") ? "supervisor" : "orphan");
		add_subtree(render, tree, i, 1, &first);
	}
}

static void
add_header(struct render *render, const json_t *status, const struct metrics_tree *tree,
	   enum top_sort sort)
{
	const json_t *host = json_object_get(status, "host");
	if (host) {
		long long ready = 0, count = 0;
		const char *name;
		json_t *service;
		json_object_foreach(json_object_get(status, "services"), name, service)
		{
			ready += integer(service, "ready");
			count += integer(service, "count");
		}
		char uptime[32];
		add_line(render, TOP_STYLE_TITLE,
			 "aerie top: host %lld, up %s, generation %lld, %lld/%lld ready%s",
			 integer(host, "pid"),
			 format_duration(json_number_value(json_object_get(host, "uptime")), uptime,
					 sizeof(uptime)),
			 integer(host, "generation"), ready, count,
			 json_is_true(json_object_get(host, "stopping")) ? ", stopping" : "");
	} else if (!status) {
		add_line(render, TOP_STYLE_TITLE, "aerie top: waiting for the host's status");
	} else {
		const char *message =
		    json_string_value(json_object_get(json_object_get(status, "error"), "message"));
		add_line(render, TOP_STYLE_TITLE, "aerie top: no status from the host%s%s",
			 message ? ": " : "", message ? message : "");
	}
	double cpu = 0;
	uint64_t rss = 0, pss = 0, uss = 0;
	size_t count = tree ? tree->count : 0;
	for (size_t i = 0; i < count; i++) {
		const struct metrics_process *p = &tree->processes[i];
		cpu += p->has_recent ? p->processor_utilization_recent : p->processor_utilization;
		rss += p->resident_size;
		if (p->has_memory) {
			pss += p->memory.proportional_size;
			uss += p->memory.unique_size;
		}
	}
	char rss_text[16], pss_text[16], uss_text[16];
	add_line(render, TOP_STYLE_PLAIN,
		 "CPU %.1f%%  RSS %s  PSS %s  USS %s  %zu process%s  sorted by %s", cpu,
		 format_size(rss, rss_text, sizeof(rss_text)),
		 format_size(pss, pss_text, sizeof(pss_text)),
		 format_size(uss, uss_text, sizeof(uss_text)), count, count == 1 ? "" : "es",
		 top_sort_name(sort));
	add_titles(render);
}

int
top_view_render(const json_t *status, const struct metrics_tree *tree, enum top_sort sort,
		size_t width, struct top_lines *ret_header, struct top_lines *ret_rows)
{
	struct top_lines header = {0}, rows = {0};
	struct render render = {.width = width, .lines = &header};
	choose_columns(&render, status);
	add_header(&render, status, tree, sort);
	render.lines = &rows;
	index_tree(&render, status, tree);
	add_host(&render, status, tree);
	const char *name;
	json_t *service;
	json_object_foreach(json_object_get(status, "services"), name, service)
	    add_service(&render, name, service, tree, sort);
	free(render.by_pid);
	free(render.is_worker);
	if (render.failed) {
		top_lines_free(&header);
		top_lines_free(&rows);
		return -ENOMEM;
	}
	*ret_header = header;
	*ret_rows = rows;
	return 0;
}
