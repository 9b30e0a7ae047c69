/* commands: the table of the supervisor protocol's commands (see commands.h). */
#include "lib/commands.h"

#include <stdio.h>
#include <string.h>

const struct command_entry command_table[COMMAND_COUNT] = {
    [COMMAND_METRICS] =
	{
	    .name = "metrics",
	    .command = COMMAND_METRICS,
	    .answerer = COMMAND_BY_SUPERVISOR,
	    .arguments = "[--json | --prometheus]",
	    .help = "CPU and memory of the host and every descendant, as a tree (or for "
		    "Prometheus)",
	},
    [COMMAND_RESTART] =
	{
	    .name = "restart",
	    .command = COMMAND_RESTART,
	    /* With a signal the supervisor process sends it to the host itself (Falcon's form). */
	    .answerer = COMMAND_BY_HOST,
	    .arguments = "[--service NAME]",
	    .help = "rolling restart: new workers first, the old ones stop once the new are ready",
	},
    [COMMAND_STATUS] =
	{
	    .name = "status",
	    .command = COMMAND_STATUS,
	    .answerer = COMMAND_BY_HOST,
	    .arguments = "[--json]",
	    .help = "services, workers, readiness, restarts",
	},
    [COMMAND_RELOAD] =
	{
	    .name = "reload",
	    .command = COMMAND_RELOAD,
	    .answerer = COMMAND_BY_HOST,
	    .arguments = "",
	    .help = "read the config again and apply the difference: new services start, removed "
		    "ones stop, a count change scales, any other change rolls that service",
	},
    [COMMAND_STOP] =
	{
	    .name = "stop",
	    .command = COMMAND_STOP,
	    .answerer = COMMAND_BY_HOST,
	    .arguments = "SERVICE",
	    .help = "graceful stop of a service's workers; it stays stopped until start",
	},
    [COMMAND_START] =
	{
	    .name = "start",
	    .command = COMMAND_START,
	    .answerer = COMMAND_BY_HOST,
	    .arguments = "SERVICE",
	    .help = "start a stopped service; done when its workers are ready",
	},
    [COMMAND_SCALE] =
	{
	    .name = "scale",
	    .command = COMMAND_SCALE,
	    .answerer = COMMAND_BY_HOST,
	    .arguments = "SERVICE COUNT",
	    .help = "run COUNT workers: new ones start (done when ready), or the highest "
		    "indexes stop",
	},
    [COMMAND_SIGNAL] =
	{
	    .name = "signal",
	    .command = COMMAND_SIGNAL,
	    .answerer = COMMAND_BY_HOST,
	    .arguments = "SIG SERVICE[.INDEX]",
	    .help = "send any signal to a service's workers (or one worker), never to the host",
	},
    [COMMAND_LOGS] =
	{
	    .name = "logs",
	    .command = COMMAND_LOGS,
	    .answerer = COMMAND_BY_HOST,
	    .arguments = "[SERVICE[.INDEX]] [-n LINES] [-f] [--json]",
	    .help = "the workers' last output lines kept in memory; -f then follows them",
	},
};

const struct command_entry *
command_find(const char *name)
{
	for (size_t i = 0; i < COMMAND_COUNT; i++)
		if (strcmp(command_table[i].name, name) == 0)
			return &command_table[i];
	return NULL;
}

size_t
command_list(char *buffer, size_t size)
{
	size_t length = 0;
	for (size_t i = 0; i < COMMAND_COUNT; i++) {
		const char *separator = i == 0 ? "" : i + 1 == COMMAND_COUNT ? " or " : ", ";
		int n = snprintf(buffer + (length < size ? length : size),
				 length < size ? size - length : 0, "%s\"%s\"", separator,
				 command_table[i].name);
		if (n > 0)
			length += (size_t)n;
	}
	return length;
}
