/* guard: the guard process, which kills the process groups of the host's workers if the host
 * dies without stopping them (kill -9, the OOM killer). */
#pragma once

#include <sys/types.h>

struct loop;

/* Forks the guard process: one per host, before the host opens any fd of its own and before
 * the first worker; it holds only the read end of a pipe (and stderr, for its one message). The
 * host tells it which process groups exist; when the pipe reaches its end without guard_done
 * (the host died), the guard sends SIGKILL to each group still listed and exits. It is not the
 * host's child (the host's tree, which metrics show and stops sweep, is its workers and the
 * supervisor process only), so call it before the host becomes a subreaper. 0 or -errno (no
 * guard then: workers still die with the host, PR_SET_PDEATHSIG, but not their children). */
int guard_start(void);
/* Watches the pipe from loop: a guard that dies early is logged once, at warn. */
int guard_attach(struct loop *loop);
/* A worker's process group exists (pgid: the worker's pid, spawned as its group's leader). */
void guard_add(pid_t pgid);
/* Its group is gone: after kill(-pgid, SIGKILL) at the worker's reap. */
void guard_remove(pid_t pgid);
/* The host exits by itself: the guard exits at once, killing nothing. */
void guard_done(void);
