/* worker: one worker process: its spawn (spawn.c: fds, env, process group) and its captured
 * output (output.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "lib/limits.h"
#include "lib/loop.h"

enum worker_state {
	WORKER_STARTING, /* spawned, not ready yet */
	WORKER_READY,
	WORKER_STOPPING, /* stop_signal sent, waiting for the exit */
	WORKER_BACKOFF,	 /* exited, waiting for its restart deadline */
	WORKER_EXITED,	 /* exited and will not be restarted */
	WORKER_FAILED,	 /* died before min_uptime too often (start_limit_*): not restarted
			    until service_reset_failed */
	WORKER_DONE,	 /* exited with status 0 and not restarted by its policy: fine */
};

struct service;
struct worker_environment;
struct config_exec;

/* A worker's tree as the memory checks count it (Falcon's MemoryMonitor). */
struct worker_footprint {
	uint64_t size;	       /* by memory_metric: PSS or RSS, summed */
	uint64_t shared_clean; /* the largest of its processes' */
	uint64_t private_size; /* private clean + dirty, summed */
};

struct worker;

enum worker_stream { WORKER_STDOUT, WORKER_STDERR, WORKER_STREAM_COUNT };

/* One of a worker's output pipes and the line not ended yet. */
struct worker_output {
	struct worker *worker;
	enum worker_stream stream;
	int fd; /* -1: not open */
	/* A line that a read left unfinished, kept for the next: WORKER_OUTPUT_LINE_MAX bytes
	 * allocated the first time one is (most workers write whole lines: they never need it),
	 * freed when the pipe closes. Reads go through one buffer of the host's (output.c). */
	char *partial;
	size_t length; /* bytes in partial */
};

struct worker {
	struct service *service;
	char label[80]; /* "web.2", for log lines */
	unsigned index;
	unsigned generation;
	enum worker_state state;
	pid_t pid;	   /* 0 while not running */
	double started_at; /* CLOCK_MONOTONIC seconds of the last spawn */
	double since;	   /* CLOCK_REALTIME seconds of the last state change, for status */
	unsigned restarts; /* times restarted after an exit */
	unsigned failures; /* consecutive short-lived exits, for the backoff */
	/* min_uptime: a STARTING worker that sent READY=1 (or, with ready = none, started) waits
	 * this long, its timer armed, before it counts as ready. */
	bool settling;
	/* The times (CLOCK_MONOTONIC) of its last deaths before min_uptime, a ring of
	 * start_limit_burst slots allocated at the first (NULL until then: a worker that never
	 * dies young costs nothing for it): all of them within start_limit_interval make it
	 * failed. */
	double *quick_deaths;
	unsigned quick_death_slots, quick_death_next;
	double retry_at; /* CLOCK_REALTIME seconds of the restart in BACKOFF; 0: none due */
	int exit_status; /* last wait status; -1 before the first exit */
	bool
	    ready_timed_out; /* killed for not being ready in time: a failure whatever the status */
	char *status_text;   /* last STATUS= */
	int stop_signal;     /* from the config it was started with */
	bool kill_main;	     /* kill_mode = main: stop_signal to the main process only */
	double stop_timeout;
	double health_timeout; /* > 0: a ready worker must send WATCHDOG=1 this often */
	unsigned health_kills; /* times killed for missing it */
	bool unhealthy;	       /* killed for missing it: a failure whatever the status */
	/* A replacement for a worker over memory_limit: the new one starts beside the old, which
	 * stops once the new one is ready. Each points at the other until then. */
	struct worker *replacing;   /* on the new worker: the one it replaces */
	struct worker *replacement; /* on the old worker: the one starting in its place */
	unsigned memory_replacements;
	/* Leak detection (memory_leak_increases): the largest size seen and the times it grew
	 * more than memory_leak_threshold above it. */
	uint64_t leak_maximum;
	unsigned leak_increases;
	/* Its footprint as measured by the memory check numbered footprint_check: one capture
	 * of its tree per check, whichever rules ask. */
	struct worker_footprint footprint;
	unsigned long footprint_check;
	size_t utilization_segment; /* its slot + 1 in the service's utilization file; 0: none */
	struct loop_timer timer;    /* the one deadline of the current state */
	/* stdout and stderr, a pipe each, read by the host line by line (output.c). */
	struct worker_output output[WORKER_STREAM_COUNT];
	pid_t output_pid;
	/* Built at its first spawn and kept for the next ones, which allocate nothing unless
	 * their inputs differ (spawn.c); freed by worker_release. */
	struct worker_environment *environment;
	/* The step of the child's set-up before exec that failed at the last spawn ("setuid"),
	 * static text; NULL when it did not. */
	const char *spawn_failed_step;
};

