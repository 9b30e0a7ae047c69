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
#include "cli/supervisor_usage.h"
#include "config/config.h"
#include "lib/commands.h"
#include "lib/limits.h"
#include "lib/protocol.h"
#include "lib/unixsock.h"
#include "metrics/metrics_json.h"
#include "metrics/metrics_table.h"

struct client_options {
	const char *socket;
	uid_t owner; /* besides root and this user, who may serve socket (UNIXSOCK_NO_OWNER) */
	double timeout;
	bool json;
	bool prometheus;
	const char *service;
	const char *signal;
	bool check;
	bool names;	 /* status --names */
	double interval; /* top; 0: not given */
	/* stop, start, scale, signal: SERVICE; scale's COUNT; signal's SIG and INDEX (-1: all). */
	const char *target;
	long long count;
	long long worker;
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
	case COMMAND_STOP:
	case COMMAND_START:
		r = json_object_set_new(request, "service", json_string(options->target));
		break;
	case COMMAND_SCALE:
		r = json_object_set_new(request, "service", json_string(options->target));
		if (r == 0)
			r = json_object_set_new(request, "count", json_integer(options->count));
		break;
	case COMMAND_SIGNAL:
		r = json_object_set_new(request, "service", json_string(options->target));
		if (r == 0)
			r = json_object_set_new(request, "signal", json_string(options->signal));
		if (r == 0 && options->worker >= 0)
			r = json_object_set_new(request, "worker", json_integer(options->worker));
		break;
	case COMMAND_STATUS:
	case COMMAND_RELOAD:
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
	} else if (entry->command == COMMAND_STATUS && options->names) {
		print_names(reply);
	} else if (entry->command == COMMAND_STATUS && options->check) {
		code = print_ready(reply);
	} else if (entry->command == COMMAND_STATUS) {
		print_status(reply);
	} else if (entry->command == COMMAND_RELOAD) {
		print_reload(reply);
	} else if (entry->command == COMMAND_STOP || entry->command == COMMAND_START) {
		printf("%s %s\n", entry->command == COMMAND_STOP ? "stopped" : "started",
		       options->target);
	} else if (entry->command == COMMAND_SCALE) {
		printf("scaled %s to %lld worker%s\n", options->target, options->count,
		       options->count == 1 ? "" : "s");
	} else if (entry->command == COMMAND_SIGNAL) {
		json_t *pids = json_object_get(reply, "signalled");
		printf("sent SIG%s to %s:", options->signal, options->target);
		for (size_t i = 0; i < json_array_size(pids); i++)
			printf(" %lld", (long long)json_integer_value(json_array_get(pids, i)));
		printf("\n");
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

/* The words after the command: stop/start SERVICE, scale SERVICE COUNT, signal SIG
 * SERVICE[.INDEX]; none for the others. */
static int
take_arguments(const struct command_entry *entry, int count, char **words,
	       struct client_options *client)
{
	int wanted = 0;
	if (entry && (entry->command == COMMAND_STOP || entry->command == COMMAND_START))
		wanted = 1;
	else if (entry && (entry->command == COMMAND_SCALE || entry->command == COMMAND_SIGNAL))
		wanted = 2;
	if (count != wanted) {
		fprintf(stderr, "aerie supervisor: %s takes %s\n\n", entry ? entry->name : "top",
			wanted ? entry->arguments : "no arguments");
		supervisor_command_usage(stderr, entry);
		return EXIT_USAGE;
	}
	if (wanted == 0)
		return EXIT_OK;
	if (entry->command == COMMAND_SIGNAL) {
		if (client->signal) {
			fprintf(stderr,
				"aerie supervisor: signal takes SIG as a word, not --signal\n");
			return EXIT_USAGE;
		}
		client->signal = words[0];
		words++;
	}
	client->target = words[0];
	if (entry->command == COMMAND_SCALE) {
		char *end;
		errno = 0;
		client->count = strtoll(words[1], &end, 10);
		if (errno || end == words[1] || *end || client->count < 0 ||
		    client->count > CONFIG_MAX_COUNT) {
			fprintf(stderr,
				"aerie supervisor: scale: '%s' is not a count from 0 to %d\n",
				words[1], CONFIG_MAX_COUNT);
			return EXIT_USAGE;
		}
	}
	/* SERVICE.INDEX: service names have no dot, so the last one starts the index. */
	const char *dot = entry->command == COMMAND_SIGNAL ? strrchr(client->target, '.') : NULL;
	if (dot) {
		static char name[PROTOCOL_MAX_SERVICE + 1];
		char *end;
		errno = 0;
		client->worker = strtoll(dot + 1, &end, 10);
		if (errno || end == dot + 1 || *end || client->worker < 0 ||
		    (size_t)(dot - client->target) > PROTOCOL_MAX_SERVICE) {
			fprintf(stderr,
				"aerie supervisor: signal: '%s' is not SERVICE or "
				"SERVICE.INDEX\n",
				client->target);
			return EXIT_USAGE;
		}
		snprintf(name, sizeof(name), "%.*s", (int)(dot - client->target), client->target);
		client->target = name;
	}
	return EXIT_OK;
}

/* The socket: -s, else the one CONFIG's [host] supervisor names (read by the host's own
 * parser), else $AERIE_SOCKET, else supervisor.ipc here. */
static int
find_socket(const char *config_path, struct client_options *client)
{
	static char *from_config;
	if (client->socket && config_path) {
		fprintf(stderr, "aerie supervisor: -s and -c name the socket twice: give one\n");
		return EXIT_USAGE;
	}
	if (config_path) {
		struct config config;
		char error[512];
		if (config_load(config_path, &config, error, sizeof(error)) < 0) {
			fprintf(stderr, "aerie supervisor: %s\n", error);
			return EXIT_USAGE;
		}
		free(from_config);
		from_config = strdup(config.supervisor_path);
		config_free(&config);
		if (!from_config) {
			fprintf(stderr, "aerie supervisor: out of memory\n");
			return EXIT_FAILED;
		}
		client->socket = from_config;
	}
	if (!client->socket) {
		const char *environment = getenv("AERIE_SOCKET");
		client->socket = environment && *environment ? environment : "supervisor.ipc";
	}
	return EXIT_OK;
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
	    {"socket", required_argument, NULL, 's'},  {"timeout", required_argument, NULL, 't'},
	    {"json", no_argument, NULL, 'j'},	       {"prometheus", no_argument, NULL, 'P'},
	    {"service", required_argument, NULL, 'S'}, {"signal", required_argument, NULL, 'g'},
	    {"check", no_argument, NULL, 'C'},	       {"interval", required_argument, NULL, 'i'},
	    {"owner", required_argument, NULL, 'o'},   {"config", required_argument, NULL, 'f'},
	    {"names", no_argument, NULL, 'n'}, /* status --names, for shell completion */
	    {"help", no_argument, NULL, 'h'},	       {0},
	};
	struct client_options client = {.socket = NULL,
					.owner = UNIXSOCK_NO_OWNER,
					.timeout = CLIENT_DEFAULT_TIMEOUT,
					.worker = -1};
	const char *config_path = NULL;
	bool help = false;
	/* logs has its own arguments (cmd_logs.c): the options before its word are the
	 * client's, and what follows is logs'. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "logs") == 0) {
			optind = 1;
			for (int c; optind < i &&
				    (c = getopt_long(i, argv, "s:c:t:h", options, NULL)) != -1;) {
				if (c == 's')
					client.socket = optarg;
				else if (c == 'c' || c == 'f')
					config_path = optarg;
				else if (c == 't')
					client.timeout = strtod(optarg, NULL) > 0
							     ? strtod(optarg, NULL)
							     : client.timeout;
				else if (c == 'o' && parse_owner(optarg, &client.owner) < 0)
					return EXIT_USAGE;
			}
			int code = find_socket(config_path, &client);
			if (code != EXIT_OK)
				return code;
			return cmd_logs(argc - i, argv + i, client.socket, client.timeout,
					client.owner);
		}
		if (argv[i][0] != '-')
			break;
		if (strchr("sct", argv[i][1]) && argv[i][1] && !argv[i][2])
			i++; /* -s SOCKET, -c CONFIG, -t SEC: their value */
		else if (strcmp(argv[i], "--socket") == 0 || strcmp(argv[i], "--timeout") == 0 ||
			 strcmp(argv[i], "--owner") == 0 || strcmp(argv[i], "--config") == 0)
			i++;
	}
	/* Options may come before or after the command word (GNU getopt permutes). */
	for (int c; (c = getopt_long(argc, argv, "s:c:t:jh", options, NULL)) != -1;) {
		switch (c) {
		case 's':
			client.socket = optarg;
			break;
		case 'c':
		case 'f':
			config_path = optarg;
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
		case 'C':
			client.check = true;
			break;
		case 'n':
			client.names = true;
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
			help = true;
			break;
		default:
			supervisor_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind == argc) {
		if (help) {
			supervisor_usage(stdout);
			return EXIT_OK;
		}
		fprintf(stderr, "aerie supervisor: missing COMMAND\n\n");
		supervisor_usage(stderr);
		return EXIT_USAGE;
	}
	const char *command = argv[optind];
	const struct command_entry *entry = command_find(command);
	bool top = strcmp(command, "top") == 0;
	if (!entry && !top) {
		report_unknown(command);
		return EXIT_USAGE;
	}
	if (help) {
		supervisor_command_usage(stdout, entry);
		return EXIT_OK;
	}
	int code = take_arguments(entry, argc - optind - 1, argv + optind + 1, &client);
	if (code != EXIT_OK)
		return code;
	code = find_socket(config_path, &client);
	if (code != EXIT_OK)
		return code;
	if ((client.service || (client.signal && (!entry || entry->command != COMMAND_SIGNAL))) &&
	    (!entry || entry->command != COMMAND_RESTART)) {
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
	if (client.names &&
	    (!entry || entry->command != COMMAND_STATUS || client.json || client.check)) {
		fprintf(stderr, "aerie supervisor: --names goes with status, without --json or "
				"--check\n");
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
