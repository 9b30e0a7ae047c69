/* main: argv → subcommand dispatch. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
    {"host", cmd_host, "run the services of a config file in the foreground"},
    {"check", cmd_check, "validate a config file as the host would; nothing starts"},
    {"supervisor", cmd_supervisor, "restart a running host, read its status and metrics"},
    {"metrics", cmd_metrics, "capture a process tree without a host (like process-metrics)"},
    /* Internal: the host's supervisor child. Not listed in --help. */
    {"supervisor-process", cmd_supervisor_process, NULL},
};

static void
usage(FILE *out)
{
	fputs("Usage: aerie COMMAND [OPTIONS]\n"
	      "\n"
	      "A process host and supervisor: runs the services of a config file, keeps them\n"
	      "alive, and answers a Falcon-compatible supervisor socket.\n"
	      "\n"
	      "Commands:\n",
	      out);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (commands[i].summary)
			fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fputs("\n"
	      "Run 'aerie COMMAND --help' for a command's options.\n"
	      "Exit codes: 0 ok, 1 request failed, 2 usage or config error,\n"
	      "3 supervisor socket unreachable.\n",
	      out);
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *name = argv[1];
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
		printf("aerie %s\n", AERIE_VERSION);
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(name, commands[i].name) != 0)
			continue;
		/* getopt names the program in its messages: "aerie supervisor: …". */
		char program[64];
		snprintf(program, sizeof(program), "aerie %s", name);
		argv[1] = program;
		return commands[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "aerie: unknown command '%s'\n\n", name);
	usage(stderr);
	return EXIT_USAGE;
}
