/* top_events: what changed between two status replies, as one-line events for `top`.
 *
 * The host sends no events: `top` sees the world once per interval, so it tells what changed
 * between two looks. A worker is known by (service, index, generation): a new pid in the same
 * slot is a restart, a slot of a new generation is part of a rolling restart, and a slot that
 * is gone belonged to a generation that was stopped. */
#include "cli/top_events.h"
#include "lib/limits.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
top_events_add(struct top_events *events, time_t now, const char *format, ...)
{
	char when[16] = "";
	struct tm local;
	if (localtime_r(&now, &local))
		strftime(when, sizeof(when), "%H:%M:%S ", &local);
	char *what;
	va_list args;
	va_start(args, format);
	int n = vasprintf(&what, format, args);
	va_end(args);
	if (n < 0)
		return;
	char *line;
	n = asprintf(&line, "%s%s", when, what);
	free(what);
	if (n < 0)
		return;
	if (events->count == TOP_EVENTS_KEPT)
		free(events->lines[--events->count]);
	memmove(events->lines + 1, events->lines, events->count * sizeof(events->lines[0]));
	events->lines[0] = line;
	events->count++;
}

void
top_events_free(struct top_events *events)
{
	for (size_t i = 0; i < events->count; i++)
		free(events->lines[i]);
	events->count = 0;
}

static long long
integer(const json_t *object, const char *key)
{
	return json_integer_value(json_object_get(object, key));
}

static const json_t *
find_worker(const json_t *service, long long index, long long generation)
{
	const json_t *worker;
	size_t i;
	json_array_foreach(json_object_get(service, "workers"), i, worker)
	{
		if (integer(worker, "index") == index &&
		    integer(worker, "generation") == generation)
			return worker;
	}
	return NULL;
}

/* The generation a rolling restart is starting (newer than the serving one), or 0. */
static long long
rolling_generation(const json_t *service)
{
	long long serving = integer(service, "generation"), newest = 0;
	const json_t *worker;
	size_t i;
	json_array_foreach(json_object_get(service, "workers"), i, worker)
	{
		long long generation = integer(worker, "generation");
		if (generation > serving && generation > newest)
			newest = generation;
	}
	return newest;
}

/* "status 3", "signal KILL", or "" when the host said nothing of it. */
static const char *
describe_exit(const json_t *exit, char *buffer, size_t size)
{
	const json_t *code = json_object_get(exit, "code");
	const char *signal = json_string_value(json_object_get(exit, "signal"));
	if (json_is_integer(code))
		snprintf(buffer, size, " (status %lld)", (long long)json_integer_value(code));
	else if (signal)
		snprintf(buffer, size, " (signal %s)", signal);
	else
		buffer[0] = '\0';
	return buffer;
}

static void
diff_worker(struct top_events *events, const char *service, const json_t *old, const json_t *new,
	    time_t now)
{
	long long old_pid = integer(old, "pid"), new_pid = integer(new, "pid");
	if (old_pid == new_pid)
		return;
	char label[160], exit[64], times[32] = "";
	snprintf(label, sizeof(label), "%s.%lld", service, integer(new, "index"));
	long long restarts = integer(new, "restarts") - integer(old, "restarts");
	if (restarts > 1)
		snprintf(times, sizeof(times), " (%lld restarts)", restarts);
	if (old_pid == 0) {
		top_events_add(events, now, "%s restarted as %lld%s", label, new_pid, times);
		return;
	}
	describe_exit(json_object_get(new, "last_exit"), exit, sizeof(exit));
	const char *state = json_string_value(json_object_get(new, "state"));
	if (new_pid != 0)
		top_events_add(events, now, "%s [%lld] exited%s, restarted as %lld%s", label,
			       old_pid, exit, new_pid, times);
	else if (state && strcmp(state, "backoff") == 0)
		top_events_add(events, now, "%s [%lld] exited%s, restarting after a delay", label,
			       old_pid, exit);
	else if (state && strcmp(state, "failed") == 0)
		top_events_add(events, now, "%s [%lld] exited%s, failed: start limit reached",
			       label, old_pid, exit);
	else
		top_events_add(events, now, "%s [%lld] exited%s, not restarted", label, old_pid,
			       exit);
}

static void
diff_service(struct top_events *events, const char *name, const json_t *old, const json_t *new,
	     time_t now)
{
	long long old_generation = integer(old, "generation");
	long long new_generation = integer(new, "generation");
	long long old_roll = rolling_generation(old), new_roll = rolling_generation(new);
	if (new_roll && new_roll != old_roll)
		top_events_add(events, now, "%s: rolling restart to generation %lld began", name,
			       new_roll);
	if (new_generation > old_generation)
		top_events_add(events, now, "%s: rolling restart to generation %lld done", name,
			       new_generation);
	else if (old_roll && !new_roll && new_generation == old_generation)
		top_events_add(events, now,
			       "%s: rolling restart to generation %lld failed; generation %lld "
			       "keeps serving",
			       name, old_roll, old_generation);
	const json_t *worker;
	size_t i;
	json_array_foreach(json_object_get(new, "workers"), i, worker)
	{
		const json_t *before =
		    find_worker(old, integer(worker, "index"), integer(worker, "generation"));
		if (before)
			diff_worker(events, name, before, worker, now);
	}
}

void
top_events_diff(struct top_events *events, const json_t *before, const json_t *after, time_t now)
{
	const json_t *old_services = json_object_get(before, "services");
	const json_t *new_services = json_object_get(after, "services");
	if (!json_is_object(old_services) || !json_is_object(new_services))
		return;
	const char *name;
	json_t *service;
	json_object_foreach((json_t *)new_services, name, service)
	{
		const json_t *old = json_object_get(old_services, name);
		if (old)
			diff_service(events, name, old, service, now);
	}
	const json_t *old_host = json_object_get(before, "host");
	const json_t *new_host = json_object_get(after, "host");
	if (!json_is_true(json_object_get(old_host, "stopping")) &&
	    json_is_true(json_object_get(new_host, "stopping")))
		top_events_add(events, now, "the host is stopping");
	if (integer(new_host, "pid") != integer(old_host, "pid"))
		top_events_add(events, now, "a new host: pid %lld", integer(new_host, "pid"));
}
