/* cmd_host: `aerie host CONFIG`, the host in the foreground. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include "cli/cli.h"
#include "host/host.h"
#include "lib/log.h"

static void
usage(FILE *out)
{
	fputs("Usage: aerie host [--verbose] [--init] CONFIG\n"
	      "\n"
	      "Run the services of CONFIG (an INI file) in the foreground and keep them alive;\n"
	      "logs go to stderr. Signals: INT/TERM stop gracefully (twice: at once), HUP\n"
	      "re-reads CONFIG and applies the difference (aerie supervisor reload).\n"
	      "\n"
	      "  -v, --verbose   log every state change (debug level)\n"
	      "      --init      act as a container's init (automatic when running as PID 1):\n"
	      "                  reap every orphan, stop gracefully on SIGTERM/SIGINT\n"
	      "  -h, --help      this text\n"
	      "\n"
	      "Exit codes: 0 stopped by a signal, 1 start-up failed, 2 bad usage or config.\n",
	      out);
}

int
cmd_host(int argc, char **argv)
{
	static const struct option options[] = {
	    {"verbose", no_argument, NULL, 'v'},
	    {"init", no_argument, NULL, 'i'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	bool init = false;
	for (int c; (c = getopt_long(argc, argv, "vh", options, NULL)) != -1;) {
		switch (c) {
		case 'v':
			log_set_level(LOG_DEBUG);
			break;
		case 'i':
			init = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "aerie host: %s\n\n",
			optind == argc ? "missing CONFIG" : "too many arguments");
		usage(stderr);
		return EXIT_USAGE;
	}
	return host_main(argv[optind], init || getpid() == 1);
}
