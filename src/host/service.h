/* service: the workers of one [service:NAME]: their life cycle, restarts and rolling restarts. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"
#include "host/listen.h"
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

/* How the service reaches processes: worker_spawn and worker_kill in the host, fakes in a
 * test. */
struct spawner {
	/* Starts the process and sets worker->pid; 0 or -errno (no process then). */
	int (*spawn)(void *data, struct worker *worker, struct loop *loop,
		     const struct worker_exec *exec);
	/* signal to the process group of a running worker. */
	void (*kill)(void *data, const struct worker *worker, int signal);
	/* After a worker's exit: SIGKILL to what it left in its process group (pgid), never to a
	 * single pid, which may already be another process's. */
	void (*kill_group)(void *data, pid_t pgid);
	/* Bytes of memory of pid and its descendants by metric; 0 if unknown. */
	uint64_t (*memory)(void *data, pid_t pid, enum config_memory_metric metric);
	void *data;
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
	unsigned restarts;		/* of all its workers, ever */
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
	struct logs *logs;	/* its output: ring, log_file, followers (logs.c) */
};

int service_new(const struct config_service *config, struct loop *loop, const char *notify_socket,
		const struct spawner *spawner, service_fn fn, void *data,
		struct service **ret_service);
void service_free(struct service *service);

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

/* Events from the host: a child exited, a notify message. Return true if the pid was one of
 * this service's workers. */
bool service_child_exited(struct service *service, pid_t pid, int status);
bool service_notified(struct service *service, pid_t pid, bool ready, bool watchdog,
		      const char *status);

/* Delivers the events raised since the last call, frees removed workers and tells fn what
 * happened: called from the loop's before-wait hook, until it returns false (nothing was
 * left to do). */
bool service_dispatch(struct service *service);

/* Counts for status: workers of the serving generation that are ready, and expected. */
unsigned service_ready_count(const struct service *service);
/* Whether pid is one of its workers (running). */
bool service_has_worker(const struct service *service, pid_t pid);
const char *service_state_name(enum worker_state state);
