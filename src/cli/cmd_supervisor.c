/* cmd_supervisor: `aerie supervisor [-s SOCKET] COMMAND`, the client of the supervisor socket:
 * the commands of lib/commands.h, and top. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd_top.h"
#include "cli/print.h"
#include "lib/commands.h"
#include "lib/limits.h"
#include "lib/protocol.h"
#include "lib/unixsock.h"
#include "metrics/metrics_json.h"
#include "metrics/metrics_table.h"

/* The forms of a command that the client shows besides the table's, after it. */
static const struct usage_form {
	enum command command;
	const char *form;
	const char *help;
} extra_forms[] = {
    {COMMAND_RESTART, "restart --signal SIG",
     "deliver SIG to the host instead (Falcon's form: HUP restarts, INT/TERM stop)"},
    {COMMAND_STATUS, "status --check",
     "exit 0 only if every service has all its workers ready (a readiness probe)"},
};

/* The client's own command: it pipelines status and metrics each interval. */
static const char top_form[] = "top [--interval SEC]";
static const char top_help[] = "live view of every process: CPU over the last interval (default "
			       "1 s), memory, state; q quits, s sorts, r restarts";

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
usage(FILE *out)
{
	fputs("Usage: aerie supervisor [-s SOCKET] [--timeout SECONDS] COMMAND [OPTIONS]\n"
	      "\n"
	      "Talk to a running host through its supervisor socket (Falcon-compatible).\n"
	      "\n"
	      "Commands:\n",
	      out);
	for (size_t i = 0; i < COMMAND_COUNT; i++) {
		const struct command_entry *entry = &command_table[i];
		char form[64];
		snprintf(form, sizeof(form), "%s %s", entry->name, entry->arguments);
		print_form(out, form, entry->help);
		for (size_t j = 0; j < sizeof(extra_forms) / sizeof(extra_forms[0]); j++)
			if (extra_forms[j].command == entry->command)
				print_form(out, extra_forms[j].form, extra_forms[j].help);
	}
	print_form(out, top_form, top_help);
	fputs("\n"
	      "  -s, --socket PATH   the socket (default: supervisor.ipc in this directory)\n"
	      "  -t, --timeout SEC   how long to wait to connect and for the answer (default 60)\n"
	      "      --owner USER    trust a socket served by USER too (root's and your own\n"
	      "                      always are; another's is refused with exit code 3)\n"
	      "  -h, --help          this text\n"
	      "\n"
	      "Exit codes: 0 ok, 1 the request failed, 2 usage, 3 socket unreachable.\n",
	      out);
}

struct client_options {
	const char *socket;
	uid_t owner; /* besides root and this user, who may serve socket (UNIXSOCK_NO_OWNER) */
	double timeout;
	bool json;
	bool prometheus;
	const char *service;
	const char *signal;
	bool check;
	double interval; /* top; 0: not given */
};

static int
connect_socket(const struct client_options *options, int *ret_fd)
{
	char error[512];
	int r = unixsock_connect(options->socket, options->timeout, options->owner, ret_fd, error,
				 sizeof(error));
	if (r < 0) {
		fprintf(stderr, "aerie supervisor: %s\n", error);
		return r == -ENAMETOOLONG ? EXIT_USAGE : EXIT_UNREACHABLE;
	}
	return EXIT_OK;
}

