/* supervisor_usage: the help of `aerie supervisor` and of each of its commands, from
 * command_table and the few forms the client adds to it. */
#include "cli/supervisor_usage.h"

#include <string.h>

/* The forms of a command that the client shows besides the table's, after it. */
static const struct usage_form {
	enum command command;
	const char *form;
	const char *help;
} extra_forms[] = {
    {COMMAND_RESTART, "restart --signal SIG",
     "deliver SIG to the host instead (Falcon's form: HUP reloads, INT/TERM stop)"},
    {COMMAND_STATUS, "status --check",
     "exit 0 only if every service has all its workers ready (a readiness probe)"},
    {COMMAND_STATUS, "status --names",
     "service names and their workers' (web, web.0, ...), one a line: for shell completion"},
};

/* Each command's options, for its own help. */
static const char *const command_options[COMMAND_COUNT] = {
    [COMMAND_METRICS] = "      --json          the reply as JSON\n"
			"      --prometheus    the Prometheus exposition text\n",
    [COMMAND_RESTART] =
	"      --service NAME  only that service\n"
	"      --signal SIG    send SIG to the host instead (HUP, INT, TERM, USR1)\n",
    [COMMAND_STATUS] = "      --json          the reply as JSON\n"
		       "      --check         exit 0 only if every service is at its count\n"
		       "      --names         service and worker names, one a line (completion)\n",
    [COMMAND_RELOAD] = "      --json          the reply as JSON\n"
		       "Exit code 1 and the config's error (file:line) if it does not load: then\n"
		       "nothing changed. [host] keys that need a host restart are named.\n",
    [COMMAND_STOP] = "      --json          the reply as JSON\n",
    [COMMAND_START] = "      --json          the reply as JSON\n",
    [COMMAND_SCALE] = "      --json          the reply as JSON\n"
		      "COUNT 0 stops every worker (the service stays, at count 0).\n",
    [COMMAND_SIGNAL] = "      --json          the reply as JSON\n"
		       "SIG is a name (USR1, SIGUSR1) or a number; INDEX a worker's index.\n"
		       "It goes to each worker's main process, never to the host.\n",
};

/* The client's own command: it pipelines status and metrics each interval. */
static const char top_form[] = "top [--interval SEC]";
static const char top_help[] = "live view of every process: CPU over the last interval (default "
			       "1 s), memory, state; q quits, s sorts, r restarts";

static const char common_options[] =
    "  -s, --socket PATH   the socket (default: $AERIE_SOCKET, else supervisor.ipc here)\n"
    "  -c, --config FILE   the socket that FILE's [host] supervisor names\n"
    "  -t, --timeout SEC   how long to wait to connect and for the answer (default 60)\n"
    "      --owner USER    trust a socket served by USER too (root's and your own\n"
    "                      always are; another's is refused with exit code 3)\n"
    "  -h, --help          this text\n"
    "\n"
    "Exit codes: 0 ok, 1 the request failed, 2 usage, 3 socket unreachable.\n";

/* One command line of the usage: the form, then its help wrapped in a column of its own. */
static void
print_form(FILE *out, const char *form, const char *help)
{
	enum { HELP_COLUMN = 37, HELP_WIDTH = 42 };
	/* A form too wide for its column gets a line of its own. */
	if (fprintf(out, "  %-*s", HELP_COLUMN - 3, form) > HELP_COLUMN - 1)
		fprintf(out, "\n%*s", HELP_COLUMN - 1, "");
	size_t used = 0;
	for (const char *word = help; *word;) {
		size_t length = strcspn(word, " ");
		if (used > 0 && used + 1 + length > HELP_WIDTH) {
			fprintf(out, "\n%*s", HELP_COLUMN, "");
			used = 0;
		} else {
			fputc(' ', out);
			used += used > 0;
		}
		fprintf(out, "%.*s", (int)length, word);
		used += length;
		word += length + strspn(word + length, " ");
	}
	fputc('\n', out);
}

static void
print_entry(FILE *out, const struct command_entry *entry)
{
	char form[64];
	snprintf(form, sizeof(form), "%s%s%s", entry->name, entry->arguments[0] ? " " : "",
		 entry->arguments);
	print_form(out, form, entry->help);
	for (size_t j = 0; j < sizeof(extra_forms) / sizeof(extra_forms[0]); j++)
		if (extra_forms[j].command == entry->command)
			print_form(out, extra_forms[j].form, extra_forms[j].help);
}

void
supervisor_usage(FILE *out)
{
	fputs("Usage: aerie supervisor [-s SOCKET | -c CONFIG] [--timeout SECONDS] COMMAND "
	      "[OPTIONS]\n"
	      "\n"
	      "Talk to a running host through its supervisor socket (Falcon-compatible).\n"
	      "'aerie supervisor COMMAND --help' shows a command's own help.\n"
	      "\n"
	      "Commands:\n",
	      out);
	for (size_t i = 0; i < COMMAND_COUNT; i++)
		print_entry(out, &command_table[i]);
	print_form(out, top_form, top_help);
	fputs("\n", out);
	fputs(common_options, out);
}

void
supervisor_command_usage(FILE *out, const struct command_entry *entry)
{
	const char *arguments = entry ? entry->arguments : "[--interval SEC]";
	fprintf(out, "Usage: aerie supervisor [-s SOCKET | -c CONFIG] %s%s%s\n\n",
		entry ? entry->name : "top", arguments[0] ? " " : "", arguments);
	if (entry)
		print_entry(out, entry);
	else
		print_form(out, top_form, top_help);
	fputs("\n", out);
	if (entry && command_options[entry->command])
		fputs(command_options[entry->command], out);
	else if (!entry)
		fputs("      --interval SEC  seconds between two views (0.1 to 3600; default 1)\n",
		      out);
	fputs(common_options, out);
}
