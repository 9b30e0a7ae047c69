/* supervisor_usage: the help of `aerie supervisor` and of each of its commands. */
#pragma once

#include <stdio.h>

#include "lib/commands.h"

/* Every command, one line each, and the options they share. */
void supervisor_usage(FILE *out);
/* One command's own help: its form, what it does, its options. entry NULL: top. */
void supervisor_command_usage(FILE *out, const struct command_entry *entry);
