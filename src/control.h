/* control: the host's side of the supervisor endpoint: binds the control socket, runs the
 * supervisor process (which parses all client input) and answers its requests. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"

struct host;
struct loop;
struct control;

/* Binds config's control socket (a stale one is replaced; one that answers is an error, written
 * into error). Nothing is spawned yet. */
int control_open(struct host *host, struct loop *loop, const struct config *config,
		 struct control **ret_control, char *error, size_t error_size);
/* Starts the supervisor process (and restarts it whenever it exits, until control_stop). */
void control_start(struct control *control);
/* Stops the supervisor process; returns true while it still runs. */
bool control_stop(struct control *control);
/* A child exited: true if it was the supervisor process. */
bool control_child_exited(struct control *control, pid_t pid, int status);
/* The supervisor process, or 0 when none runs. */
pid_t control_pid(const struct control *control);
/* Closes everything and removes the socket file. */
void control_close(struct control *control);
