/* top_events: what changed between two status replies, as one-line events for `top`. */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <time.h>

#include "lib/limits.h"

/* The latest events, newest first, each "HH:MM:SS what happened". */
struct top_events {
	char *lines[TOP_EVENTS_KEPT];
	size_t count;
};

/* Adds the events that lead from status reply before to after: a worker's exit (with its
 * status or signal) and restart, a rolling restart that began, ended or failed, the host
 * stopping. Either may be NULL or an error reply: then nothing. */
void top_events_diff(struct top_events *events, const json_t *before, const json_t *after,
		     time_t now);
void top_events_add(struct top_events *events, time_t now, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
void top_events_free(struct top_events *events);
