/* cli: the subcommands main dispatches to; each returns the process exit code. */
#pragma once

/* Exit codes (SPEC): */
enum {
	EXIT_OK = 0,
	EXIT_FAILED = 1,      /* the request failed: error reply, host refused, pid not found */
	EXIT_USAGE = 2,	      /* bad arguments or config */
	EXIT_UNREACHABLE = 3, /* cannot reach the supervisor socket */
};

int cmd_check(int argc, char **argv);
int cmd_host(int argc, char **argv);
int cmd_metrics(int argc, char **argv);
int cmd_supervisor(int argc, char **argv);
int cmd_supervisor_process(int argc, char **argv);
/* `aerie supervisor … logs …` (cmd_logs.c), argv from the word logs on. */
#include <sys/types.h>
int cmd_logs(int argc, char **argv, const char *socket_path, double timeout, uid_t owner);
