/* cmd_check: `aerie check CONFIG`, a config validated as the host would load it (the same
 * parser and checks), and the paths the host binds at start looked at: nothing starts, nothing
 * is bound or removed (nginx -t). */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "config/config.h"
#include "lib/listen_spec.h"
#include "lib/unixsock.h"

static void
usage(FILE *out)
{
	fputs("Usage: aerie check CONFIG\n"
	      "\n"
	      "Validate CONFIG as 'aerie host' would load it: every key, and the paths of the\n"
	      "sockets it binds (their directories exist, nothing else is in their place).\n"
	      "Nothing starts and nothing is bound. Prints one line: the services and the\n"
	      "socket, or FILE:LINE: the first error.\n"
	      "\n"
	      "  -h, --help      this text\n"
	      "\n"
	      "Exit codes: 0 valid, 2 invalid (or bad usage).\n",
	      out);
}

/* A unix socket the host will bind at path: its directory must exist, and what is at path
 * already must be a socket (one left behind is replaced; one that answers is a running host).
 * Returns 0, 1 when a host answers there, or -1 with the problem printed. */
static int
check_socket_path(const char *config_path, const char *what, const char *path)
{
	char copy[PATH_MAX];
	snprintf(copy, sizeof(copy), "%s", path);
	const char *directory = dirname(copy);
	struct stat st;
	if (stat(directory, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "aerie: %s: %s: %s: no such directory for the socket\n",
			config_path, what, directory);
		return -1;
	}
	if (lstat(path, &st) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "aerie: %s: %s: %s is not a socket: the host cannot bind there\n",
			config_path, what, path);
		return -1;
	}
	int fd;
	char error[512];
	if (unixsock_connect(path, 0, UNIXSOCK_NO_OWNER, &fd, error, sizeof(error)) == 0) {
		close(fd);
		return 1;
	}
	return 0;
}

int
cmd_check(int argc, char **argv)
{
	static const struct option options[] = {
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	for (int c; (c = getopt_long(argc, argv, "h", options, NULL)) != -1;) {
		if (c == 'h') {
			usage(stdout);
			return EXIT_OK;
		}
		usage(stderr);
		return EXIT_USAGE;
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "aerie check: %s\n\n",
			optind == argc ? "missing CONFIG" : "too many arguments");
		usage(stderr);
		return EXIT_USAGE;
	}
	struct config config;
	char error[512];
	if (config_load(argv[optind], &config, error, sizeof(error)) < 0) {
		fprintf(stderr, "aerie: %s\n", error);
		return EXIT_USAGE;
	}
	int serving = check_socket_path(argv[optind], "supervisor", config.supervisor_path);
	int r = serving < 0 ? -1 : 0;
	unsigned workers = 0;
	for (size_t i = 0; i < config.service_count && r == 0; i++) {
		const struct config_service *service = &config.services[i];
		workers += service->count;
		for (size_t l = 0; l < service->listen_count && r == 0; l++) {
			struct listen_spec spec;
			const char *problem;
			if (listen_spec_parse(service->listen[l], &spec, &problem) < 0 ||
			    spec.family != LISTEN_SPEC_UNIX)
				continue;
			char path[PATH_MAX];
			if (spec.path[0] == '/')
				snprintf(path, sizeof(path), "%s", spec.path);
			else
				snprintf(path, sizeof(path), "%s/%s", config.directory, spec.path);
			char what[128];
			snprintf(what, sizeof(what), "[service:%s] listen", service->name);
			if (check_socket_path(argv[optind], what, path) < 0)
				r = -1;
		}
	}
	if (r == 0)
		printf("%s: ok: %zu service%s, %u worker%s; supervisor socket %s%s\n", argv[optind],
		       config.service_count, config.service_count == 1 ? "" : "s", workers,
		       workers == 1 ? "" : "s", config.supervisor_path,
		       serving == 1 ? " (a host is serving it now)" : "");
	config_free(&config);
	return r == 0 ? EXIT_OK : EXIT_USAGE;
}
