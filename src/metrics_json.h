/* metrics_json: a captured tree as the SPEC's pid-keyed JSON object (process-metrics names). */
#pragma once

#include <jansson.h>

#include "metrics.h"

/* Returns a new reference, or NULL when out of memory. */
json_t *metrics_json_tree(const struct metrics_tree *tree);

/* The reverse, for clients: a pid-keyed object back into a tree in depth-first order with
 * depths from the parent links. Returns 0, or -EINVAL if it is not such an object. */
int metrics_json_parse(const json_t *object, struct metrics_tree *ret_tree);
