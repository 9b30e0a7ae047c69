/* service_private: what the files of a service share; the host sees only service.h. They are
 * layers, each calling only those below it: service.c (what the host calls) → worker_machine.c
 * (what an event does to a worker) → service_roll.c (generations) → service_list.c (the
 * workers, the queue). */
#pragma once

#include <stdbool.h>

#include "config/config.h"
#include "host/service.h"
#include "host/worker.h"

/* worker_machine.c: the one place that decides what an event does to a worker. */
void service_handle(struct service *service, struct worker *worker, enum worker_event event,
		    int status);

/* service_list.c */
const char *service_event_name(enum worker_event event);
void service_set_state(struct service *service, struct worker *worker, enum worker_state state);
/* The config a worker runs with: the new one for a rolling restart's workers. */
const struct config_service *service_worker_config(const struct service *service,
						   const struct worker *worker);
/* A new worker at the end of the list, not started: BACKOFF until its START. NULL: no memory. */
struct worker *service_worker_new(struct service *service, unsigned index, unsigned generation);
void service_worker_free(struct service *service, struct worker *worker);
/* Out of the list, freed by service_dispatch. */
void service_worker_remove(struct service *service, struct worker *worker);
/* Queues event for worker, handled by service_dispatch after the current one. */
void service_raise(struct service *service, struct worker *worker, enum worker_event event);
/* Forgets what is queued for worker. */
void service_drop_events(struct service *service, const struct worker *worker);
struct worker *service_find_worker(const struct service *service, pid_t pid);

/* service_roll.c */
/* A rolling restart in batches (rolling_batch) rather than all at once. */
bool service_roll_in_batches(const struct config_service *config);
void service_roll_abort(struct service *service, const char *message);
/* A worker of the rolling restart's generation became ready. */
void service_roll_ready(struct service *service, struct worker *worker);

/* service_memory.c */
/* Arms the memory check when a key needs it (memory_limit, memory_total_limit, leaks), stops
 * it otherwise: called at start and whenever a rolling restart brings in another config. */
void service_memory_timer_update(struct service *service);
void service_check_memory(struct loop *loop, void *data);
