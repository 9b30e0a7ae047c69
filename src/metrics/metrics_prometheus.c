/* metrics_prometheus: the host's tree and status in Prometheus' text exposition format
 * (version 0.0.4): "# HELP", "# TYPE", then one "name{labels} value" line per sample. */
#include "metrics/metrics_prometheus.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Where a process stands in the host's tree, as labels. */
struct role {
	const char *role; /* host | supervisor | worker | descendant */
	const char *service;
	long long worker;
};

/* Tree positions sorted by pid, to find a worker's process without a scan per worker. */
struct by_pid {
	pid_t pid;
	size_t index;
};

static int
compare_by_pid(const void *a, const void *b)
{
	const struct by_pid *x = a, *y = b;
	return (x->pid > y->pid) - (x->pid < y->pid);
}

/* The position of pid's process in the tree, by binary search; NULL if it is not there. */
static const struct by_pid *
find_pid(const struct by_pid *index, size_t count, pid_t pid)
{
	struct by_pid key = {.pid = pid};
	return pid > 0 ? bsearch(&key, index, count, sizeof(*index), compare_by_pid) : NULL;
}

/* Labels every process: host, supervisor, a worker (from status), or another descendant. One
 * pass over the tree and one over the workers, each worker found by binary search: a scrape
 * of 1000 workers is not a million lookups. A descendant takes the service and worker of the
 * worker it descends from (gunicorn's and nginx's own workers), so that a service's memory is
 * all of it: its parents are walked up to a worker, the host or the root. */
static int
assign_roles(const struct metrics_tree *tree, const json_t *status, pid_t host_pid,
	     pid_t supervisor_pid, struct role *roles)
{
	struct by_pid *index = calloc(tree->count ? tree->count : 1, sizeof(*index));
	if (!index)
		return -ENOMEM;
	for (size_t i = 0; i < tree->count; i++) {
		pid_t pid = tree->processes[i].pid;
		roles[i] = (struct role){.role = pid == host_pid	 ? "host"
						 : pid == supervisor_pid ? "supervisor"
									 : "descendant",
					 .worker = -1};
		index[i] = (struct by_pid){pid, i};
	}
	qsort(index, tree->count, sizeof(*index), compare_by_pid);
	const char *name;
	json_t *service;
	json_object_foreach(json_object_get(status, "services"), name, service)
	{
		size_t i;
		json_t *worker;
		json_array_foreach(json_object_get(service, "workers"), i, worker)
		{
			const struct by_pid *found =
			    find_pid(index, tree->count,
				     (pid_t)json_integer_value(json_object_get(worker, "pid")));
			if (found)
				roles[found->index] = (struct role){
				    "worker", name,
				    json_integer_value(json_object_get(worker, "index"))};
		}
	}
	for (size_t i = 0; i < tree->count; i++) {
		if (strcmp(roles[i].role, "descendant") != 0)
			continue;
		/* The tree is at most tree->count deep: the walk ends even on a cycle of ppids
		 * read from processes that changed between two reads of /proc. */
		const struct by_pid *up = find_pid(index, tree->count, tree->processes[i].ppid);
		for (size_t steps = 0; up && steps < tree->count; steps++) {
			const struct role *above = &roles[up->index];
			if (strcmp(above->role, "worker") == 0) {
				roles[i].service = above->service;
				roles[i].worker = above->worker;
				break;
			}
			if (strcmp(above->role, "descendant") != 0)
				break; /* the host or the supervisor */
			up = find_pid(index, tree->count, tree->processes[up->index].ppid);
		}
	}
	free(index);
	return 0;
}

static void
labels(FILE *out, pid_t pid, const struct role *role)
{
	/* Service names are [A-Za-z0-9_-] (config.c): nothing to escape. */
	fprintf(out, "{pid=\"%d\",role=\"%s\"", (int)pid, role->role);
	if (role->service)
		fprintf(out, ",service=\"%s\",worker=\"%lld\"", role->service, role->worker);
	fputc('}', out);
}

