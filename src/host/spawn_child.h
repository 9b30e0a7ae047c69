/* spawn_child: what spawn.c's child runs, shared by the files that make it up. */
#pragma once

struct worker_exec;

/* Only async-signal-safe calls in such code: the child, which runs on the host's memory (see
 * spawn.c's spawn_child). AddressSanitizer is kept out of it: its frames would poison a stack
 * that no return clears, and it can't tell where that stack is. */
#define CHILD_CODE __attribute__((no_sanitize("address")))

/* Joins exec's cgroup and applies exec->options but limit_nofile (spawn.c sets it). 0, or the
 * errno of the step that failed, named in *ret_step. */
int spawn_options_apply(const struct worker_exec *exec, const char **ret_step);