static double
monotonic_seconds(void)
{
	struct timespec now;
	(void)clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* Waits for fd to be ready until deadline; false on timeout. */
static bool
wait_fd(int fd, short events, double deadline)
{
	for (;;) {
		double left = deadline - monotonic_seconds();
		if (left <= 0)
			return false;
		struct pollfd p = {.fd = fd, .events = events};
		int n = poll(&p, 1, (int)(left * 1000) + 1);
		if (n > 0)
			return true;
		if (n < 0 && errno != EINTR)
			return false;
	}
}

/* Sends one request and reads one reply (up to its NUL). Returns an exit code. */
static int
round_trip(const struct client_options *options, const char *request, json_t **ret_reply)
{
	int fd;
	double deadline = monotonic_seconds() + options->timeout;
	int code = connect_socket(options, &fd);
	if (code != EXIT_OK)
		return code;
	size_t length = strlen(request) + 1, sent = 0;
	while (sent < length) {
		if (!wait_fd(fd, POLLOUT, deadline))
			goto timeout;
		ssize_t n = send(fd, request + sent, length - sent, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
			break; /* refused at accept: its reason is waiting to be read */
		if (n < 0) {
			fprintf(stderr, "aerie supervisor: sending: %s\n", strerror(errno));
			close(fd);
			return EXIT_UNREACHABLE;
		}
		sent += (size_t)n;
	}
	char *reply = NULL;
	size_t reply_length = 0, capacity = 0;
	for (;;) {
		if (reply_length == capacity) {
			capacity = capacity ? capacity * 2 : 64 * 1024;
			char *bigger =
			    capacity <= CLIENT_MAX_REPLY ? realloc(reply, capacity) : NULL;
			if (!bigger) {
				fprintf(stderr, "aerie supervisor: reply too large\n");
				free(reply);
				close(fd);
				return EXIT_FAILED;
			}
			reply = bigger;
		}
		if (!wait_fd(fd, POLLIN, deadline)) {
			free(reply);
			goto timeout;
		}
		ssize_t n = recv(fd, reply + reply_length, capacity - reply_length, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr,
				"aerie supervisor: %s: connection closed before a reply%s%s\n",
				options->socket, n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
			free(reply);
			close(fd);
			return EXIT_UNREACHABLE;
		}
		char *end = memchr(reply + reply_length, '\0', (size_t)n);
		reply_length += (size_t)n;
		if (end) {
			reply_length = (size_t)(end - reply);
			break;
		}
	}
	close(fd);
	json_error_t error;
	*ret_reply = json_loadb(reply, reply_length, JSON_DECODE_ANY, &error);
	free(reply);
	if (!*ret_reply) {
		fprintf(stderr,
			"aerie supervisor: %s did not answer like an aerie or Falcon supervisor "
			"(%s)\n",
			options->socket, error.text);
		return EXIT_UNREACHABLE;
	}
	return EXIT_OK;
timeout:
	fprintf(stderr, "aerie supervisor: no answer from %s within %g s\n", options->socket,
		options->timeout);
	close(fd);
	return EXIT_FAILED;
}

/* The request for entry's command, with the options that go with it. */
static json_t *
request_new(const struct command_entry *entry, const struct client_options *options)
{
	json_t *request = json_pack("{s:s}", "please", entry->name);
	if (!request)
		return NULL;
	int r = 0;
	switch (entry->command) {
	case COMMAND_METRICS:
		if (options->prometheus)
			r = json_object_set_new(request, "format", json_string("prometheus"));
		break;
	case COMMAND_RESTART:
		if (options->service)
			r = json_object_set_new(request, "service", json_string(options->service));
		if (r == 0 && options->signal)
			r = json_object_set_new(request, "signal", json_string(options->signal));
		break;
	case COMMAND_STATUS:
	case COMMAND_LOGS: /* cmd_logs.c's */
	case COMMAND_COUNT:
		break;
	}
	if (r < 0) {
		json_decref(request);
		return NULL;
	}
	return request;
}

static int
run_command(const struct command_entry *entry, const struct client_options *options)
{
	json_t *request = request_new(entry, options);
	char *text = request ? json_dumps(request, JSON_COMPACT) : NULL;
	json_decref(request);
	if (!text) {
		fprintf(stderr, "aerie supervisor: out of memory\n");
		return EXIT_FAILED;
	}
	json_t *reply = NULL;
	int code = round_trip(options, text, &reply);
	free(text);
	if (code != EXIT_OK)
		return code;

	if (print_error(reply)) {
		code = EXIT_FAILED;
	} else if (options->prometheus && json_is_string(reply)) {
		code = print_prometheus(reply);
	} else if (options->json) {
		code = print_json(reply);
	} else if (entry->command == COMMAND_METRICS) {
		struct metrics_tree tree;
		if (metrics_json_parse(reply, &tree) == 0) {
			metrics_table_print(stdout, &tree);
			metrics_tree_free(&tree);
		} else {
			code = print_json(reply); /* not our shape: show it as it is */
		}
	} else if (entry->command == COMMAND_STATUS && options->check) {
		code = print_ready(reply);
	} else if (entry->command == COMMAND_STATUS) {
		print_status(reply);
	} else if (json_object_get(reply, "signal")) {
		char signal[64];
		printf("sent SIG%s to the host\n",
		       print_text(json_object_get(reply, "signal"), "?", signal, sizeof(signal)));
	} else if (json_object_get(reply, "generation")) {
		printf("restarted: generation %lld is serving\n",
		       (long long)json_integer_value(json_object_get(reply, "generation")));
	} else {
		code = print_json(reply); /* e.g. Falcon's bare 1 */
	}
	json_decref(reply);
	return code;
}

/* --owner's USER: a name, or a uid that need not have one (a host in a container). */
static int
parse_owner(const char *text, uid_t *ret_uid)
{
	const struct passwd *user = getpwnam(text);
	if (user) {
		*ret_uid = user->pw_uid;
		return 0;
	}
	char *end;
	errno = 0;
	unsigned long uid = strtoul(text, &end, 10);
	if (errno || end == text || *end || text[0] == '-' || uid >= UNIXSOCK_NO_OWNER)
		return -EINVAL;
	*ret_uid = (uid_t)uid;
	return 0;
}

/* "unknown command" with what there is: the table's and top. */
static void
report_unknown(const char *command)
{
	fprintf(stderr, "aerie supervisor: unknown command '%s' (", command);
	for (size_t i = 0; i < COMMAND_COUNT; i++)
		fprintf(stderr, "%s, ", command_table[i].name);
	fputs("top)\n", stderr);
}

int
cmd_supervisor(int argc, char **argv)
{
	static const struct option options[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"timeout", required_argument, NULL, 't'},
	    {"json", no_argument, NULL, 'j'},
	    {"prometheus", no_argument, NULL, 'P'},
	    {"service", required_argument, NULL, 'S'},
	    {"signal", required_argument, NULL, 'g'},
	    {"check", no_argument, NULL, 'c'},
	    {"interval", required_argument, NULL, 'i'},
	    {"owner", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct client_options client = {.socket = "supervisor.ipc",
					.owner = UNIXSOCK_NO_OWNER,
					.timeout = CLIENT_DEFAULT_TIMEOUT};
	/* logs has its own arguments (cmd_logs.c): the options before its word are the
	 * client's, and what follows is logs'. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "logs") == 0) {
			optind = 1;
			for (int c; optind < i &&
				    (c = getopt_long(i, argv, "s:t:h", options, NULL)) != -1;) {
				if (c == 's')
					client.socket = optarg;
				else if (c == 't')
					client.timeout = strtod(optarg, NULL) > 0
							     ? strtod(optarg, NULL)
							     : client.timeout;
				else if (c == 'o' && parse_owner(optarg, &client.owner) < 0)
					return EXIT_USAGE;
			}
			return cmd_logs(argc - i, argv + i, client.socket, client.timeout,
					client.owner);
		}
		if (argv[i][0] != '-')
			break;
		if (strchr("st", argv[i][1]) && argv[i][1] && !argv[i][2])
			i++; /* -s SOCKET, -t SEC: their value */
		else if (strcmp(argv[i], "--socket") == 0 || strcmp(argv[i], "--timeout") == 0 ||
			 strcmp(argv[i], "--owner") == 0)
			i++;
	}
	/* Options may come before or after the command word (GNU getopt permutes). */
	for (int c; (c = getopt_long(argc, argv, "s:t:jh", options, NULL)) != -1;) {
		switch (c) {
		case 's':
			client.socket = optarg;
			break;
		case 't': {
			char *end;
			client.timeout = strtod(optarg, &end);
			if (*end || end == optarg || !(client.timeout > 0)) {
				fprintf(stderr,
					"aerie supervisor: --timeout: '%s' is not seconds\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		}
		case 'j':
			client.json = true;
			break;
		case 'P':
			client.prometheus = true;
			break;
		case 'S':
			client.service = optarg;
			break;
		case 'c':
			client.check = true;
			break;
		case 'i': {
			char *end;
			client.interval = strtod(optarg, &end);
			if (*end || end == optarg || !(client.interval >= 0.1) ||
			    client.interval > 3600) {
				fprintf(stderr,
					"aerie supervisor: --interval: '%s' is not 0.1 to 3600 s\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		}
		case 'g':
			client.signal = optarg;
			break;
		case 'o':
			if (parse_owner(optarg, &client.owner) < 0) {
				fprintf(
				    stderr,
				    "aerie supervisor: --owner: no user '%s' (a name or a uid)\n",
				    optarg);
				return EXIT_USAGE;
			}
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
		fprintf(stderr, "aerie supervisor: %s\n\n",
			optind == argc ? "missing COMMAND" : "one COMMAND at a time");
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *command = argv[optind];
	const struct command_entry *entry = command_find(command);
	bool top = strcmp(command, "top") == 0;
	if (!entry && !top) {
		report_unknown(command);
		return EXIT_USAGE;
	}
	if ((client.service || client.signal) && (!entry || entry->command != COMMAND_RESTART)) {
		fprintf(stderr, "aerie supervisor: --service and --signal go with restart\n");
		return EXIT_USAGE;
	}
	if (client.prometheus && (!entry || entry->command != COMMAND_METRICS || client.json)) {
		fprintf(stderr,
			"aerie supervisor: --prometheus goes with metrics, without --json\n");
		return EXIT_USAGE;
	}
	if (client.check && (!entry || entry->command != COMMAND_STATUS || client.json)) {
		fprintf(stderr, "aerie supervisor: --check goes with status, without --json\n");
		return EXIT_USAGE;
	}
	if (client.interval > 0 && !top) {
		fprintf(stderr, "aerie supervisor: --interval goes with top\n");
		return EXIT_USAGE;
	}
	if (top) {
		if (client.json || client.prometheus) {
			fprintf(stderr, "aerie supervisor: top has no --json or --prometheus: "
					"without a terminal it prints one table\n");
			return EXIT_USAGE;
		}
		return cmd_top(client.socket,
			       client.interval > 0 ? client.interval : TOP_DEFAULT_INTERVAL,
			       client.timeout, client.owner);
	}
	return run_command(entry, &client);
}
