/* commands: the requests of the supervisor protocol, one table entry each, for every process:
 * the protocol parser, the supervisor process, the host and the client. */
#pragma once

#include <stddef.h>

enum command {
	COMMAND_METRICS,
	COMMAND_RESTART,
	COMMAND_STATUS,
	COMMAND_RELOAD,
	COMMAND_STOP,
	COMMAND_START,
	COMMAND_SCALE,
	COMMAND_SIGNAL,
	COMMAND_LOGS,
	COMMAND_COUNT, /* not a command: the size of the tables indexed by enum command */
};

/* Who answers a request. */
enum command_answerer {
	COMMAND_BY_SUPERVISOR, /* the supervisor process itself, from /proc */
	COMMAND_BY_HOST,       /* the host: the supervisor process passes it on the channel */
};

/* One command of the protocol: what every process knows of it. Its handlers are not here:
 * each lives in the process that runs it, and lib/ is shared by processes that can't call
 * into each other. So this is tmux's cmd_entry made two-sided by the process boundary: the
 * supervisor process dispatches through its own array indexed by enum command
 * (supervisor/requests.c), the host through a switch on it (host/host.c), and the protocol
 * parser reads each command's keys through a third (lib/protocol.c). Adding a command is an
 * entry here and its handler on the side that answers it. */
struct command_entry {
	const char *name; /* its "please" */
	enum command command;
	enum command_answerer answerer;
	const char *arguments; /* the client's options for it, as its help shows them */
	const char *help;      /* one line for the client's help; it wraps it */
};

/* In enum command order, which is the order the client's help and the parser's messages list
 * them in. */
extern const struct command_entry command_table[COMMAND_COUNT];

/* The entry named name, or NULL. */
const struct command_entry *command_find(const char *name);

/* The names quoted and joined for a message, as in "\"metrics\", \"restart\" or \"status\"", into
 * buffer (cut to size). Returns the length it needed, as snprintf does. */
size_t command_list(char *buffer, size_t size);
