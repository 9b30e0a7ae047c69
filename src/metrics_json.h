/* metrics_json: a captured tree as the SPEC's pid-keyed JSON object (process-metrics names). */
#pragma once

#include <jansson.h>

#include "metrics.h"

/* Returns a new reference, or NULL when out of memory. */
json_t *metrics_json_tree(const struct metrics_tree *tree);
