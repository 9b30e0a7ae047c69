/* print: the replies of the supervisor socket as `aerie supervisor` shows them. Every text
 * that the host's config, its workers or whoever answers on the socket chose is escaped first
 * (lib/escape.h): nothing of it acts on the terminal. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The string value made fit for a terminal in buffer (cut to size); fallback if value is not a
 * string. */
const char *print_text(const json_t *value, const char *fallback, char *buffer, size_t size);

/* The reply as indented JSON, on stdout. Returns an exit code. */
int print_json(const json_t *reply);
/* A Prometheus exposition (a string reply): its lines as they are, control characters '?'. */
int print_prometheus(const json_t *reply);
/* If reply is {"error":…}, prints its message and code to stderr and returns true. */
bool print_error(const json_t *reply);
/* A status reply: the host, a line per worker, a line per service. */
void print_status(const json_t *reply);
/* status --names, for shell completion: each service's name, then NAME.INDEX for each of its
 * workers, one a line (escaped: a name that is not a config's still acts on nothing). */
void print_names(const json_t *reply);
/* status --check, for readiness probes (Kubernetes, Nomad, systemd): EXIT_OK only when every
 * service has as many ready workers as its count and the host is not stopping; else
 * EXIT_FAILED and one line that says what is missing. */
int print_ready(const json_t *reply);
/* A reload's reply: the generation, then a line per list that is not empty. */
void print_reload(const json_t *reply);
