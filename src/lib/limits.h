/* limits: every bound and fixed interval of aerie, in one place. A bound protects a process
 * from its input (a client, a worker, a config file); an interval says how long aerie waits
 * before it tries again. Defaults of config keys are in config/config.h, beside their keys. */
#pragma once

/* The supervisor protocol (SPEC "Supervisor protocol"). */
#define PROTOCOL_MAX_REQUEST (64 * 1024)       /* bytes before the NUL; larger: too_large */
#define PROTOCOL_MAX_CLIENTS 64		       /* concurrent connections */
#define PROTOCOL_MAX_OUTPUT (16 * 1024 * 1024) /* unread reply bytes before a client is dropped */
#define PROTOCOL_MAX_DEPTH 32		       /* JSON nesting accepted in a request */
#define PROTOCOL_MAX_SERVICE 127 /* the longest "service" a request may name (config's: 64) */
#define CLIENT_MAX_REPLY (64 * 1024 * 1024) /* a reply a client reads; 1000 processes ~700 KiB */

/* The supervisor process. */
#define SUPERVISOR_HTTP_MAX_HEAD 8192  /* bytes of an HTTP request head */
#define SUPERVISOR_IDLE_TIMEOUT 300.0  /* seconds a client may stay without a request */
#define SUPERVISOR_ACCEPT_PAUSE 1.0    /* after EMFILE/ENFILE, as tmux does */
#define SUPERVISOR_REQUESTS_PER_TURN 8 /* then other clients get their turn */
/* The host restarts the supervisor process at once if it had been up this long, else after
 * CONTROL_RESTART_DELAY: a crash loop costs one spawn a second. */
#define CONTROL_STABLE_SECONDS 10.0
#define CONTROL_RESTART_DELAY 1.0
#define CONTROL_LISTEN_BACKLOG 128 /* clients the kernel queues on the control socket */

/* The host and its workers. */
#define HOST_ORPHAN_STOP_TIMEOUT 5.0 /* seconds from SIGTERM to SIGKILL for workers' orphans */
#define HOST_MAX_CONFIGS 8 /* configs in use at once: the current and older generations' */
/* A worker that stayed up this long has its backoff forgotten: its next crash restarts it at
 * once. */
#define SERVICE_BACKOFF_RESET_SECONDS 10.0
#define SERVICE_SPAWN_RETRY_DELAY 1.0 /* after a failed clone: the machine is short */
#define LISTEN_BACKLOG 4096	      /* connections queued while no worker accepts (a restart) */
#define NOTIFY_MAX_DATAGRAM 4096      /* bytes of one sd_notify message */
#define WORKER_OUTPUT_LINE_MAX 2048   /* a longer line of worker output is logged in pieces */
#define WORKER_OUTPUT_READS_PER_WAKEUP                                                             \
	16			/* so that a worker writing without pause can't starve             \
				 */
#define LOG_LINE_MAX 8192	/* bytes of one log line */
#define LOOP_EVENTS_PER_WAIT 64 /* epoll events taken per wait */

/* Config files. */
#define CONFIG_MAX_COUNT 10000	      /* workers in a service */
#define CONFIG_MAX_LINE 4096	      /* characters on one line, without its newline */
#define CONFIG_MAX_NAME 64	      /* characters in a service name */
#define CONFIG_MAX_SECONDS 31536000.0 /* one year: any duration key */
/* Bytes in a config file, counted as they are read, so that a file whose size fstat does not
 * tell (/proc) or one that grows while it is read stops there too. Real configs are a few KiB. */
#define CONFIG_MAX_FILE (1024 * 1024)
/* Entries that are checked against every earlier one for duplicates: with these, a file of
 * CONFIG_MAX_FILE bytes costs milliseconds to check, where unbounded (80,000 env lines in one
 * service) it cost seconds, a reload's seconds in the host's loop. */
#define CONFIG_MAX_SERVICES 1000 /* [service:NAME] sections */
#define CONFIG_MAX_ENV 1000	 /* env lines in a service */
#define CONFIG_MAX_LISTEN 256	 /* listen lines in a service */

/* `aerie supervisor` and `top`. */
#define CLIENT_DEFAULT_TIMEOUT 60.0 /* a restart waits for ready_timeout at worst */
#define TOP_DEFAULT_INTERVAL 1.0    /* seconds between refreshes */
#define TOP_RETRY_MAX 1.0	    /* seconds between reconnection attempts, at most */
#define TOP_EVENTS_KEPT 16	    /* events shown */
/* A CPU window shorter than this is not measured: with /proc's 10 ms ticks, 10 ms of CPU in a
 * 50 ms window would read as 20 %. A capture that comes sooner after the previous one (a second
 * client, a script in a loop) gets the percent of the last full window and keeps its sample. */
#define CPU_INTERVAL_MIN_SECONDS 0.5
