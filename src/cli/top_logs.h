/* top_logs: `top`'s log pane (key l): the last lines of the worker in the selected row, asked
 * for on a connection of its own each refresh. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cli/top_link.h"
#include "cli/top_view.h"
#include "lib/limits.h"
#include "lib/loop.h"

struct top;

struct top_logs {
	bool shown;
	struct top_link link;
	bool asked; /* a request waits for its reply */
	int pid;    /* the selected row's process; 0: none */
	char service[PROTOCOL_MAX_SERVICE + 1];
	int worker;    /* -1: the selected process is not a worker */
	json_t *lines; /* the last reply's "lines" */
	char note[256];
	/* Called when a reply came, to draw it. */
	void (*changed)(struct top *top);
	struct top *top;
};

/* Selects the first worker's row of rows from index from on (by its pid, from a status
 * reply) and returns its index, SIZE_MAX if none; a change of worker forgets the lines shown. */
size_t top_logs_select(struct top_logs *logs, const json_t *status, const struct top_lines *rows,
		       size_t from);
/* Asks for the last count lines of the selected worker, unless a request waits already;
 * connects first if need be (the reply comes through the loop). */
void top_logs_ask(struct top_logs *logs, struct loop *loop, const char *socket, uid_t owner,
		  unsigned count);
/* Draws the pane on rows y to y + height - 1. */
void top_logs_draw(const struct top_logs *logs, int y, int height, int width);
void top_logs_close(struct top_logs *logs, struct loop *loop);
