/* cmd_logs: `aerie supervisor [-s SOCKET] logs [SERVICE[.INDEX]] [-n LINES] [-f] [--json]`:
 * the workers' last lines the host keeps, then with -f those that come, until interrupted. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/escape.h"
#include "lib/limits.h"
#include "lib/unixsock.h"

#define LOGS_DEFAULT_LINES 10 /* as tail(1) */

static void
usage(FILE *out)
{
	fputs("usage: aerie supervisor [-s SOCKET] logs [SERVICE[.INDEX]] [-n LINES] [-f] "
	      "[--json]\n\n"
	      "The last LINES (default 10) lines of the workers' output that the host keeps in\n"
	      "memory (log_lines per service), oldest first, as TIME SERVICE.INDEX[PID] text,\n"
	      "stderr lines marked \"stderr:\"; control characters are shown as '?'.\n"
	      "  -f, --follow   then print lines as they come, until interrupted; a gap the\n"
	      "                 client could not keep up with is reported with its count\n"
	      "  --json         one JSON object per line, as the socket gives them\n"
	      "  -n, --lines N  how many of the kept lines first (0: none)\n",
	      out);
}

/* One line object (or a gap) as the user reads it. */
static void
print_frame(const json_t *frame, bool json, const char *text)
{
	if (json) {
		(void)escape_print_json(stdout, text);
		putchar('\n');
		return;
	}
	json_t *missed = json_object_get(frame, "missed");
	if (missed) {
		printf(
		    "-- %lld lines of %s missed: this client read more slowly than they came --\n",
		    (long long)json_integer_value(missed),
		    json_string_value(json_object_get(frame, "service")));
		return;
	}
	const char *time = json_string_value(json_object_get(frame, "time"));
	const char *service = json_string_value(json_object_get(frame, "service"));
	const char *stream = json_string_value(json_object_get(frame, "stream"));
	json_t *line_value = json_object_get(frame, "line");
	/* The line may hold a NUL (\u0000): shown as any control character is, '?'. */
	size_t line_length = json_string_length(line_value);
	char *line = malloc(line_length + 1);
	if (line) {
		memcpy(line, json_string_value(line_value) ? json_string_value(line_value) : "",
		       line_length);
		line[line_length] = '\0';
		for (size_t i = 0; i < line_length; i++)
			if (line[i] == '\0')
				line[i] = '?';
	}
	printf("%s %s.%lld[%lld]%s ", time ? time : "?", service ? service : "?",
	       (long long)json_integer_value(json_object_get(frame, "worker")),
	       (long long)json_integer_value(json_object_get(frame, "pid")),
	       stream && strcmp(stream, "stderr") == 0 ? " stderr:" : "");
	escape_print(stdout, line ? line : "");
	free(line);
	if (json_is_true(json_object_get(frame, "cut")))
		fputs(" [cut]", stdout);
	putchar('\n');
}

/* The first frame is the reply; the others (with -f) one line each. Returns an exit code. */
static int
read_frames(int fd, bool json, bool follow)
{
	size_t capacity = 1 << 16, length = 0;
	char *buffer = malloc(capacity);
	if (!buffer)
		return EXIT_FAILED;
	bool first = true;
	int code = EXIT_OK;
	for (;;) {
		if (length == capacity) {
			if (capacity >= CLIENT_MAX_REPLY) {
				fprintf(stderr, "aerie supervisor: reply too large\n");
				code = EXIT_FAILED;
				break;
			}
			char *grown = realloc(buffer, capacity * 2);
			if (!grown) {
				code = EXIT_FAILED;
				break;
			}
			buffer = grown;
			capacity *= 2;
		}
		ssize_t n = recv(fd, buffer + length, capacity - length, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (first || follow)
				fprintf(stderr, "aerie supervisor: the connection ended%s\n",
					first ? " before the reply" : "");
			code = first ? EXIT_UNREACHABLE : EXIT_OK;
			break;
		}
		length += (size_t)n;
		size_t start = 0;
		for (char *end; (end = memchr(buffer + start, '\0', length - start));) {
			const char *text = buffer + start;
			start = (size_t)(end - buffer) + 1;
			if (!first && json) {
				/* The host's JSON, one line object (or gap) a frame: printed as it
				 * came, made safe for a terminal, without decoding it. */
				print_frame(NULL, true, text);
				continue;
			}
			json_t *frame =
			    json_loadb(text, (size_t)(end - text), JSON_ALLOW_NUL, NULL);
			if (!frame) {
				fprintf(stderr, "aerie supervisor: a reply that is not JSON\n");
				code = EXIT_FAILED;
				goto out;
			}
			if (first) {
				first = false;
				json_t *error = json_object_get(frame, "error");
				if (error) {
					fprintf(stderr, "aerie supervisor: logs: ");
					escape_print(stderr, json_string_value(json_object_get(
								 error, "message")));
					fputc('\n', stderr);
					json_decref(frame);
					code = EXIT_FAILED;
					goto out;
				}
				size_t i;
				json_t *line;
				json_array_foreach(json_object_get(frame, "lines"), i, line)
				{
					char *dumped = json ? json_dumps(line, JSON_COMPACT) : NULL;
					print_frame(line, json, dumped);
					free(dumped);
				}
			} else {
				print_frame(frame, json, text);
			}
			json_decref(frame);
		}
		memmove(buffer, buffer + start, length - start);
		length -= start;
		if (!first && !follow)
			break;
		if (follow)
			(void)fflush(stdout);
	}
out:
	free(buffer);
	return code;
}

