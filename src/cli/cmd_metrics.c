/* cmd_metrics: `aerie metrics [--pid PID] [--json]`, a capture without a host. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "metrics/metrics.h"
#include "metrics/metrics_json.h"
#include "metrics/metrics_table.h"

static void
usage(FILE *out)
{
	fputs("Usage: aerie metrics [--pid PID] [--json] [--scan-proc]\n"
	      "\n"
	      "Capture a process and all its descendants from /proc: the fields of ps\n"
	      "(pid, ppid, pgid, %cpu, vsz, rss, time, elapsed, command) plus PSS/USS memory\n"
	      "from smaps_rollup.\n"
	      "\n"
	      "  -p, --pid PID    root of the tree (default: this command's parent, e.g. your "
	      "shell)\n"
	      "  -j, --json       the supervisor's pid-keyed JSON object instead of a table\n"
	      "      --scan-proc  find children by reading every /proc/PID/stat (what aerie does\n"
	      "                   by itself on kernels without /proc/PID/task/TID/children)\n"
	      "  -h, --help       this text\n",
	      out);
}

int
cmd_metrics(int argc, char **argv)
{
	static const struct option options[] = {
	    {"pid", required_argument, NULL, 'p'},
	    {"json", no_argument, NULL, 'j'},
	    {"scan-proc", no_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	pid_t pid = getppid();
	bool json = false;
	enum metrics_walk walk = METRICS_WALK_CHILDREN;

	for (int c; (c = getopt_long(argc, argv, "p:jh", options, NULL)) != -1;) {
		switch (c) {
		case 'p': {
			char *end;
			errno = 0;
			long value = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || value <= 0 || value > INT_MAX) {
				fprintf(stderr, "aerie metrics: --pid: '%s' is not a process id\n",
					optarg);
				return EXIT_USAGE;
			}
			pid = (pid_t)value;
			break;
		}
		case 'j':
			json = true;
			break;
		case 's':
			walk = METRICS_WALK_SCAN;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "aerie metrics: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}

	struct metrics_tree tree;
	int r = metrics_capture(pid, walk, &tree);
	if (r == -ESRCH) {
		fprintf(stderr, "aerie metrics: no process %d\n", (int)pid);
		return EXIT_FAILED;
	}
	if (r < 0) {
		fprintf(stderr, "aerie metrics: reading /proc for %d: %s\n", (int)pid,
			strerror(-r));
		return EXIT_FAILED;
	}

	int status = EXIT_OK;
	if (json) {
		char *text;
		ssize_t length = metrics_json_encode(&tree, &text);
		/* Commands are what any process made of its argv: json_out_string escaped every
		 * control character in them, C1 ones included, so the text goes out as it is. */
		if (length < 0 || fputs(text, stdout) == EOF || putchar('\n') == EOF)
			status = EXIT_FAILED;
		if (length >= 0)
			free(text);
	} else {
		metrics_table_print(stdout, &tree);
	}
	metrics_tree_free(&tree);
	if (fflush(stdout) == EOF) {
		fprintf(stderr, "aerie metrics: writing output: %s\n", strerror(errno));
		status = EXIT_FAILED;
	}
	return status;
}
