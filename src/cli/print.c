/* print: the replies of the supervisor socket as `aerie supervisor` shows them (see the
 * header). */
#include "cli/print.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "lib/escape.h"
#include "lib/format.h"

/* Every real rounded to 6 decimals: jansson writes a double with 17 significant digits, so the
 * host's "uptime":2.763171 came back out as 2.7631709999999998. */
static void
round_reals(json_t *value)
{
	const char *key;
	json_t *item;
	size_t i;
	if (json_is_real(value) && isfinite(json_real_value(value)) &&
	    fabs(json_real_value(value)) < 1e15)
		(void)json_real_set(value, round(json_real_value(value) * 1e6) / 1e6);
	else if (json_is_object(value))
		json_object_foreach(value, key, item) round_reals(item);
	else if (json_is_array(value))
		json_array_foreach(value, i, item) round_reals(item);
}

int
print_json(const json_t *reply)
{
	/* A copy, rounded, written with 15 significant digits: as many as a double holds
	 * exactly, so no binary noise follows the 6 decimals. */
	json_t *copy = json_deep_copy(reply);
	if (!copy)
		return EXIT_FAILED;
	round_reals(copy);
	char *text = json_dumps(copy, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY |
					  JSON_REAL_PRECISION(15));
	json_decref(copy);
	int r = text ? escape_print_json(stdout, text) : -ENOMEM;
	free(text);
	if (r < 0 || putchar('\n') == EOF)
		return EXIT_FAILED;
	return EXIT_OK;
}

const char *
print_text(const json_t *value, const char *fallback, char *buffer, size_t size)
{
	const char *text = json_string_value(value);
	return text ? escape_copy(text, buffer, size) : fallback;
}

int
print_prometheus(const json_t *reply)
{
	char *text = strdup(json_string_value(reply) ?: "");
	if (!text)
		return EXIT_FAILED;
	fputs(escape_controls(text, true), stdout); /* its lines, but no control characters */
	free(text);
	return EXIT_OK;
}

bool
print_error(const json_t *reply)
{
	json_t *error = json_object_get(reply, "error");
	if (!error)
		return false;
	char message[4096], code[64];
	fprintf(stderr, "aerie supervisor: %s (%s)\n",
		print_text(json_object_get(error, "message"), "the request failed", message,
			   sizeof(message)),
		print_text(json_object_get(error, "code"), "error", code, sizeof(code)));
	return true;
}

/* The detail column of a worker: its STATUS=, else what its last exit was and, in backoff,
 * when it is retried. */
static void
worker_detail(const json_t *worker, double now, char *detail, size_t size)
{
	char text[160], when[32];
	json_t *exit = json_object_get(worker, "last_exit");
	const char *state = json_string_value(json_object_get(worker, "state")) ?: "";
	detail[0] = '\0';
	if (json_string_value(json_object_get(worker, "status"))) {
		escape_copy(json_string_value(json_object_get(worker, "status")), detail, size);
		return;
	}
	if (json_object_get(exit, "code"))
		snprintf(detail, size, "last exit: status %lld",
			 (long long)json_integer_value(json_object_get(exit, "code")));
	else if (json_object_get(exit, "signal"))
		snprintf(detail, size, "last exit: SIG%s",
			 print_text(json_object_get(exit, "signal"), "?", text, sizeof(text)));
	size_t length = strlen(detail);
	json_t *retry = json_object_get(worker, "retry_at");
	if (strcmp(state, "backoff") == 0 && json_is_number(retry) && length < size)
		snprintf(
		    detail + length, size - length, "%sretry in %s", length ? ", " : "",
		    format_duration(fmax(json_number_value(retry) - now, 0), when, sizeof(when)));
	else if (strcmp(state, "failed") == 0 && length < size)
		snprintf(detail + length, size - length, "%sstart limit reached",
			 length ? ", " : "");
}

