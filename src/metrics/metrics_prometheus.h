/* metrics_prometheus: the host's tree and status in Prometheus' text exposition format. */
#pragma once

#include <jansson.h>
#include <sys/types.h>

#include "metrics/metrics.h"

/* Formats every process of tree (labelled with its role, and service/worker for workers, from
 * status: the host's status object) and every worker's restarts, readiness, uptime and
 * generation. Returns a malloc'd NUL-terminated text and its length, or -ENOMEM. */
ssize_t metrics_prometheus_format(const struct metrics_tree *tree, const json_t *status,
				  pid_t host_pid, pid_t supervisor_pid, char **ret_text);
/* The same at a given time (seconds since the epoch, the clock of the status' "since"), for
 * output that does not depend on when it runs. */
ssize_t metrics_prometheus_format_at(const struct metrics_tree *tree, const json_t *status,
				     pid_t host_pid, pid_t supervisor_pid, double now,
				     char **ret_text);
