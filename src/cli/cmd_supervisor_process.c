/* cmd_supervisor_process: `aerie supervisor-process`, the host's child that serves the
 * supervisor socket; started by the host only, with the argv and fds of lib/channel.h. */
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "lib/channel.h"
#include "supervisor/supervisor.h"

int
cmd_supervisor_process(int argc, char **argv)
{
	static const struct option options[] = {
	    {CHANNEL_OPTION_HOST_PID, required_argument, NULL, 'p'},
	    {CHANNEL_OPTION_SOCKET_GID, required_argument, NULL, 'g'},
	    {CHANNEL_OPTION_PROMETHEUS, no_argument, NULL, 'P'},
	    /* Not for the host: a self-test of the sandbox, which then exits (see supervisor.h). */
	    {"check-sandbox", required_argument, NULL, 'C'},
	    {0},
	};
	long host_pid = 0, socket_gid = -1;
	bool http = false;
	const char *check = NULL;
	for (int c; (c = getopt_long(argc, argv, "", options, NULL)) != -1;) {
		char *end = "";
		if (c == 'P')
			http = true;
		else if (c == 'C')
			check = optarg;
		else if (c == 'p')
			host_pid = strtol(optarg, &end, 10);
		else if (c == 'g')
			socket_gid = strtol(optarg, &end, 10);
		else
			return EXIT_USAGE;
		if (*end)
			return EXIT_USAGE;
	}
	if (check)
		return sandbox_check(check, optind < argc ? argv[optind] : NULL);
	if (host_pid <= 0 || host_pid > INT_MAX) {
		fprintf(stderr,
			"aerie supervisor-process is started by 'aerie host', not by hand\n");
		return EXIT_USAGE;
	}
	return supervisor_main((pid_t)host_pid, socket_gid < 0 ? (gid_t)-1 : (gid_t)socket_gid,
			       http);
}
