/* top_view: the text of `aerie supervisor top` from one status and one metrics reply: a header,
 * column titles and one row per process, grouped by service. Pure: no terminal, no socket. */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "metrics/metrics.h"

enum top_sort { TOP_SORT_CPU, TOP_SORT_MEMORY, TOP_SORT_PID, TOP_SORT_COUNT };

enum top_style {
	TOP_STYLE_PLAIN,
	TOP_STYLE_TITLE,   /* the header's first line */
	TOP_STYLE_COLUMNS, /* the column titles */
	TOP_STYLE_GROUP,   /* a service's line */
};

struct top_line {
	char *text;
	enum top_style style;
	int pid; /* a process's row: its pid; else 0 */
};

struct top_lines {
	struct top_line *lines;
	size_t count, capacity;
};

const char *top_sort_name(enum top_sort sort);

/* Renders status (a status reply; NULL or an error reply: shown as missing) and tree (the
 * metrics reply; NULL: none) into ret_header (title, totals, column titles) and ret_rows (the
 * part that scrolls). width is the terminal's: columns are dropped, least useful first, to
 * fit, lines are cut to it and commands are shown in ASCII; 0 means no limit (the snapshot),
 * UTF-8 kept. Either way no line holds a control character (C0, DEL, C1) or a byte that is not
 * UTF-8. Returns 0 or -ENOMEM; on failure nothing is returned. */
int top_view_render(const json_t *status, const struct metrics_tree *tree, enum top_sort sort,
		    size_t width, struct top_lines *ret_header, struct top_lines *ret_rows);
void top_lines_free(struct top_lines *lines);
