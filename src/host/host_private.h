/* host_private: the host object, shared by host.c (wiring, signals, systemd, status),
 * host_stop.c (stop and reap) and restart.c (the restart queue and reload). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

#include "config/config.h"
#include "host/control.h"
#include "host/host.h"
#include "host/notify.h"
#include "host/sdnotify.h"
#include "host/service.h"
#include "lib/json_out.h"
#include "lib/limits.h"
#include "lib/loop.h"

struct restart_request {
	struct restart_request *next;
	char *service; /* NULL: all */
	bool reload;
	host_restart_fn fn;
	void *data;
};

/* A change to one service that an operator asked for (stop, start, scale) or a reload made:
 * answered, or counted off the reload, once service_settled says it is done. One at a time per
 * service: another request for it meanwhile is answered "busy". */
enum host_operation_kind {
	HOST_OPERATION_STOP,
	HOST_OPERATION_START,
	HOST_OPERATION_SCALE,
	HOST_OPERATION_REMOVE, /* a reload removed the service: freed once stopped */
};

struct host_operation {
	struct host_operation *next;
	struct service *service;
	enum host_operation_kind kind;
	unsigned from_index;	      /* workers of this index on are new (service_settled) */
	bool reload;		      /* a part of the running reload, which has no ticket */
	struct control_ticket ticket; /* else the request's */
};

/* What a reload did, for its reply and its log line: the names of each list as JSON arrays'
 * contents ("\"web\",\"api\""), and the changes it could not apply live. */
enum host_reload_list {
	HOST_RELOAD_STARTED,
	HOST_RELOAD_STOPPED,
	HOST_RELOAD_RESTARTED,
	HOST_RELOAD_SCALED,
	HOST_RELOAD_UNCHANGED,
	HOST_RELOAD_NOT_APPLIED,
	HOST_RELOAD_LISTS,
};

struct host_reload_report {
	struct json_out lists[HOST_RELOAD_LISTS];
	bool config_error; /* the config did not load: the error is restart_error, code "config" */
	bool busy;	   /* a service it would change was busy: code "busy" */
};

struct host {
	const char *config_path;
	/* The config in force, and older ones that workers of an older generation still use. */
	struct config *configs[HOST_MAX_CONFIGS];
	size_t config_count;
	struct loop *loop;
	struct notify *notify;
	struct control *control;
	/* The host's own service manager (systemd), when started with NOTIFY_SOCKET. */
	struct sdnotify *systemd;
	bool systemd_ready_sent;
	bool systemd_changed; /* something changed this turn: the hook sends one STATUS= */
	char systemd_status[512];
	double watchdog_interval;
	struct loop_timer watchdog_timer;
	double started_at; /* CLOCK_MONOTONIC seconds */
	/* RLIMIT_NOFILE as the host was started with it, which workers get back, if the host
	 * raised its own. */
	struct rlimit nofile_inherited;
	bool nofile_raised;
	struct service **services;
	size_t service_count;
	/* What a service made after start-up (by a reload) is made with. */
	struct spawner spawner;
	service_fn on_service_event;
	unsigned generation;
	int exit_code;
	/* Stopping */
	unsigned stop_requests;
	size_t services_stopped;
	bool orphans_signalled; /* the sweeps of orphans have begun */
	int orphan_signal;	/* what each sweep sends them: SIGTERM, then SIGKILL */
	bool killing;		/* everything got SIGKILL: stop_timer is the wait for the last */
	bool stopped;
	struct loop_timer orphan_timer;
	struct loop_timer stop_timer; /* the stop's own deadline: everything killed, then exit */
	/* The orphans named in the log with orphan_signal: each sweep names only new ones. */
	pid_t orphans_logged[HOST_ORPHANS_LOGGED];
	size_t orphans_logged_count;
	/* Rolling restarts: the one running, and those waiting for it. */
	struct restart_request *restart_running;
	size_t restart_services_pending;
	char restart_error[512];
	struct restart_request *restart_queue;
	/* reload.c's host_reload_run and host_reload_reply, which the queue calls for a reload:
	 * given by host_main, so that the queue below does not reach up to the reload. */
	void (*reload_run)(struct host *host);
	char *(*reload_reply)(struct host *host, const char *error);
	/* The running reload's report (restart_running->reload), NULL otherwise. */
	struct host_reload_report *reload_report;
	struct host_operation *operations;
	/* host_monitor.c: [host] memory_free_minimum and metrics_log_interval, each armed only
	 * when set. */
	unsigned long long memory_free_minimum;
	double metrics_log_interval;
	struct loop_timer memory_free_timer;
	struct loop_timer metrics_log_timer;
	struct memory_pace free_pace;
};

