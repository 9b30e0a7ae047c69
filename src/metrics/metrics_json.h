/* metrics_json: a captured tree as the SPEC's pid-keyed JSON object (process-metrics names). */
#pragma once

#include <jansson.h>
#include <sys/types.h>

#include "metrics/metrics.h"

/* Encodes tree as compact JSON into a malloc'd, NUL-terminated buffer. Returns the length (the
 * NUL not counted) or -ENOMEM. */
ssize_t metrics_json_encode(const struct metrics_tree *tree, char **ret_text);

/* The reverse, for clients: a pid-keyed object back into a tree in depth-first order with
 * depths from the parent links. Returns 0, or -EINVAL if it is not such an object. */
int metrics_json_parse(const json_t *object, struct metrics_tree *ret_tree);
