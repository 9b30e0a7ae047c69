/* service: the workers of one [service:NAME]: their life cycle, restarts and rolling restarts. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"
#include "host/listen.h"
#include "host/utilization.h"
#include "host/worker.h"
#include "lib/loop.h"

/* What the service tells its owner, from service_dispatch (never from inside another call). */
enum service_event {
	SERVICE_STOPPED,     /* stopping, and the last worker is gone */
	SERVICE_ROLL_DONE,   /* every worker of the new generation is ready; the old ones stop */
	SERVICE_ROLL_FAILED, /* a new worker failed; the new generation stops, the old serves */
	SERVICE_CHANGED,     /* workers changed state since the last dispatch (systemd's STATUS=) */
};

/* What happens to a worker; worker_handle in service.c decides what each does in each state. */
enum worker_event {
	WORKER_EVENT_START,    /* spawn it (a new worker, or a restart without delay) */
	WORKER_EVENT_READY,    /* READY=1, or spawned with ready = none */
	WORKER_EVENT_WATCHDOG, /* WATCHDOG=1 */
	WORKER_EVENT_EXITED,   /* reaped by the host */
	WORKER_EVENT_DEADLINE, /* the one timer of its state ran out */
	WORKER_EVENT_STOP,     /* graceful stop: stop_signal, then stop_timeout */
	WORKER_EVENT_KILL,     /* immediate stop: SIGKILL */
	WORKER_EVENT_REPLACE,  /* over memory_limit: start another in its place */
	WORKER_EVENT_COUNT,
};

/* The pace of a memory budget's replacements (memory_total_limit, memory_free_minimum): one
 * at a time, and fewer when they do not help. */
struct memory_pace {
	unsigned wait;	  /* checks still to let pass */
	unsigned backoff; /* the last wait, doubled each time a replacement did not help */
	uint64_t before;  /* the budget's figure when the last replacement was decided; 0: none */
	uint64_t freed;	  /* the private memory of the worker it replaced */
};

/* How the service reaches processes: worker_spawn and worker_kill in the host, fakes in a
 * test. */
struct spawner {
	/* Starts the process and sets worker->pid; 0 or -errno (no process then). */
	int (*spawn)(void *data, struct worker *worker, struct loop *loop,
		     const struct worker_exec *exec);
	/* signal to the process group of a running worker. */
	void (*kill)(void *data, const struct worker *worker, int signal);
	/* signal to the worker's main process only (kill_mode = main); NULL: kill. */
	void (*kill_main)(void *data, const struct worker *worker, int signal);
	/* After a worker's exit: SIGKILL to what it left in its process group (pgid), never to a
	 * single pid, which may already be another process's. */
	void (*kill_group)(void *data, pid_t pgid);
	/* Bytes of memory of pid and its descendants by metric; 0 if unknown. */
	uint64_t (*memory)(void *data, pid_t pid, enum config_memory_metric metric);
	void *data;
	/* The footprint of pid's tree for the memory checks; false if unknown (NULL: none). */
	bool (*footprint)(void *data, pid_t pid, enum config_memory_metric metric,
			  struct worker_footprint *ret_footprint);
};

struct service;
typedef void (*service_fn)(struct service *service, enum service_event event, const char *message,
			   void *data);

/* An event the machine raised for a worker, delivered by service_dispatch. */
struct service_queued {
	struct worker *worker; /* NULL: dropped (the worker was removed) */
	enum worker_event event;
};

