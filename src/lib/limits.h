/* limits: every bound and fixed interval of aerie, in one place. A bound protects a process
 * from its input (a client, a worker, a config file); an interval says how long aerie waits
 * before it tries again. Defaults of config keys are in config/config.h, beside their keys. */
#pragma once

/* The supervisor protocol (SPEC "Supervisor protocol"). */
#define PROTOCOL_MAX_REQUEST (64 * 1024)       /* bytes before the NUL; larger: too_large */
#define PROTOCOL_MAX_CLIENTS 64		       /* concurrent connections to the control socket */
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
 * CONTROL_RESTART_DELAY, doubled for each quick failure in a row up to CONTROL_RESTART_DELAY_MAX
 * (a failed spawn counts as one): a supervisor that cannot start costs a spawn every 30 s. */
#define CONTROL_STABLE_SECONDS 10.0
#define CONTROL_RESTART_DELAY 1.0
#define CONTROL_LISTEN_BACKLOG 128 /* clients the kernel queues on the control socket */
/* A request must reach its NUL this long after its first byte, however the bytes trickle in
 * (between requests a client has SUPERVISOR_IDLE_TIMEOUT). */
#define SUPERVISOR_REQUEST_TIMEOUT 10.0
/* Of PROTOCOL_MAX_CLIENTS, the last ones are kept for root and the host's user; a member of
 * socket_group holds at most SUPERVISOR_MAX_CLIENTS_PER_UID (PostgreSQL's
 * superuser_reserved_connections; s6-ipcserver's per-uid -C). */
#define SUPERVISOR_OPERATOR_RESERVED 8
#define SUPERVISOR_MAX_CLIENTS_PER_UID 16
/* The Prometheus socket's connections, a pool apart from the control socket's. Each has
 * SUPERVISOR_HTTP_TIMEOUT from connect for its request head, and as long without input after
 * its response (Prometheus's default scrape_timeout is 10 s too). */
#define SUPERVISOR_HTTP_MAX_CLIENTS 16
#define SUPERVISOR_HTTP_TIMEOUT 10.0
/* A refused peer is logged once; its further refusals are counted and summed up at most once
 * per interval, for this many uids apart (the rest share one count). */
#define SUPERVISOR_REFUSED_LOG_INTERVAL 10.0
#define SUPERVISOR_REFUSED_LOG_UIDS 16
#define CONTROL_RESTART_DELAY_MAX 30.0
/* A client connecting makes the host ping the supervisor process (at most once this often);
 * one that has not answered this long after is hung (stopped, or its loop stuck) and is
 * killed: a hang keeps a client waiting this long and the restart. Nobody connecting, there is
 * no ping: an idle host wakes for nothing. */
#define CONTROL_PING_INTERVAL 5.0
/* The channel between them (lib/channel.h). A message larger than a datagram's bound goes in a
 * memfd; a reply larger than CHANNEL_REPLY_MAX is refused with too_large. While the host has
 * more than the queue bounds waiting for the supervisor process, it reads no more requests. */
#define CHANNEL_MAX_DATAGRAM (64 * 1024)      /* payload bytes sent inline */
#define CHANNEL_REPLY_MAX (256 * 1024 * 1024) /* bytes of one reply (10000 workers: ~1.4 MB) */
#define CHANNEL_QUEUE_MAX_MESSAGES 256	      /* > PROTOCOL_MAX_CLIENTS: one request each */
#define CHANNEL_QUEUE_MAX_BYTES (64 * 1024 * 1024)
#define CHANNEL_RECEIVE_BATCH 8 /* datagrams the host takes from it per call */

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
/* A stop ends whatever the workers do: this long after the longest stop_timeout everything left
 * gets SIGKILL (orphans have had theirs by then, unless the stop is stuck elsewhere), and the
 * host exits at most HOST_STOP_KILL_WAIT after that even if some process does not die
 * (uninterruptible sleep on a hung file system). */
#define HOST_STOP_GRACE (HOST_ORPHAN_STOP_TIMEOUT + 1.0)
#define HOST_STOP_KILL_WAIT 5.0
#define HOST_ORPHANS_LOGGED 256 /* orphans a stop names once each; more are named at debug */
/* The guard process (host/guard.c). Its pipe holds 131072 of the host's 8-byte messages, more
 * than a host that spawns its largest config at once writes before the guard reads; the groups
 * it lists are one bit per possible pid, up to Linux's PID_MAX_LIMIT on 64-bit (512 KiB). */
#define GUARD_PIPE_SIZE (1024 * 1024)
#define GUARD_MAX_PID (4 * 1024 * 1024)
/* After the host's death the guard removes the services' cgroups once the processes it killed
 * in them have exited: it tries this many times, this far apart (2 s in all). */
#define CGROUP_SWEEP_ROUNDS 100
#define CGROUP_SWEEP_PAUSE_NS (20 * 1000 * 1000)

