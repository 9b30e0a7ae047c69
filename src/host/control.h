/* control: the host's side of the supervisor endpoint: binds the control socket, runs the
 * supervisor process (which parses all client input) and answers its requests. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"
#include "lib/channel.h"
#include "lib/commands.h"
#include "lib/protocol.h"

struct loop;
struct control;

/* Which request a reply answers. Copied by value into whatever must answer later (a rolling
 * restart); a reply for a supervisor process that has since been replaced is dropped. */
struct control_ticket {
	uint64_t id;
	unsigned epoch;
};

/* A request the supervisor process passed on: it parsed and checked it already, and
 * channel_parse checked the message that carried it. */
struct control_request {
	enum command command; /* one that command_table says the host answers */
	struct control_ticket ticket;
	const char *service; /* restart: one service, or NULL for all; valid during the call */
	struct channel_arguments arguments; /* stop…signal, logs: what the request carries */
};

/* Called for each request; the host answers it with control_reply, at once or later. */
typedef void (*control_fn)(struct control *control, const struct control_request *request,
			   void *data);

/* Binds config's control socket (a stale one is replaced; one that answers is an error, written
 * into error). Nothing is spawned yet. Requests go to fn. */
/* A following client's batch was written to it (acked), or it left (not acked): the
 * followers' business (logs.c), which the host connects here, so that this room does not
 * reach up to it. */
typedef void (*control_follow_fn)(struct control_ticket ticket, bool acked);
void control_on_follow(struct control *control, control_follow_fn fn);
int control_open(struct loop *loop, const struct config *config, control_fn fn, void *data,
		 struct control **ret_control, char *error, size_t error_size);
/* Answers ticket with a reply's JSON text: length bytes and the NUL after them (json[length]),
 * which goes with it as the client's frame. Never dropped while its supervisor process lives:
 * what the channel cannot take at once is queued (a large reply in a memfd); one over
 * CHANNEL_MAX_REPLY becomes a too_large error. */
void control_reply(struct control *control, struct control_ticket ticket, const char *json,
		   size_t length);
/* Sends a batch of `logs -f` frames (each JSON text and its NUL, length bytes in all, at most
 * CHANNEL_MAX_DATAGRAM) for the client of ticket, queued behind what went before. Returns 0, or
 * -ESTALE when that client's supervisor process is gone, or -errno. */
int control_send_logs(struct control *control, struct control_ticket ticket, const char *frames,
		      size_t length);
/* Whether ticket's supervisor process is the one running. */
bool control_ticket_live(const struct control *control, struct control_ticket ticket);
/* Answers ticket with {"error":{"code":code,"message":message}}. */
void control_reply_error(struct control *control, struct control_ticket ticket,
			 enum protocol_code code, const char *message);
/* Starts the supervisor process, and restarts it whenever it exits until control_stop: at once
 * after a run of CONTROL_STABLE_SECONDS, else after a delay that doubles per quick failure. It
 * is pinged every CONTROL_PING_INTERVAL; one that misses an answer is killed (then restarted). */
void control_start(struct control *control);
/* Stops the supervisor process; returns true while it still runs. */
bool control_stop(struct control *control);
/* A child exited: true if it was the supervisor process. */
bool control_child_exited(struct control *control, pid_t pid, int status);
/* The supervisor process, or 0 when none runs. */
pid_t control_pid(const struct control *control);
/* Closes everything and removes the socket file. */
void control_close(struct control *control);
