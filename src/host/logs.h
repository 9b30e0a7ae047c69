/* logs: what the host keeps of its workers' output (SPEC "logs"): each service's last
 * log_lines lines in a ring allocated once, its log_file with rotation, and the `logs -f`
 * clients that follow them through the supervisor process. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"
#include "host/control.h"
#include "host/worker.h"
#include "lib/channel.h"

struct logs;

/* A service's: its ring of config->log_lines lines and, with log_file, that file, opened now
 * (a file that cannot be opened is logged once and its lines counted as dropped). Returns 0 or
 * -ENOMEM. */
int logs_new(const struct config_service *config, struct logs **ret_logs);
void logs_free(struct logs *logs);

/* One line of a worker's output (any bytes, no newline): into the ring and the file, and to
 * the host's own log at info (stdout) or warn (stderr). logs is NULL for the supervisor
 * process, whose lines only go to the host's log. */
void logs_line(struct logs *logs, const struct worker *worker, enum worker_stream stream,
	       const char *text, size_t length);
/* Lines have come: the files get this turn's lines, each following client that may take more
 * gets them. */
void logs_flush(void);
/* logs_line (to the worker's service), logs_pump and logs_flush as output.c's sink. */
extern const struct worker_output_sink logs_sink;
/* Only the followers' part of it: called after each read of a pipe. */
void logs_pump(void);
/* SIGUSR1: log_file opened again under its name (after an external logrotate). */
void logs_reopen(struct logs *logs);
/* Lines that could not be written to log_file (a full disk, a file that cannot be opened). */
unsigned long long logs_dropped(const struct logs *logs);

/* The logs request: the last lines of the services (one, or all when service is NULL) and,
 * with arguments->flags & CHANNEL_FOLLOW, those that come after, until the client leaves.
 * Answers ticket itself (an unknown service is an error reply). */
void logs_request(struct control *control, struct control_ticket ticket,
		  struct logs *const *services, size_t count, const char *service,
		  const struct channel_arguments *arguments);
/* The reply to it, {"lines":[…]}: the last lines (of worker, or -1 for all) of the services,
 * oldest first, merged by time when there are several. Returns the length or -ENOMEM. */
ssize_t logs_encode(struct logs *const *services, size_t count, int worker, unsigned lines,
		    char **ret_text);
/* The supervisor process wrote a batch to its client (ack), or the client left. */
void logs_acked(struct control_ticket ticket);
void logs_cancelled(struct control_ticket ticket);