/* Worker output kept by the host (host/logs.c). A line kept in memory for `logs` is cut at
 * LOGS_LINE_MAX and marked "cut". A service's ring has log_lines x LOGS_LINE_AVERAGE bytes for
 * the lines' text (and 32 per line besides), allocated once: longer lines on average, fewer
 * kept. */
#define LOGS_LINE_MAX 1024
#define LOGS_LINE_AVERAGE 256
/* A `logs -f` client gets its lines in batches of at most CHANNEL_MAX_DATAGRAM / 2 bytes; the
 * host has at most this many batches on their way to it (1 MiB) before the supervisor process
 * says one was written to the client: more than a worker writing without pause puts in the
 * ring in one turn of the loop (WORKER_OUTPUT_READS_PER_WAKEUP reads of a pipe), so a client
 * that keeps up misses nothing. One that reads slower than the worker writes is skipped ahead
 * in the ring and told how many lines it missed: the host never waits for it and holds nothing
 * for it but a position in the ring and the window. */
#define LOGS_FOLLOW_WINDOW 32
/* `logs -f` clients at once, of all services: as many as the supervisor process has. */
#define LOGS_MAX_FOLLOWERS PROTOCOL_MAX_CLIENTS

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
/* start_limit_burst: each worker keeps the times of its last quick deaths, one slot each. */
#define CONFIG_MAX_START_LIMIT_BURST 100
/* log_keep: rotated files of a service; log_lines: lines of a service kept in memory. */
#define CONFIG_MAX_LOG_KEEP 100
#define CONFIG_MAX_LOG_LINES 100000

/* `aerie supervisor` and `top`. */
#define CLIENT_DEFAULT_TIMEOUT 60.0 /* a restart waits for ready_timeout at worst */
#define TOP_DEFAULT_INTERVAL 1.0    /* seconds between refreshes */
#define TOP_RETRY_MAX 1.0	    /* seconds between reconnection attempts, at most */
#define TOP_EVENTS_KEPT 16	    /* events shown */
#define TOP_LOG_LINES 9		    /* rows of the log pane (key l): its title and 8 lines */
/* A CPU window shorter than this is not measured: with /proc's 10 ms ticks, 10 ms of CPU in a
 * 50 ms window would read as 20 %. A capture that comes sooner after the previous one (a second
 * client, a script in a loop) gets the percent of the last full window and keeps its sample. */
#define CPU_INTERVAL_MIN_SECONDS 0.5
/* connect() to a socket whose backlog is full sleeps in the kernel at most this long at a time
 * (SO_SNDTIMEO), then again until --timeout is over: no timeval overflows. */
#define UNIXSOCK_MAX_WAIT 86400.0

/* cgroup v2 (host/cgroup.c): names tried for the host's directory under the root cgroup. */
#define CGROUP_BASE_ATTEMPTS 100
/* The _r lookups of user and group names (config/exec.c): the buffer's first and largest size,
 * so that a broken NSS module cannot make a config load allocate without end. */
#define CONFIG_LOOKUP_BUFFER_MIN 4096
#define CONFIG_LOOKUP_BUFFER_MAX (1 << 20)
/* Utilization segments (host/utilization.c): a service's file starts with room for this many
 * and doubles; a rolling restart or a replacement runs two workers per index for a while. */
#define UTILIZATION_FIRST_SLOTS 64 /* a 4 KiB page */
#define UTILIZATION_MAX_SLOTS (2 * CONFIG_MAX_COUNT + 64)
#define UTILIZATION_ENV_MAX 4200 /* PATH:OFFSET, a path up to PATH_MAX */
/* memory_total_limit: at most this many checks between replacements when they do not help. */
#define SERVICE_BUDGET_BACKOFF_MAX 64
/* [host] memory_free_minimum: seconds between reads of the available memory (Falcon: 10). */
#define HOST_MEMORY_FREE_INTERVAL 10.0
/* metrics captures (metrics/metrics_pool.c, metrics_cache.c). A capture's threads: one per CPU
 * available, the caller's included, up to this; each with a small stack (it holds a few paths;
 * what it reads is on the heap). The supervisor process keeps its tree's /proc fds open between
 * requests, at most 1/METRICS_CACHE_FD_SHARE of its RLIMIT_NOFILE (three per process: stat,
 * smaps_rollup, children; 1024 fds keep 85 processes, the rest are read as without a cache;
 * the host raises its soft limit to the hard one, which the supervisor process inherits), and
 * ends the threads and closes the fds once no capture has been asked for this long. */
#define METRICS_MAX_THREADS 8
#define METRICS_THREAD_STACK (256 * 1024)
#define METRICS_CACHE_FD_SHARE 4
#define METRICS_IDLE_SECONDS 30.0
/* A kept command is read again once it is this old: a process may rewrite its argv at any time
 * (setproctitle: Ruby, nginx, Falcon's own workers) and nothing in stat tells it did, so a
 * command is at most this stale, while clients asking several times a second (top, a
 * dashboard) cost no cmdline read per process each time. */
#define METRICS_CMDLINE_MAX_AGE 1.0
