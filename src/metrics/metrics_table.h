/* metrics_table: a captured tree as a ps/top-like table, indented as a tree, with totals. */
#pragma once

#include <stdio.h>

#include "metrics/metrics.h"

void metrics_table_print(FILE *out, const struct metrics_tree *tree);
