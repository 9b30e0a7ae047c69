/* cmd_supervisor_process: `aerie supervisor-process`, the host's child that serves the
 * supervisor socket; started by the host only, with the argv and fds of lib/channel.h. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "cli/cli.h"
#include "lib/channel.h"
#include "supervisor/supervisor.h"

/* --socket-gid: "-1" (none) or a gid, 0 to 4294967294, unsigned as gid_t is: a group above
 * INT_MAX is a group like any other. */
static int
parse_gid(const char *text, gid_t *ret_gid)
{
	if (strcmp(text, "-1") == 0) {
		*ret_gid = (gid_t)-1;
		return 0;
	}
	char *end;
	errno = 0;
	unsigned long long value = strtoull(text, &end, 10);
	if (text[0] < '0' || text[0] > '9' || *end || errno || value >= (gid_t)-1)
		return -EINVAL;
	*ret_gid = (gid_t)value;
	return 0;
}

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
	long host_pid = 0;
	gid_t socket_gid = (gid_t)-1;
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
		else if (c == 'g' && parse_gid(optarg, &socket_gid) < 0)
			return EXIT_USAGE;
		else if (c != 'g')
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
	return supervisor_main((pid_t)host_pid, socket_gid, http);
}