/* What the process is started with. */
/* What the host holds per worker is mostly this struct (measured: 100 workers cost the host 500
 * KB more when it had two 2 KiB line buffers and 100 death times inline): what only some
 * workers need is allocated when they do. */
_Static_assert(sizeof(struct worker) <= 512, "struct worker: allocate what only some need");

struct worker_exec {
	char *const *argv;
	const char *directory;
	char *const *env; /* KEY=VALUE added to (and overriding) the host's environment */
	size_t env_count;
	const char *notify_socket; /* NULL: no NOTIFY_SOCKET */
	const char *service_name;
	const int *listen_fds; /* passed at fd 3… with LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES */
	size_t listen_count;
	const char *listen_names;    /* colon-separated, for LISTEN_FDNAMES; NULL: none */
	double watchdog_seconds;     /* > 0: WATCHDOG_USEC and WATCHDOG_PID, as systemd sets them */
	const struct rlimit *nofile; /* RLIMIT_NOFILE set in the child; NULL: the host's own */
	/* user, group, umask, other limits, nice, oom_score_adj, no_new_privileges; NULL: none.
	 * Its limit_nofile comes through nofile. */
	const struct config_exec *options;
	/* > 0: the child starts in this cgroup (its directory, and its cgroup.procs for kernels
	 * without clone3's CLONE_INTO_CGROUP, where the child joins it first). */
	int cgroup_fd;
	int cgroup_procs_fd;
	const char *utilization; /* PATH:OFFSET for AERIE_UTILIZATION; NULL: none */
};

/* Forks and execs; the child is the leader of a new process group, with stdin /dev/null and
 * stdout/stderr on a pipe the loop reads. An exec failure shows in the worker's output and as
 * exit status 127 (not found) or 126. Returns 0 or -errno (no process then), also when the
 * child's set-up before exec failed (EMFILE: no fd left for its /dev/null, EPERM from setuid):
 * worker->spawn_failed_step then names the step. */
int worker_spawn(struct worker *worker, struct loop *loop, const struct worker_exec *exec);
/* Sends signal to the worker's whole process group. */
void worker_kill(const struct worker *worker, int signal);
/* Logs whatever output is left and stops reading it. */
void worker_output_close(struct worker *worker, struct loop *loop);
/* Frees what the worker holds across its runs (its output pipe, its environment): called where
 * a worker is freed, never in between two runs. */
void worker_release(struct worker *worker, struct loop *loop);
/* spawn.c's, once the child runs: closes what is left of the previous run's pipes and reads
 * fds, the new one's stdout and stderr, from the loop. */
void worker_output_open(struct worker *worker, struct loop *loop, const int fds[2], pid_t pid);
/* A new worker's: no pipe open. */
void worker_output_init(struct worker *worker);
/* Where output.c hands what it reads (logs.c's logs_sink, connected by the host at start, so
 * that output.c does not reach up to the services' logs): each line; pump after each read of a
 * pipe; flush once a wake-up's reading is over. Without a sink, lines are dropped. */
struct worker_output_sink {
	void (*line)(const struct worker *worker, enum worker_stream stream, const char *text,
		     size_t length);
	void (*pump)(void);
	void (*flush)(void);
};
void worker_output_sink(const struct worker_output_sink *sink);