void
print_status(const json_t *reply)
{
	json_t *host = json_object_get(reply, "host");
	char uptime[32], since[32];
	printf("host %lld: up %s, generation %lld%s\n",
	       (long long)json_integer_value(json_object_get(host, "pid")),
	       format_duration(json_number_value(json_object_get(host, "uptime")), uptime,
			       sizeof(uptime)),
	       (long long)json_integer_value(json_object_get(host, "generation")),
	       json_is_true(json_object_get(host, "stopping")) ? ", stopping" : "");
	printf("%-16s %7s %4s %-9s %8s %6s %6s %11s  %s\n", "WORKER", "PID", "GEN", "STATE",
	       "RESTARTS", "HKILLS", "MEMREP", "UPTIME", "STATUS");
	struct timespec clock;
	(void)clock_gettime(CLOCK_REALTIME, &clock);
	double now = (double)clock.tv_sec + (double)clock.tv_nsec / 1e9;
	const char *key;
	json_t *service;
	json_object_foreach(json_object_get(reply, "services"), key, service)
	{
		/* Every text here was chosen by the host's config, its workers or whoever answers
		 * on the socket: none goes to the terminal unescaped. */
		char name[256], state[64];
		escape_copy(key, name, sizeof(name));
		json_t *worker;
		size_t i;
		json_array_foreach(json_object_get(service, "workers"), i, worker)
		{
			char label[sizeof(name) + 24], pid[24] = "-", detail[160];
			snprintf(label, sizeof(label), "%s.%lld", name,
				 (long long)json_integer_value(json_object_get(worker, "index")));
			if (json_integer_value(json_object_get(worker, "pid")) > 0)
				snprintf(
				    pid, sizeof(pid), "%lld",
				    (long long)json_integer_value(json_object_get(worker, "pid")));
			worker_detail(worker, now, detail, sizeof(detail));
			printf(
			    "%-16s %7s %4lld %-9s %8lld %6lld %6lld %11s  %s\n", label, pid,
			    (long long)json_integer_value(json_object_get(worker, "generation")),
			    print_text(json_object_get(worker, "state"), "?", state, sizeof(state)),
			    (long long)json_integer_value(json_object_get(worker, "restarts")),
			    (long long)json_integer_value(json_object_get(worker, "health_kills")),
			    (long long)json_integer_value(
				json_object_get(worker, "memory_replacements")),
			    format_duration(now -
						json_number_value(json_object_get(worker, "since")),
					    since, sizeof(since)),
			    detail);
		}
		printf(
		    "%s: %lld/%lld ready, %lld restarts, %lld health kills, %lld memory "
		    "replacements%s",
		    name, (long long)json_integer_value(json_object_get(service, "ready")),
		    (long long)json_integer_value(json_object_get(service, "count")),
		    (long long)json_integer_value(json_object_get(service, "restarts")),
		    (long long)json_integer_value(json_object_get(service, "health_kills")),
		    (long long)json_integer_value(json_object_get(service, "memory_replacements")),
		    json_is_true(json_object_get(service, "stopped")) ? ", stopped" : "");
		if (json_integer_value(json_object_get(service, "done")) > 0)
			printf(", %lld done",
			       (long long)json_integer_value(json_object_get(service, "done")));
		if (json_integer_value(json_object_get(service, "failed")) > 0)
			printf(", %lld FAILED",
			       (long long)json_integer_value(json_object_get(service, "failed")));
		putchar('\n');
	}
}

void
print_names(const json_t *reply)
{
	const char *key;
	json_t *service;
	json_object_foreach(json_object_get(reply, "services"), key, service)
	{
		char name[256];
		escape_copy(key, name, sizeof(name));
		printf("%s\n", name);
		json_t *worker;
		size_t i;
		json_array_foreach(json_object_get(service, "workers"), i, worker)
		{
			printf("%s.%lld\n", name,
			       (long long)json_integer_value(json_object_get(worker, "index")));
		}
	}
}

int
print_ready(const json_t *reply)
{
	const json_t *services = json_object_get(reply, "services");
	if (!json_is_object(services)) {
		fprintf(stderr, "aerie supervisor: not ready: the status has no services\n");
		return EXIT_FAILED;
	}
	if (json_is_true(json_object_get(json_object_get(reply, "host"), "stopping"))) {
		fprintf(stderr, "aerie supervisor: not ready: the host is stopping\n");
		return EXIT_FAILED;
	}
	char all[1024] = "", missing[1024] = "";
	const char *name;
	json_t *service;
	json_object_foreach((json_t *)services, name, service)
	{
		/* A worker that finished (restart = never, exit 0) is as good as a ready one; a
		 * failed one (start limit) is not, whatever the others do. */
		long long ready = json_integer_value(json_object_get(service, "ready")) +
				  json_integer_value(json_object_get(service, "done"));
		long long count = json_integer_value(json_object_get(service, "count"));
		long long failed = json_integer_value(json_object_get(service, "failed"));
		char *list = ready < count || failed > 0 ? missing : all;
		size_t length = strlen(list);
		if (length < sizeof(all) - 1)
			snprintf(list + length, sizeof(all) - length, "%s%s %lld/%lld%s",
				 length ? ", " : "", name, ready, count,
				 failed > 0 ? " (failed)" : "");
	}
	escape_controls(all, false); /* service names: the server's words */
	escape_controls(missing, false);
	if (missing[0]) {
		fprintf(stderr, "aerie supervisor: not ready: %s ready\n", missing);
		return EXIT_FAILED;
	}
	printf("ready: %s\n", all[0] ? all : "no services");
	return EXIT_OK;
}

void
print_reload(const json_t *reply)
{
	printf("reloaded: generation %lld\n",
	       (long long)json_integer_value(json_object_get(reply, "generation")));
	static const char *const lists[] = {"started", "stopped",   "restarted",
					    "scaled",  "unchanged", "not_applied"};
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		const json_t *names = json_object_get(reply, lists[i]);
		if (json_array_size(names) == 0)
			continue;
		printf("  %-12s", strcmp(lists[i], "not_applied") == 0 ? "not applied" : lists[i]);
		for (size_t j = 0; j < json_array_size(names); j++) {
			char name[256];
			printf("%s%s", j ? ", " : " ",
			       print_text(json_array_get(names, j), "?", name, sizeof(name)));
		}
		printf("\n");
	}
}