int
cmd_logs(int argc, char **argv, const char *socket_path, double timeout, uid_t owner)
{
	static const struct option options[] = {
	    {"lines", required_argument, NULL, 'n'},  {"follow", no_argument, NULL, 'f'},
	    {"json", no_argument, NULL, 'j'},	      {"help", no_argument, NULL, 'h'},
	    {"socket", required_argument, NULL, 's'}, {0},
	};
	long lines = LOGS_DEFAULT_LINES;
	bool follow = false, json = false;
	optind = 1;
	for (int c; (c = getopt_long(argc, argv, "n:fjhs:", options, NULL)) != -1;) {
		char *end;
		switch (c) {
		case 'n':
			lines = strtol(optarg, &end, 10);
			if (*end || end == optarg || lines < 0 || lines > CONFIG_MAX_LOG_LINES) {
				fprintf(stderr,
					"aerie supervisor: logs -n: '%s' is not 0 to %d lines\n",
					optarg, CONFIG_MAX_LOG_LINES);
				return EXIT_USAGE;
			}
			break;
		case 'f':
			follow = true;
			break;
		case 's': /* also after the word logs */
			socket_path = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind > 1) {
		fprintf(stderr, "aerie supervisor: logs takes one SERVICE[.INDEX]\n");
		return EXIT_USAGE;
	}
	json_t *request = json_pack("{s:s,s:I,s:b}", "please", "logs", "lines", (json_int_t)lines,
				    "follow", follow);
	if (!request)
		return EXIT_FAILED;
	if (optind < argc) {
		char service[PROTOCOL_MAX_SERVICE + 1];
		snprintf(service, sizeof(service), "%s", argv[optind]);
		char *dot = strrchr(service, '.');
		char *end = NULL;
		long index = dot && dot[1] ? strtol(dot + 1, &end, 10) : -1;
		if (dot && end && *end == '\0' && index >= 0) {
			*dot = '\0';
			json_object_set_new(request, "worker", json_integer(index));
		}
		json_object_set_new(request, "service", json_string(service));
	}
	char *text = json_dumps(request, JSON_COMPACT);
	json_decref(request);
	if (!text)
		return EXIT_FAILED;
	int fd;
	char error[512];
	int r = unixsock_connect(socket_path, timeout, owner, &fd, error, sizeof(error));
	if (r < 0) {
		free(text);
		fprintf(stderr, "aerie supervisor: %s\n", error);
		return r == -ENAMETOOLONG ? EXIT_USAGE : EXIT_UNREACHABLE;
	}
	size_t length = strlen(text) + 1; /* with its NUL, the frame's end */
	for (size_t sent = 0; sent < length;) {
		ssize_t n = send(fd, text + sent, length - sent, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "aerie supervisor: %s: %s\n", socket_path, strerror(errno));
			free(text);
			close(fd);
			return EXIT_UNREACHABLE;
		}
		sent += (size_t)n;
	}
	free(text);
	int code = read_frames(fd, json, follow);
	close(fd);
	return code;
}
