/* print: the replies of the supervisor socket as `aerie supervisor` shows them (see the
 * header). */
#include "cli/print.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "lib/escape.h"
#include "lib/format.h"

int
print_json(const json_t *reply)
{
	char *text = json_dumps(reply, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
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
	printf("%-16s %7s %4s %-9s %8s %11s  %s\n", "WORKER", "PID", "GEN", "STATE", "RESTARTS",
	       "UPTIME", "STATUS");
	double now = (double)time(NULL);
	const char *key;
	json_t *service;
	json_object_foreach(json_object_get(reply, "services"), key, service)
	{
		/* Every text here was chosen by the host's config, its workers or whoever answers
		 * on the socket: none goes to the terminal unescaped. */
		char name[256], state[64], text[160];
		escape_copy(key, name, sizeof(name));
		json_t *worker;
		size_t i;
		json_array_foreach(json_object_get(service, "workers"), i, worker)
		{
			char label[sizeof(name) + 24];
			snprintf(label, sizeof(label), "%s.%lld", name,
				 (long long)json_integer_value(json_object_get(worker, "index")));
			json_t *exit = json_object_get(worker, "last_exit");
			char detail[160] = "";
			if (json_string_value(json_object_get(worker, "status")))
				escape_copy(json_string_value(json_object_get(worker, "status")),
					    detail, sizeof(detail));
			else if (json_object_get(exit, "code"))
				snprintf(
				    detail, sizeof(detail), "last exit: status %lld",
				    (long long)json_integer_value(json_object_get(exit, "code")));
			else if (json_object_get(exit, "signal"))
				snprintf(detail, sizeof(detail), "last exit: SIG%s",
					 print_text(json_object_get(exit, "signal"), "?", text,
						    sizeof(text)));
			printf(
			    "%-16s %7lld %4lld %-9s %8lld %11s  %s\n", label,
			    (long long)json_integer_value(json_object_get(worker, "pid")),
			    (long long)json_integer_value(json_object_get(worker, "generation")),
			    print_text(json_object_get(worker, "state"), "?", state, sizeof(state)),
			    (long long)json_integer_value(json_object_get(worker, "restarts")),
			    format_duration(now -
						json_number_value(json_object_get(worker, "since")),
					    since, sizeof(since)),
			    detail);
		}
		printf("%s: %lld/%lld ready, %lld restarts%s\n", name,
		       (long long)json_integer_value(json_object_get(service, "ready")),
		       (long long)json_integer_value(json_object_get(service, "count")),
		       (long long)json_integer_value(json_object_get(service, "restarts")),
		       json_is_true(json_object_get(service, "stopped")) ? ", stopped" : "");
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
		long long ready = json_integer_value(json_object_get(service, "ready"));
		long long count = json_integer_value(json_object_get(service, "count"));
		char *list = ready < count ? missing : all;
		size_t length = strlen(list);
		if (length < sizeof(all) - 1)
			snprintf(list + length, sizeof(all) - length, "%s%s %lld/%lld",
				 length ? ", " : "", name, ready, count);
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