struct service {
	char *name;
	const struct config_service *config; /* owned by the host; replaced by a rolling restart */
	struct loop *loop;
	const char *notify_socket;
	struct spawner spawner;
	service_fn fn;
	void *data;
	struct worker **workers; /* every generation, including workers being stopped */
	size_t worker_count, worker_capacity;
	unsigned generation;	  /* the generation that serves */
	unsigned roll_generation; /* the generation being started by a rolling restart, or 0 */
	unsigned roll_next;	  /* with rolling_batch: the next index of the new generation */
	const struct config_service *roll_config;
	bool stopping;
	bool held;	   /* stopped by request (stop): stays stopped until service_resume */
	unsigned restarts; /* of all its workers, ever */
	/* Also of all its workers, ever, across rolling restarts (Prometheus' counters): exits
	 * that were failures, kills for health_timeout, replacements over memory_limit. */
	unsigned failures, health_kills, memory_replacements;
	struct loop_timer memory_timer; /* armed only with memory_limit */
	/* SERVICE_BACKOFF_RESET_SECONDS and SERVICE_SPAWN_RETRY_DELAY; a test shortens them. */
	double backoff_reset;
	double spawn_retry_delay;
	/* Events raised while handling another, and removed workers, which are freed only there:
	 * both wait for service_dispatch, so that nothing is freed under its caller. */
	struct service_queued *queue;
	size_t queue_count, queue_capacity;
	struct worker **removed;
	size_t removed_count, removed_capacity;
	/* What service_dispatch has to tell fn. */
	bool roll_result_pending;
	enum service_event roll_result;
	char roll_message[512];
	bool stopped_pending;
	bool changed;
	/* Listening sockets, bound once (from the first config) and passed to every worker. */
	int *listen_fds;
	bool *listen_adopted; /* came from the host's service manager (LISTEN_FDS) */
	char **listen_specs;  /* as written, for closing */
	/* For closing: a unix socket's file, removed only if it is still that file. */
	struct unixsock_file *listen_files;
	size_t listen_count;
	char *listen_names;	/* "web:web:…" for LISTEN_FDNAMES */
	char *listen_directory; /* what relative unix: paths are relative to */
	/* utilization = yes: the file of its workers' segments, made when the first needs one. */
	char *utilization_path;
	struct utilization utilization;
	/* Replacements by the memory checks, by cause (status, Prometheus). */
	unsigned memory_total_replacements, memory_free_replacements, memory_leak_replacements;
	struct memory_pace budget; /* of memory_total_limit */
	bool budget_settling;	   /* a replacement was under way at the last check */
	/* Odd while a memory check runs (its number), even between them: what workers measured
	 * by that check hold is used again within it, never after. */
	unsigned long memory_check;
	struct logs *logs; /* its output: ring, log_file, followers (logs.c) */
};

int service_new(const struct config_service *config, struct loop *loop, const char *notify_socket,
		const struct spawner *spawner, service_fn fn, void *data,
		struct service **ret_service);
void service_free(struct service *service);
/* Where utilization files go: control_socket.NAME.utilization, beside the control socket. */
int service_set_utilization_path(struct service *service, const char *control_socket);
/* The counters of a worker's segment; false if it has none. */
bool service_worker_utilization(const struct service *service, const struct worker *worker,
				struct utilization_counters *ret_counters);

/* Binds the sockets of config->listen (relative unix paths against directory). On failure
 * error says which and why; nothing stays bound. */
int service_open_sockets(struct service *service, const char *directory,
			 struct listen_inherited *inherited, char *error, size_t error_size);
/* Closes them (and removes unix sockets it created). */
void service_close_sockets(struct service *service);

/* Starts config->count workers of generation (and, with memory_limit, the periodic check). */
int service_start(struct service *service, unsigned generation);
/* Starts generation beside the current one with config (which may be new); reports
 * SERVICE_ROLL_DONE or SERVICE_ROLL_FAILED. -EBUSY if a roll is under way. */
int service_roll(struct service *service, unsigned generation, const struct config_service *config);
/* Graceful stop of every worker; SERVICE_STOPPED once all are gone. */
void service_stop(struct service *service);
/* Immediate stop: SIGKILL to every worker's process group. */
void service_kill(struct service *service);

/* service_control.c: what an operator asks of one service (stop, start, scale). */
/* Graceful stop of every worker, as service_stop, and the service stays stopped (no restart)
 * until service_resume. -EBUSY during a rolling restart. */
