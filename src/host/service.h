/* service: the workers of one [service:NAME]: their life cycle, restarts and rolling restarts. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config/config.h"
#include "host/listen.h"
#include "host/worker.h"
#include "lib/loop.h"

enum service_event {
	SERVICE_STOPPED,     /* stopping, and the last worker is gone */
	SERVICE_ROLL_DONE,   /* every worker of the new generation is ready; the old ones stop */
	SERVICE_ROLL_FAILED, /* a new worker failed; the new generation stops, the old serves */
	SERVICE_CHANGED,     /* a worker changed state (for summaries such as systemd's STATUS=) */
};

struct service;
typedef void (*service_fn)(struct service *service, enum service_event event, const char *message,
			   void *data);

struct service {
	char *name;
	const struct config_service *config; /* owned by the host; replaced by a rolling restart */
	struct loop *loop;
	const char *notify_socket;
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
	/* Listening sockets, bound once (from the first config) and passed to every worker. */
	int *listen_fds;
	bool *listen_adopted; /* came from the host's service manager (LISTEN_FDS) */
	char **listen_specs;  /* as written, for closing */
	size_t listen_count;
	char *listen_names;	/* "web:web:…" for LISTEN_FDNAMES */
	char *listen_directory; /* what relative unix: paths are relative to */
};

int service_new(const struct config_service *config, struct loop *loop, const char *notify_socket,
		service_fn fn, void *data, struct service **ret_service);
void service_free(struct service *service);

/* Binds the sockets of config->listen (relative unix paths against directory). On failure
 * error says which and why; nothing stays bound. */
int service_open_sockets(struct service *service, const char *directory,
			 struct listen_inherited *inherited, char *error, size_t error_size);

/* Starts config->count workers of generation (and, with memory_limit, the periodic check). */
int service_start(struct service *service, unsigned generation);
/* Starts generation beside the current one with config (which may be new); reports
 * SERVICE_ROLL_DONE or SERVICE_ROLL_FAILED. -EBUSY if a roll is under way. */
int service_roll(struct service *service, unsigned generation, const struct config_service *config);
/* Graceful stop of every worker; SERVICE_STOPPED once all are gone (at once if none run). */
void service_stop(struct service *service);
/* Immediate stop: SIGKILL to every worker's process group. */
void service_kill(struct service *service);

/* Events from the host: a child exited, a notify message. Return true if the pid was one of
 * this service's workers. */
bool service_child_exited(struct service *service, pid_t pid, int status);
bool service_notified(struct service *service, pid_t pid, bool ready, bool watchdog,
		      const char *status);

/* Counts for status: workers of the serving generation that are ready, and expected. */
unsigned service_ready_count(const struct service *service);
/* Whether pid is one of its workers (running). */
bool service_has_worker(const struct service *service, pid_t pid);
const char *service_state_name(enum worker_state state);
