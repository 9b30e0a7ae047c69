/* spawn_child: what spawn.c's child runs, shared by the files that make it up. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct worker_exec;

/* Only async-signal-safe calls in such code: the child, which runs on the host's memory (see
 * spawn.c's spawn_child). AddressSanitizer is kept out of it: its frames would poison a stack
 * that no return clears, and it can't tell where that stack is. */
#define CHILD_CODE __attribute__((no_sanitize("address")))

/* Joins exec's cgroup (with join_cgroup: the clone did not put the child there) and applies
 * exec->options but limit_nofile (spawn.c sets it). 0, or the errno of the step that failed,
 * named in *ret_step. */
int spawn_options_apply(const struct worker_exec *exec, bool join_cgroup, const char **ret_step);
/* clone(fn, stack + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD, data) that starts the child
 * in the cgroup of the directory cgroup_fd (clone3's CLONE_INTO_CGROUP, Linux 5.7). Returns
 * the pid or -errno; -ENOSYS (or -EINVAL, -E2BIG from an older kernel) where it can't. */
pid_t spawn_clone_into_cgroup(int (*fn)(void *), void *data, char *stack, size_t stack_size,
			      int cgroup_fd);