int service_hold(struct service *service);
/* Starts a held service again: config->count workers of its generation. -EBUSY while
 * workers of its stop are still running. */
int service_resume(struct service *service);
/* Brings the serving generation to config->count workers: the missing indexes start, those
 * at or above count stop. The host changes config->count (a scale request) or the config
 * (a reload whose only change is the count) before. -EBUSY during a rolling restart. */
int service_scale(struct service *service, const struct config_service *config);
/* Whether what was asked is done: SERVICE_SETTLE_DONE once a held service has no worker left,
 * or every index below count is ready (or exited for good: an old one, or a new one that
 * exited 0) and none above it runs; SERVICE_SETTLE_FAILED (message says which) when a worker
 * of an index from from_index on exited otherwise before it was ready (it goes on by its
 * restart policy). */
enum service_settle { SERVICE_SETTLE_PENDING, SERVICE_SETTLE_DONE, SERVICE_SETTLE_FAILED };
enum service_settle service_settled(const struct service *service, unsigned from_index,
				    char *message, size_t size);

/* Events from the host: a child exited, a notify message. Return true if the pid was one of
 * this service's workers. */
bool service_child_exited(struct service *service, pid_t pid, int status);
bool service_notified(struct service *service, pid_t pid, bool ready, bool watchdog,
		      const char *status);

/* Delivers the events raised since the last call, frees removed workers and tells fn what
 * happened: called from the loop's before-wait hook, until it returns false (nothing was
 * left to do). */
bool service_dispatch(struct service *service);

/* The memory checks (service_memory.c). */
enum service_memory_cause {
	SERVICE_MEMORY_TOTAL_LIMIT,
	SERVICE_MEMORY_FREE_MINIMUM,
	SERVICE_MEMORY_LEAK,
};
/* The replaceable worker (ready, serving, not being replaced) with most private memory and its
 * footprint; NULL if there is none, or when a replacement is under way (*ret_busy). */
struct worker *service_memory_candidate(struct service *service,
					struct worker_footprint *ret_footprint, bool *ret_busy);
enum memory_pace_verdict {
	MEMORY_PACE_GO,		 /* a replacement may be decided */
	MEMORY_PACE_WAIT,	 /* a check let pass */
	MEMORY_PACE_NO_PROGRESS, /* the last replacement did not help: pace->wait checks now */
};
/* Within the budget: the pace starts over. */
void memory_pace_reset(struct memory_pace *pace);
/* Over it. improvement: how much better the figure is than pace->before (0 if not better).
 * A replacement that improved it by less than half the private memory it replaced doubles
 * the wait, up to SERVICE_BUDGET_BACKOFF_MAX checks. */
enum memory_pace_verdict memory_pace_check(struct memory_pace *pace, uint64_t improvement);
/* A replacement was decided at figure, of a worker of freed private bytes. */
void memory_pace_replaced(struct memory_pace *pace, uint64_t figure, uint64_t freed);
/* A graceful replacement of worker, counted under cause. */
void service_memory_replace(struct service *service, struct worker *worker,
			    enum service_memory_cause cause);

/* Counts for status: workers of the serving generation that are ready, and expected. */
unsigned service_ready_count(const struct service *service);
/* Workers of the serving generation in state (WORKER_DONE, WORKER_FAILED), for status. */
unsigned service_state_count(const struct service *service, enum worker_state state);
/* Clears the failed state (start_limit_burst reached) of every failed worker of the service
 * and starts each again, with a fresh start limit and backoff: what `start` and `reload` do
 * for a failed service. Returns how many it restarts; they become ready (or fail again)
 * through the usual events. */
unsigned service_reset_failed(struct service *service);
/* Whether pid is one of its workers (running). */
bool service_has_worker(const struct service *service, pid_t pid);
const char *service_state_name(enum worker_state state);