static void
family(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

enum field { CPU, RSS, PSS, USS, VSZ };

static void
process_family(FILE *out, const struct metrics_tree *tree, const struct role *roles,
	       enum field field, const char *name, const char *type, const char *help)
{
	family(out, name, type, help);
	for (size_t i = 0; i < tree->count; i++) {
		const struct metrics_process *p = &tree->processes[i];
		if ((field == PSS || field == USS) && !p->has_memory)
			continue;
		fputs(name, out);
		labels(out, p->pid, &roles[i]);
		switch (field) {
		case CPU:
			fprintf(out, " %.2f\n", p->processor_time);
			break;
		case RSS:
			fprintf(out, " %llu\n", (unsigned long long)p->resident_size);
			break;
		case PSS:
			fprintf(out, " %llu\n", (unsigned long long)p->memory.proportional_size);
			break;
		case USS:
			fprintf(out, " %llu\n", (unsigned long long)p->memory.unique_size);
			break;
		case VSZ:
			fprintf(out, " %llu\n", (unsigned long long)p->virtual_size);
			break;
		}
	}
}

/* Samples from the status of each worker. Counts are written as integers and seconds with
 * milliseconds: "%g" kept 6 significant digits, so a counter past 999999 stopped moving and a
 * worker up 12 days showed 1.0368e+06 s. */
static void
worker_family(FILE *out, const json_t *status, const char *key, const char *name, const char *type,
	      const char *help, double now)
{
	family(out, name, type, help);
	const char *service_name;
	json_t *service;
	json_object_foreach(json_object_get(status, "services"), service_name, service)
	{
		size_t i;
		json_t *worker;
		json_array_foreach(json_object_get(service, "workers"), i, worker)
		{
			/* A worker that is not running has no pid (null): its series has none. */
			long long pid = json_integer_value(json_object_get(worker, "pid"));
			fputs(name, out);
			if (pid > 0)
				fprintf(out, "{pid=\"%lld\",", pid);
			else
				fputc('{', out);
			fprintf(out, "role=\"worker\",service=\"%s\",worker=\"%lld\"} ",
				service_name, json_integer_value(json_object_get(worker, "index")));
			if (strcmp(key, "ready") == 0)
				fprintf(out, "%d\n",
					strcmp(json_string_value(json_object_get(worker, "state"))
						   ?: "",
					       "ready") == 0);
			else if (strcmp(key, "since") == 0)
				fprintf(out, "%.3f\n",
					now - json_number_value(json_object_get(worker, "since")));
			else
				fprintf(out, "%lld\n",
					json_integer_value(json_object_get(worker, key)));
		}
	}
}

/* One sample per service: key of its status object. */
static void
service_family(FILE *out, const json_t *status, const char *key, const char *name, const char *type,
	       const char *help)
{
	family(out, name, type, help);
	const char *service_name;
	json_t *service;
	json_object_foreach(json_object_get(status, "services"), service_name, service)
	    fprintf(out, "%s{service=\"%s\"} %lld\n", name, service_name,
		    json_integer_value(json_object_get(service, key)));
}

/* utilization = yes: each worker's counters, then their sums per service (the totals including
 * workers gone, so that they only grow). Falcon's UtilizationMonitor exports the sums. */
static const char *const utilization_fields[] = {"connections_active", "connections_total",
						 "requests_active", "requests_total"};

static void
utilization_families(FILE *out, const json_t *status)
{
	const char *service_name;
	json_t *service;
	for (size_t f = 0; f < 4; f++) {
		const char *field = utilization_fields[f];
		bool counter = strstr(field, "_total") != NULL;
		char name[64];
		snprintf(name, sizeof(name), "aerie_worker_%s", field);
		bool any = false;
		json_object_foreach(json_object_get(status, "services"), service_name, service)
		{
			size_t i;
			json_t *worker;
			json_array_foreach(json_object_get(service, "workers"), i, worker)
			{
				json_t *counters = json_object_get(worker, "utilization");
				if (!counters)
					continue;
				if (!any)
					family(out, name, counter ? "counter" : "gauge",
					       "The worker's own count (AERIE_UTILIZATION).");
				any = true;
				long long pid = json_integer_value(json_object_get(worker, "pid"));
				fputs(name, out);
				if (pid > 0) /* as worker_family: no pid while it does not run */
					fprintf(out, "{pid=\"%lld\",", pid);
				else
					fputc('{', out);
				fprintf(out, "role=\"worker\",service=\"%s\",worker=\"%lld\"} %lld\n",
					service_name,
					json_integer_value(json_object_get(worker, "index")),
					json_integer_value(json_object_get(counters, field)));
			}
		}
		snprintf(name, sizeof(name), "aerie_service_%s", field);
		any = false;
		json_object_foreach(json_object_get(status, "services"), service_name, service)
		{
			json_t *sum = json_object_get(service, "utilization");
			if (!sum)
				continue;
			if (!any)
				family(out, name, counter ? "counter" : "gauge",
				       counter
					   ? "Sum over the service's workers, those gone included."
					   : "Sum over the service's workers.");
			any = true;
			fprintf(out, "%s{service=\"%s\"} %lld\n", name, service_name,
				json_integer_value(json_object_get(sum, field)));
		}
	}
}

/* The memory checks' replacements by cause, for the services that have any check. */
static void
memory_family(FILE *out, const json_t *status)
{
	static const char *const causes[] = {"total_limit", "free_minimum", "leak"};
	const char *name;
	json_t *service;
	bool any = false;
	json_object_foreach(json_object_get(status, "services"), name, service)
	{
		json_t *counts = json_object_get(service, "memory_replacements_by_cause");
		if (!counts)
			continue;
		if (!any)
			family(
			    out, "aerie_service_memory_replacements_by_cause_total", "counter",
			    "Of the memory replacements, those by memory_total_limit, memory_free_minimum or leak "
			    "detection.");
		any = true;
		for (size_t i = 0; i < 3; i++)
			fprintf(
			    out,
			    "aerie_service_memory_replacements_by_cause_total{service=\"%s\",cause=\"%s\"} "
			    "%lld\n",
			    name, causes[i],
			    json_integer_value(json_object_get(counts, causes[i])));
	}
}

ssize_t
metrics_prometheus_format(const struct metrics_tree *tree, const json_t *status, pid_t host_pid,
			  pid_t supervisor_pid, char **ret_text)
{
	/* The clock of the status' "since" (service.c), to the nanosecond: whole seconds from
	 * time() made a worker that changed state less than a second ago show a negative age. */
	struct timespec now;
	(void)clock_gettime(CLOCK_REALTIME, &now);
	return metrics_prometheus_format_at(tree, status, host_pid, supervisor_pid,
					    (double)now.tv_sec + (double)now.tv_nsec / 1e9,
					    ret_text);
}

ssize_t
metrics_prometheus_format_at(const struct metrics_tree *tree, const json_t *status, pid_t host_pid,
			     pid_t supervisor_pid, double now, char **ret_text)
{
	struct role *roles = calloc(tree->count ? tree->count : 1, sizeof(*roles));
	char *data = NULL;
	size_t length = 0;
	FILE *out = roles && assign_roles(tree, status, host_pid, supervisor_pid, roles) == 0
			? open_memstream(&data, &length)
			: NULL;
	if (!out) {
		free(roles);
		return -ENOMEM;
	}

	process_family(out, tree, roles, CPU, "aerie_process_cpu_seconds_total", "counter",
		       "CPU time (user + system) of each process of the host's tree.");
	process_family(out, tree, roles, RSS, "aerie_process_resident_bytes", "gauge",
		       "Resident memory (RSS).");
	process_family(out, tree, roles, PSS, "aerie_process_proportional_bytes", "gauge",
		       "Proportional memory (PSS): shared pages divided among their users.");
	process_family(out, tree, roles, USS, "aerie_process_unique_bytes", "gauge",
		       "Unique memory (USS): what exiting would free.");
	process_family(out, tree, roles, VSZ, "aerie_process_virtual_bytes", "gauge",
		       "Virtual memory size.");
	worker_family(out, status, "ready", "aerie_worker_ready", "gauge",
		      "1 when the worker is ready.", now);
	worker_family(out, status, "since", "aerie_worker_state_seconds", "gauge",
		      "Seconds since the worker's last state change (its uptime when ready).", now);
	worker_family(out, status, "generation", "aerie_worker_generation", "gauge",
		      "The rolling-restart generation the worker belongs to.", now);

	family(out, "aerie_service_workers", "gauge", "Workers the service should run (count).");
	const char *name;
	json_t *service;
	json_object_foreach(json_object_get(status, "services"), name, service)
	    fprintf(out, "aerie_service_workers{service=\"%s\"} %lld\n", name,
		    json_integer_value(json_object_get(service, "count")));
	family(out, "aerie_service_ready_workers", "gauge",
	       "Workers of the service that are ready.");
	json_object_foreach(json_object_get(status, "services"), name, service)
	    fprintf(out, "aerie_service_ready_workers{service=\"%s\"} %lld\n", name,
		    json_integer_value(json_object_get(service, "ready")));
	/* The service's counters, kept by the service across rolling restarts: a per-pid series
	 * began again at every restart and was reset by a roll. */
	service_family(out, status, "restarts", "aerie_worker_restarts_total", "counter",
		       "Restarts of the service's workers after an exit.");
	service_family(out, status, "failures", "aerie_service_failures_total", "counter",
		       "Exits of the service's workers that were failures (not a stop).");
	service_family(out, status, "health_kills", "aerie_service_health_kills_total", "counter",
		       "Workers killed for missing WATCHDOG=1 (health_timeout).");
	service_family(out, status, "memory_replacements",
		       "aerie_service_memory_replacements_total", "counter",
		       "Workers replaced for going over memory_limit.");
	service_family(out, status, "failed", "aerie_service_failed_workers", "gauge",
		       "Workers that reached start_limit_burst and are not restarted.");
	utilization_families(out, status);
	memory_family(out, status);
	json_t *host = json_object_get(status, "host");
	family(out, "aerie_host_generation", "gauge", "The host's latest generation.");
	fprintf(out, "aerie_host_generation %lld\n",
		json_integer_value(json_object_get(host, "generation")));
	family(out, "aerie_host_uptime_seconds", "gauge", "Seconds since the host started.");
	fprintf(out, "aerie_host_uptime_seconds %.3f\n",
		json_number_value(json_object_get(host, "uptime")));

	free(roles);
	if (fclose(out) != 0) {
		free(data);
		return -ENOMEM;
	}
	*ret_text = data;
	return (ssize_t)length;
}