/* host_stop.c */
/* SIGINT/SIGTERM: the first stops gracefully, the next kills. */
void host_stop(struct host *host, int signal);
/* SIGCHLD: waits for every child that exited and tells its owner. */
void host_reap(struct host *host);
/* Quits the loop once stopping, every service stopped and no child is left. */
void host_check_stopped(struct host *host);
/* HOST_ORPHAN_STOP_TIMEOUT after the first sweep: orphans get SIGKILL from then on. */
void host_on_orphan_deadline(struct loop *loop, void *data);
/* The stop's deadline, the longest stop_timeout and HOST_STOP_GRACE after the first SIGTERM:
 * everything left gets SIGKILL; HOST_STOP_KILL_WAIT later, the host exits whatever is left. */
void host_on_stop_deadline(struct loop *loop, void *data);

/* host_monitor.c */
/* Arms the timers of the [host] keys that are set; stops them. */
void host_monitor_start(struct host *host);
void host_monitor_stop(struct host *host);

/* restart.c */
/* Starts the first queued restart if none runs; true if it took one. */
bool host_restart_next(struct host *host);
/* The running restart is over (host->restart_error says how); its asker is told. */
void host_restart_finish(struct host *host);
/* Answers every queued restart "the host is stopping" and forgets it. */
void host_restart_cancel_queued(struct host *host);
struct service *host_find_service(struct host *host, const char *name);
/* Whether an operation (operate.c) or a rolling restart is changing service. */
bool host_service_busy(const struct host *host, const struct service *service);
/* systemd's notify-reload: RELOADING=1 with the time, and status as STATUS=; READY=1 follows
 * from the hook once the restart or reload ends. */
void host_notify_reloading(struct host *host, const char *status);

/* reload.c (above restart.c and operate.c: the queue reaches it through host->reload_run and
 * host->reload_reply) */
/* The running restart is a reload: reads the config again and applies the difference. Its end
 * comes through host_restart_finish like a rolling restart's. */
void host_reload_run(struct host *host);
/* The reply to a reload that ended (error NULL: it worked), as JSON text (malloc'd), or NULL
 * when out of memory. */
char *host_reload_reply(struct host *host, const char *error);

/* operate.c */
/* stop, start, scale and signal requests: answered now or once done. */
void host_operate(struct host *host, const struct control_request *request);

/* host_requests.c: a request the supervisor process passed on (control_open's callback). */
void host_on_control_request(struct control *control, const struct control_request *request,
			     void *data);
/* A logs -f client's batch written, or the client gone (control_on_follow's callback). */
void host_on_follow(struct control_ticket ticket, bool acked);
/* Starts an operation that a reload made (its end counts off restart_services_pending). */
int host_operation_add(struct host *host, struct service *service, enum host_operation_kind kind,
		       unsigned from_index, bool reload, struct control_ticket ticket);
/* Ends the operations that are done (from the before-wait hook); true if any ended. */
bool host_operations_check(struct host *host);
void host_operations_free(struct host *host);
/* start and reload clear a failed service's state (start_limit_burst): the one place. */
void host_clear_failed(struct host *host, struct service *service);
