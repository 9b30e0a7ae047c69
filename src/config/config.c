/* config: an aerie.ini file → plain structs, with file:line:key errors and no side effects. */
#include "config/config.h"

#include "lib/limits.h"
#include "lib/signame.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <ini.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#define LENGTH(array) (sizeof(array) / sizeof((array)[0]))
#define SOCKET_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

enum section { SECTION_NONE, SECTION_HOST, SECTION_SERVICE };

enum key {
	KEY_SUPERVISOR,
	KEY_SOCKET_MODE,
	KEY_SOCKET_GROUP,
	KEY_COMMAND,
	KEY_COUNT,
	KEY_LISTEN,
	KEY_READY,
	KEY_READY_TIMEOUT,
	KEY_RESTART,
	KEY_RESTART_DELAY,
	KEY_RESTART_DELAY_MAX,
	KEY_STOP_SIGNAL,
	KEY_STOP_TIMEOUT,
	KEY_DIRECTORY,
	KEY_ENV,
	KEY_HEALTH_TIMEOUT,
	KEY_ROLLING_BATCH,
	KEY_MEMORY_LIMIT,
	KEY_MEMORY_METRIC,
	KEY_MEMORY_CHECK_INTERVAL,
	KEY_LOG_FORMAT,
	KEY_LOG,
	KEY_PROMETHEUS,
	KEY__MAX,
};

struct parser {
	const char *user_path; /* as the user gave it: every message starts with it */
	FILE *file;
	char *buffer; /* getline's, holding the current line */
	size_t buffer_size;
	unsigned line;
	struct config config; /* being built; freed whole on failure */
	enum section section;
	char *section_name;	      /* "host" or "service:web", for messages */
	unsigned host_line;	      /* where [host] was, 0 if nowhere yet */
	unsigned key_lines[KEY__MAX]; /* where each key of the current section was first set */
	int error;		      /* 0, or the first failure as a negative errno */
	char *message;
	size_t message_size;
};

struct key_info {
	const char *name;
	enum section section;
	bool repeatable;
	int (*parse)(struct parser *p, const struct key_info *key, const char *value);
};

/* Messages ---------------------------------------------------------------------------------- */

static int fail_at(struct parser *p, int error, unsigned line, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

/* Keeps the first failure only: later ones are usually consequences of it. line 0 is for
 * problems of the whole file. */
static int
fail_at(struct parser *p, int error, unsigned line, const char *format, ...)
{
	if (p->error)
		return p->error;
	p->error = error;
	if (p->message_size == 0)
		return error;
	int n = line ? snprintf(p->message, p->message_size, "%s:%u: ", p->user_path, line)
		     : snprintf(p->message, p->message_size, "%s: ", p->user_path);
	if (n >= 0 && (size_t)n < p->message_size) {
		va_list args;
		va_start(args, format);
		vsnprintf(p->message + n, p->message_size - (size_t)n, format, args);
		va_end(args);
	}
	return error;
}

#define fail(p, ...) fail_at((p), -EINVAL, (p)->line, __VA_ARGS__)

static int
fail_errno(struct parser *p, int error)
{
	return fail_at(p, error, 0, "%s", strerror(-error));
}

static int
fail_invalid(struct parser *p, const struct key_info *key, const char *value, const char *hint)
{
	return fail(p, "invalid %s \"%s\" in [%s] (%s)", key->name, value, p->section_name, hint);
}

/* Optimal string alignment distance (Levenshtein plus transpositions), for suggestions. Long
 * strings are never close to a key, so they are not compared. */
static unsigned
edit_distance(const char *a, const char *b)
{
	enum { MAX = 32 };
	size_t la = strlen(a), lb = strlen(b);
	if (la >= MAX || lb >= MAX)
		return MAX;
	unsigned d[MAX + 1][MAX + 1];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (unsigned)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			unsigned cost = a[i - 1] != b[j - 1];
			unsigned best = d[i - 1][j - 1] + cost;
			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

/* Paths ------------------------------------------------------------------------------------- */

/* Removes "." components and repeated or trailing slashes of an absolute path, in place. ".." is
 * left alone: with symbolic links, "a/b/.." is not always "a". */
static void
path_clean(char *path)
{
	char *out = path;
	const char *in = path;
	while (*in) {
		if (*in != '/') {
			*out++ = *in++;
			continue;
		}
		while (*in == '/')
			in++;
		if (in[0] == '.' && (in[1] == '/' || in[1] == '\0')) {
			in++;
			continue;
		}
		if (*in)
			*out++ = '/';
	}
	if (out == path)
		*out++ = '/';
	*out = '\0';
}

/* path if absolute, else directory/path; cleaned. NULL when out of memory. */
static char *
path_join(const char *directory, const char *path)
{
	char *joined;
	if (path[0] == '/')
		joined = strdup(path);
	else if (asprintf(&joined, "%s/%s", directory, path) < 0)
		joined = NULL;
	if (joined)
		path_clean(joined);
	return joined;
}

/* The file's absolute path and directory, made lexically (no symbolic links resolved) so that
 * relative paths in the file mean what they say next to the path the user gave. */
static int
path_locate(const char *path, char **ret_path, char **ret_directory)
{
	char *cwd = NULL, *absolute, *directory;
	if (path[0] != '/' && !(cwd = get_current_dir_name()))
		return -errno;
	absolute = path_join(cwd ? cwd : "/", path);
	free(cwd);
	if (!absolute)
		return -ENOMEM;
	char *slash = strrchr(absolute, '/');
	directory = slash == absolute ? strdup("/") : strndup(absolute, (size_t)(slash - absolute));
	if (!directory) {
		free(absolute);
		return -ENOMEM;
	}
	*ret_path = absolute;
	*ret_directory = directory;
	return 0;
}

/* Values ------------------------------------------------------------------------------------ */

static struct config_service *
current_service(struct parser *p)
{
	return &p->config.services[p->config.service_count - 1];
}

/* Appends a copy of value to a NULL-terminated vector of *count strings. */
static int
strv_append(char ***vector, size_t *count, const char *value)
{
	char *copy = strdup(value);
	char **grown = copy ? realloc(*vector, (*count + 2) * sizeof(**vector)) : NULL;
	if (!grown) {
		free(copy);
		return -ENOMEM;
	}
	grown[(*count)++] = copy;
	grown[*count] = NULL;
	*vector = grown;
	return 0;
}

/* A decimal number of seconds: digits with an optional fraction, nothing else, so no sign,
 * exponent, hex, "inf" or "nan". Done by hand because strtod follows the locale's decimal point.
 * Up to 15 significant digits keep mantissa / 10^k exact, hence rounded as strtod would. */
static int
parse_decimal(const char *text, double *ret_value)
{
	unsigned long long mantissa = 0;
	unsigned digits = 0, fraction_digits = 0;
	bool point = false, any = false;
	for (const char *c = text; *c; c++) {
		if (*c == '.' && !point) {
			point = true;
			continue;
		}
		if (!isdigit((unsigned char)*c))
			return -EINVAL;
		any = true;
		if (mantissa == 0 && *c == '0' && !point)
			continue;
		if (++digits > 15)
			return -EINVAL;
		mantissa = mantissa * 10 + (unsigned)(*c - '0');
		fraction_digits += point;
	}
	if (!any)
		return -EINVAL;
	double scale = 1;
	while (fraction_digits--)
		scale *= 10;
	*ret_value = (double)mantissa / scale;
	return 0;
}

static int
parse_seconds(struct parser *p, const struct key_info *key, const char *value, bool positive,
	      double *ret_seconds)
{
	double seconds;
	if (parse_decimal(value, &seconds) < 0 || seconds > CONFIG_MAX_SECONDS ||
	    (positive && seconds <= 0))
		return fail_invalid(p, key, value,
				    positive ? "expected seconds, more than 0 and at most 31536000"
					     : "expected seconds from 0 to 31536000");
	*ret_seconds = seconds;
	return 0;
}

/* An unsigned decimal of at most max, digits only. */
static int
parse_unsigned(const char *text, unsigned base, unsigned long max, unsigned long *ret_value)
{
	unsigned long value = 0;
	if (*text == '\0')
		return -EINVAL;
	for (const char *c = text; *c; c++) {
		if (*c < '0' || *c >= '0' + (int)base)
			return -EINVAL;
		value = value * base + (unsigned long)(*c - '0');
		if (value > max)
			return -EINVAL;
	}
	*ret_value = value;
	return 0;
}

static int
parse_path(struct parser *p, const struct key_info *key, const char *value, char **ret_path)
{
	if (*value == '\0')
		return fail_invalid(p, key, value, "expected a path");
	char *path = path_join(p->config.directory, value);
	if (!path)
		return fail_errno(p, -ENOMEM);
	*ret_path = path;
	return 0;
}

static int
check_socket_path(struct parser *p, unsigned line, const char *path)
{
	if (strlen(path) <= SOCKET_PATH_MAX)
		return 0;
	return fail_at(
	    p, -EINVAL, line,
	    "supervisor path \"%s\" is too long for a unix socket (%zu bytes, at most %zu)", path,
	    strlen(path), SOCKET_PATH_MAX);
}

static int
parse_supervisor(struct parser *p, const struct key_info *key, const char *value)
{
	if (parse_path(p, key, value, &p->config.supervisor_path) < 0)
		return p->error;
	return check_socket_path(p, p->line, p->config.supervisor_path);
}

static int
parse_socket_mode(struct parser *p, const struct key_info *key, const char *value)
{
	unsigned long mode;
	if (parse_unsigned(value, 8, 07777, &mode) < 0)
		return fail_invalid(p, key, value, "expected an octal mode such as 0660");
	p->config.socket_mode = (mode_t)mode;
	return 0;
}

static int
parse_socket_group(struct parser *p, const struct key_info *key, const char *value)
{
	if (*value == '\0')
		return fail_invalid(p, key, value, "expected a group name or number");
	/* Checked here rather than when the socket is made, so that it is a config error with
	 * its line like any other. */
	unsigned long gid;
	if (!getgrnam(value) && parse_unsigned(value, 10, UINT32_MAX - 1, &gid) < 0)
		return fail_invalid(p, key, value, "no such group");
	if (!(p->config.socket_group = strdup(value)))
		return fail_errno(p, -ENOMEM);
	return 0;
}

/* Whether inih cut an inline comment off this raw "key = value" line: a ";" after white space
 * past the "=" (or ":"). Quotes do not protect it, which is the surprise worth a hint. */
static bool
comment_cut(const char *line)
{
	const char *c = line + strcspn(line, "=:");
	for (bool space = false; *c; c++) {
		if (space && *c == ';')
			return true;
		space = isspace((unsigned char)*c);
	}
	return false;
}

static int
parse_command(struct parser *p, const struct key_info *key, const char *value)
{
	const char *problem = "invalid command";
	int r = config_split_command(value, &current_service(p)->argv, &problem);
	if (r == -ENOMEM)
		return fail_errno(p, r);
	if (r < 0 && strcmp(problem, "unterminated quote") == 0 && comment_cut(p->buffer))
		return fail_invalid(p, key, value,
				    "unterminated quote; \" ;\" starts a comment, even in quotes");
	if (r < 0)
		return fail_invalid(p, key, value, problem);
	return 0;
}

static int
parse_count(struct parser *p, const struct key_info *key, const char *value)
{
	unsigned long count;
	if (parse_unsigned(value, 10, CONFIG_MAX_COUNT, &count) < 0 || count == 0)
		return fail_invalid(p, key, value, "expected a whole number from 1 to 10000");
	current_service(p)->count = (unsigned)count;
	return 0;
}

static const char *
port_problem(const char *port)
{
	unsigned long number;
	if (parse_unsigned(port, 10, 65535, &number) < 0 || number == 0)
		return "the port must be a number from 1 to 65535";
	return NULL;
}

/* Checks the form only: names are resolved and sockets bound by the host. */
static const char *
listen_problem(const char *value)
{
	if (strncmp(value, "unix:", 5) == 0) {
		if (value[5] == '\0')
			return "the socket path is empty";
		if (strlen(value + 5) > SOCKET_PATH_MAX)
			return "the socket path is too long for a unix socket (at most 107 bytes)";
		return NULL;
	}
	if (strncmp(value, "tcp6:", 5) == 0) {
		const char *open = value + 5, *close = strchr(open, ']');
		if (*open != '[' || !close || close[1] != ':')
			return "expected tcp6:[ADDR]:PORT";
		/* An optional %zone (fe80::1%eth0) is the host's to interpret. */
		size_t length = strcspn(open + 1, "%]");
		char address[INET6_ADDRSTRLEN];
		struct in6_addr parsed;
		if (length >= sizeof(address))
			return "not an IPv6 address";
		memcpy(address, open + 1, length);
		address[length] = '\0';
		if (inet_pton(AF_INET6, address, &parsed) != 1)
			return "not an IPv6 address";
		if (open[1 + length] == '%' && open + 2 + length == close)
			return "the zone after \"%\" is empty";
		return port_problem(close + 2);
	}
	if (strncmp(value, "tcp:", 4) == 0) {
		const char *host = value + 4, *colon = strrchr(host, ':');
		if (!colon)
			return "expected tcp:HOST:PORT";
		if (colon == host)
			return "the host is empty";
		if (*host == '[' || memchr(host, ':', (size_t)(colon - host)))
			return "for IPv6 use tcp6:[ADDR]:PORT";
		for (const char *c = host; c < colon; c++)
			if (!isalnum((unsigned char)*c) && !strchr(".-_", *c))
				return "the host must be a name or an IPv4 address";
		return port_problem(colon + 1);
	}
	return "expected tcp:HOST:PORT, tcp6:[ADDR]:PORT or unix:PATH";
}

static int
parse_listen(struct parser *p, const struct key_info *key, const char *value)
{
	struct config_service *service = current_service(p);
	const char *problem = listen_problem(value);
	if (problem)
		return fail_invalid(p, key, value, problem);
	for (size_t i = 0; i < service->listen_count; i++)
		if (strcmp(service->listen[i], value) == 0)
			return fail(p, "duplicate listen \"%s\" in [%s]", value, p->section_name);
	if (strv_append(&service->listen, &service->listen_count, value) < 0)
		return fail_errno(p, -ENOMEM);
	return 0;
}

static int
parse_ready(struct parser *p, const struct key_info *key, const char *value)
{
	if (strcmp(value, "notify") == 0)
		current_service(p)->ready = CONFIG_READY_NOTIFY;
	else if (strcmp(value, "none") == 0)
		current_service(p)->ready = CONFIG_READY_NONE;
	else
		return fail_invalid(p, key, value, "expected notify or none");
	return 0;
}

static int
parse_ready_timeout(struct parser *p, const struct key_info *key, const char *value)
{
	return parse_seconds(p, key, value, true, &current_service(p)->ready_timeout);
}

static int
parse_restart(struct parser *p, const struct key_info *key, const char *value)
{
	if (strcmp(value, "always") == 0)
		current_service(p)->restart = CONFIG_RESTART_ALWAYS;
	else if (strcmp(value, "on-failure") == 0)
		current_service(p)->restart = CONFIG_RESTART_ON_FAILURE;
	else if (strcmp(value, "never") == 0)
		current_service(p)->restart = CONFIG_RESTART_NEVER;
	else
		return fail_invalid(p, key, value, "expected always, on-failure or never");
	return 0;
}

static int
parse_restart_delay(struct parser *p, const struct key_info *key, const char *value)
{
	return parse_seconds(p, key, value, false, &current_service(p)->restart_delay);
}

static int
parse_restart_delay_max(struct parser *p, const struct key_info *key, const char *value)
{
	return parse_seconds(p, key, value, false, &current_service(p)->restart_delay_max);
}

static int
parse_stop_signal(struct parser *p, const struct key_info *key, const char *value)
{
	int signal = signame_parse(value);
	if (signal < 0)
		return fail_invalid(p, key, value,
				    "expected a signal name such as TERM or INT, "
				    "or its number");
	current_service(p)->stop_signal = signal;
	return 0;
}

static int
parse_stop_timeout(struct parser *p, const struct key_info *key, const char *value)
{
	return parse_seconds(p, key, value, false, &current_service(p)->stop_timeout);
}

static int
parse_rolling_batch(struct parser *p, const struct key_info *key, const char *value)
{
	unsigned long batch;
	if (parse_unsigned(value, 10, CONFIG_MAX_COUNT, &batch) < 0)
		return fail_invalid(p, key, value,
				    "expected a number of workers, 0 (all at once) to 10000");
	current_service(p)->rolling_batch = (unsigned)batch;
	return 0;
}

static int
parse_health_timeout(struct parser *p, const struct key_info *key, const char *value)
{
	return parse_seconds(p, key, value, false, &current_service(p)->health_timeout);
}

/* "512M", "2G", "65536", "1.5G"; "0" or "none" for no limit. Units are binary (KiB...). */
static int
parse_memory_limit(struct parser *p, const struct key_info *key, const char *value)
{
	if (strcmp(value, "none") == 0) {
		current_service(p)->memory_limit = 0;
		return 0;
	}
	char number[32];
	size_t length = strlen(value);
	unsigned long long unit = 1;
	if (length > 0 && length < sizeof(number)) {
		switch (value[length - 1]) {
		case 'K':
		case 'k':
			unit = 1ULL << 10;
			length--;
			break;
		case 'M':
		case 'm':
			unit = 1ULL << 20;
			length--;
			break;
		case 'G':
		case 'g':
			unit = 1ULL << 30;
			length--;
			break;
		case 'T':
		case 't':
			unit = 1ULL << 40;
			length--;
			break;
		}
	}
	double amount;
	if (length == 0 || length >= sizeof(number))
		return fail_invalid(p, key, value, "expected a size such as 512M, 2G or none");
	memcpy(number, value, length);
	number[length] = '\0';
	if (parse_decimal(number, &amount) < 0 || amount * (double)unit > 1e18)
		return fail_invalid(p, key, value, "expected a size such as 512M, 2G or none");
	current_service(p)->memory_limit = (unsigned long long)(amount * (double)unit);
	return 0;
}

static int
parse_memory_metric(struct parser *p, const struct key_info *key, const char *value)
{
	if (strcmp(value, "pss") == 0)
		current_service(p)->memory_metric = CONFIG_MEMORY_PSS;
	else if (strcmp(value, "rss") == 0)
		current_service(p)->memory_metric = CONFIG_MEMORY_RSS;
	else
		return fail_invalid(p, key, value, "expected pss or rss");
	return 0;
}

static int
parse_memory_check_interval(struct parser *p, const struct key_info *key, const char *value)
{
	return parse_seconds(p, key, value, true, &current_service(p)->memory_check_interval);
}

/* HOST:PORT (or [ADDR]:PORT), kept as the listen line that would bind it. */
static int
parse_prometheus(struct parser *p, const struct key_info *key, const char *value)
{
	char spec[300];
	snprintf(spec, sizeof(spec), "%s%s", value[0] == '[' ? "tcp6:" : "tcp:", value);
	const char *problem = strlen(value) < 256 ? listen_problem(spec) : "too long";
	if (problem)
		return fail_invalid(p, key, value, "expected HOST:PORT such as 127.0.0.1:9464");
	if (!(p->config.prometheus = strdup(spec)))
		return fail_errno(p, -ENOMEM);
	return 0;
}

static int
parse_log(struct parser *p, const struct key_info *key, const char *value)
{
	return parse_path(p, key, value, &p->config.log_path);
}

static int
parse_log_format(struct parser *p, const struct key_info *key, const char *value)
{
	if (strcmp(value, "text") == 0)
		p->config.log_format = CONFIG_LOG_TEXT;
	else if (strcmp(value, "json") == 0)
		p->config.log_format = CONFIG_LOG_JSON;
	else
		return fail_invalid(p, key, value, "expected text or json");
	return 0;
}

static int
parse_directory(struct parser *p, const struct key_info *key, const char *value)
{
	return parse_path(p, key, value, &current_service(p)->directory);
}

static int
parse_env(struct parser *p, const struct key_info *key, const char *value)
{
	struct config_service *service = current_service(p);
	size_t length = 0;
	while (value[length] == '_' || isalnum((unsigned char)value[length]))
		length++;
	if (length == 0 || isdigit((unsigned char)value[0]) || value[length] != '=')
		return fail_invalid(p, key, value,
				    "expected KEY=VALUE, KEY made of letters, digits and _, not "
				    "starting with a digit");
	for (size_t i = 0; i < service->env_count; i++)
		if (strncmp(service->env[i], value, length + 1) == 0)
			return fail(p, "duplicate env key \"%.*s\" in [%s]", (int)length, value,
				    p->section_name);
	if (strv_append(&service->env, &service->env_count, value) < 0)
		return fail_errno(p, -ENOMEM);
	return 0;
}

static const struct key_info keys[KEY__MAX] = {
    [KEY_SUPERVISOR] = {"supervisor", SECTION_HOST, false, parse_supervisor},
    [KEY_SOCKET_MODE] = {"socket_mode", SECTION_HOST, false, parse_socket_mode},
    [KEY_SOCKET_GROUP] = {"socket_group", SECTION_HOST, false, parse_socket_group},
    [KEY_COMMAND] = {"command", SECTION_SERVICE, false, parse_command},
    [KEY_COUNT] = {"count", SECTION_SERVICE, false, parse_count},
    [KEY_LISTEN] = {"listen", SECTION_SERVICE, true, parse_listen},
    [KEY_READY] = {"ready", SECTION_SERVICE, false, parse_ready},
    [KEY_READY_TIMEOUT] = {"ready_timeout", SECTION_SERVICE, false, parse_ready_timeout},
    [KEY_RESTART] = {"restart", SECTION_SERVICE, false, parse_restart},
    [KEY_RESTART_DELAY] = {"restart_delay", SECTION_SERVICE, false, parse_restart_delay},
    [KEY_RESTART_DELAY_MAX] = {"restart_delay_max", SECTION_SERVICE, false,
			       parse_restart_delay_max},
    [KEY_STOP_SIGNAL] = {"stop_signal", SECTION_SERVICE, false, parse_stop_signal},
    [KEY_STOP_TIMEOUT] = {"stop_timeout", SECTION_SERVICE, false, parse_stop_timeout},
    [KEY_DIRECTORY] = {"directory", SECTION_SERVICE, false, parse_directory},
    [KEY_ENV] = {"env", SECTION_SERVICE, true, parse_env},
    [KEY_HEALTH_TIMEOUT] = {"health_timeout", SECTION_SERVICE, false, parse_health_timeout},
    [KEY_ROLLING_BATCH] = {"rolling_batch", SECTION_SERVICE, false, parse_rolling_batch},
    [KEY_MEMORY_LIMIT] = {"memory_limit", SECTION_SERVICE, false, parse_memory_limit},
    [KEY_MEMORY_METRIC] = {"memory_metric", SECTION_SERVICE, false, parse_memory_metric},
    [KEY_MEMORY_CHECK_INTERVAL] = {"memory_check_interval", SECTION_SERVICE, false,
				   parse_memory_check_interval},
    [KEY_LOG_FORMAT] = {"log_format", SECTION_HOST, false, parse_log_format},
    [KEY_LOG] = {"log", SECTION_HOST, false, parse_log},
    [KEY_PROMETHEUS] = {"prometheus", SECTION_HOST, false, parse_prometheus},
};

/* Sections ---------------------------------------------------------------------------------- */

/* Checks what needs the whole section, once it has ended. */
static int
finish_section(struct parser *p)
{
	if (p->section != SECTION_SERVICE)
		return 0;
	struct config_service *service = current_service(p);
	if (!service->argv)
		return fail_at(p, -EINVAL, service->line, "missing command in [%s]",
			       p->section_name);
	/* WATCHDOG=1 travels on NOTIFY_SOCKET, which only ready = notify gives a worker. */
	if (service->health_timeout > 0 && service->ready != CONFIG_READY_NOTIFY)
		return fail_at(p, -EINVAL, p->key_lines[KEY_HEALTH_TIMEOUT],
			       "health_timeout needs ready = notify in [%s] (workers report health "
			       "with WATCHDOG=1 on NOTIFY_SOCKET)",
			       p->section_name);
	if (service->restart_delay_max < service->restart_delay) {
		unsigned max_line = p->key_lines[KEY_RESTART_DELAY_MAX];
		return fail_at(p, -EINVAL, max_line ? max_line : p->key_lines[KEY_RESTART_DELAY],
			       "restart_delay_max (%g%s) is less than restart_delay (%g) in [%s]",
			       service->restart_delay_max, max_line ? "" : ", the default",
			       service->restart_delay, p->section_name);
	}
	if (!service->directory && !(service->directory = strdup(p->config.directory)))
		return fail_errno(p, -ENOMEM);
	return 0;
}

static bool
valid_service_name(const char *name)
{
	size_t length = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				     "0123456789_-");
	return length > 0 && name[length] == '\0';
}

static int
unknown_section(struct parser *p, const char *name)
{
	const char *colon = strchr(name, ':');
	if (colon && valid_service_name(colon + 1)) {
		char *prefix = strndup(name, (size_t)(colon - name));
		if (!prefix)
			return fail_errno(p, -ENOMEM);
		unsigned distance = edit_distance(prefix, "service");
		free(prefix);
		if (distance <= 2)
			return fail(p, "unknown section [%s] (did you mean [service:%s]?)", name,
				    colon + 1);
	}
	if (edit_distance(name, "host") <= 2)
		return fail(p, "unknown section [%s] (did you mean [host]?)", name);
	if (valid_service_name(name))
		return fail(p, "unknown section [%s] (did you mean [service:%s]?)", name, name);
	return fail(p, "unknown section [%s] (expected [host] or [service:NAME])", name);
}

static int
open_service(struct parser *p, const char *name)
{
	const char *service_name = name + strlen("service:");
	if (*service_name == '\0')
		return fail(p, "missing service name in [%s] (expected [service:NAME])", name);
	if (!valid_service_name(service_name))
		return fail(p, "invalid service name \"%s\" (use letters, digits, _ and -)",
			    service_name);
	if (strlen(service_name) > CONFIG_MAX_NAME)
		return fail(p, "service name \"%s\" is longer than %d characters", service_name,
			    CONFIG_MAX_NAME);
	for (size_t i = 0; i < p->config.service_count; i++)
		if (strcmp(p->config.services[i].name, service_name) == 0)
			return fail(p, "duplicate section [%s] (first at line %u)", name,
				    p->config.services[i].line);

	struct config_service *services = realloc(
	    p->config.services, (p->config.service_count + 1) * sizeof(*p->config.services));
	if (!services)
		return fail_errno(p, -ENOMEM);
	p->config.services = services;
	struct config_service *service = &services[p->config.service_count];
	*service = (struct config_service){
	    .line = p->line,
	    .count = CONFIG_DEFAULT_COUNT,
	    .ready = CONFIG_DEFAULT_READY,
	    .ready_timeout = CONFIG_DEFAULT_READY_TIMEOUT,
	    .restart = CONFIG_DEFAULT_RESTART,
	    .restart_delay = CONFIG_DEFAULT_RESTART_DELAY,
	    .restart_delay_max = CONFIG_DEFAULT_RESTART_DELAY_MAX,
	    .stop_signal = CONFIG_DEFAULT_STOP_SIGNAL,
	    .stop_timeout = CONFIG_DEFAULT_STOP_TIMEOUT,
	    .memory_check_interval = CONFIG_DEFAULT_MEMORY_CHECK_INTERVAL,
	};
	if (!(service->name = strdup(service_name)))
		return fail_errno(p, -ENOMEM);
	p->config.service_count++;
	p->section = SECTION_SERVICE;
	return 0;
}

static int
open_section(struct parser *p, const char *name)
{
	if (finish_section(p) < 0)
		return p->error;
	p->section = SECTION_NONE;
	memset(p->key_lines, 0, sizeof(p->key_lines));
	free(p->section_name);
	if (!(p->section_name = strdup(name)))
		return fail_errno(p, -ENOMEM);

	if (strcmp(name, "host") == 0) {
		if (p->host_line)
			return fail(p, "duplicate section [host] (first at line %u)", p->host_line);
		p->host_line = p->line;
		p->section = SECTION_HOST;
		return 0;
	}
	if (strncmp(name, "service:", strlen("service:")) == 0)
		return open_service(p, name);
	return unknown_section(p, name);
}

/* Sees section headers as inih will: after leading white space, "[" up to the first "]" unless
 * an inline comment (" ;") comes first. Text after "]" other than a comment is an error here,
 * where inih would ignore it. */
static int
scan_section(struct parser *p, const char *line)
{
	if (p->line == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0)
		line += 3;
	while (isspace((unsigned char)*line))
		line++;
	if (*line != '[')
		return 0;
	const char *start = line + 1, *end = start;
	for (bool space = false; *end && *end != ']' && !(space && *end == ';'); end++)
		space = isspace((unsigned char)*end);
	if (*end != ']')
		return fail(p, "missing \"]\" at the end of the section header");
	const char *rest = end + 1;
	while (isspace((unsigned char)*rest))
		rest++;
	if (*rest != '\0' && *rest != ';')
		return fail(p, "unexpected text after \"]\" in the section header");
	char *name = strndup(start, (size_t)(end - start));
	if (!name)
		return fail_errno(p, -ENOMEM);
	int r = open_section(p, name);
	free(name);
	return r;
}

/* inih glue --------------------------------------------------------------------------------- */

/* inih's reader: fgets-like, but it reads whole lines itself so that a line too long for inih's
 * buffer is an error rather than two lines (fgets would hand the tail over as the next one).
 * Being the reader also makes it the one place that sees every line: it counts them (Debian's
 * inih gives the handler no line numbers) and opens sections, which inih does not report. */
static char *
read_line(char *buffer, int size, void *stream)
{
	struct parser *p = stream;
	if (p->error)
		return NULL;
	errno = 0;
	ssize_t length = getline(&p->buffer, &p->buffer_size, p->file);
	if (length < 0) {
		if (ferror(p->file))
			(void)fail_errno(p, errno ? -errno : -EIO);
		return NULL;
	}
	p->line++;
	if (memchr(p->buffer, '\0', (size_t)length)) {
		(void)fail(p, "the line contains a NUL byte");
		return NULL;
	}
	size_t content = (size_t)length - (length > 0 && p->buffer[length - 1] == '\n');
	if (content > CONFIG_MAX_LINE || (size_t)length + 1 > (size_t)size) {
		(void)fail(p, "line is longer than %d characters", CONFIG_MAX_LINE);
		return NULL;
	}
	if (scan_section(p, p->buffer) < 0)
		return NULL;
	memcpy(buffer, p->buffer, (size_t)length + 1);
	return buffer;
}

static const struct key_info *
find_key(enum section section, const char *name)
{
	for (size_t i = 0; i < LENGTH(keys); i++)
		if (keys[i].section == section && strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static int
unknown_key(struct parser *p, const char *name)
{
	const struct key_info *best = NULL;
	unsigned best_distance = 3;
	for (size_t i = 0; i < LENGTH(keys); i++) {
		unsigned distance = edit_distance(name, keys[i].name);
		if (keys[i].section == p->section && distance < best_distance) {
			best = &keys[i];
			best_distance = distance;
		}
	}
	if (best)
		return fail(p, "unknown key \"%s\" in [%s] (did you mean \"%s\"?)", name,
			    p->section_name, best->name);
	const struct key_info *elsewhere =
	    find_key(p->section == SECTION_HOST ? SECTION_SERVICE : SECTION_HOST, name);
	if (elsewhere)
		return fail(
		    p, "unknown key \"%s\" in [%s] (it belongs in %s)", name, p->section_name,
		    elsewhere->section == SECTION_HOST ? "[host]" : "a [service:NAME] section");
	return fail(p, "unknown key \"%s\" in [%s]", name, p->section_name);
}

/* inih's handler; returns nonzero to go on. The section inih passes is ignored: inih truncates
 * it to 49 bytes, and the reader has opened the section already. */
static int
handle_pair(void *user, const char *section, const char *name, const char *value)
{
	struct parser *p = user;
	(void)section;
	if (p->error)
		return 0;
	if (p->section == SECTION_NONE) {
		(void)fail(p,
			   "key \"%s\" is outside any section (put it under [host] or "
			   "[service:NAME])",
			   name);
		return 0;
	}
	if (*name == '\0') {
		(void)fail(p, "missing key before \"=\" in [%s]", p->section_name);
		return 0;
	}
	const struct key_info *key = find_key(p->section, name);
	if (!key) {
		(void)unknown_key(p, name);
		return 0;
	}
	unsigned *first = &p->key_lines[key - keys];
	if (*first && !key->repeatable) {
		(void)fail(p, "duplicate key \"%s\" in [%s] (first at line %u)", name,
			   p->section_name, *first);
		return 0;
	}
	if (!*first)
		*first = p->line;
	return key->parse(p, key, value) == 0;
}

/* inih's options are process-wide; config_load sets the ones it relies on and restores them. */
struct ini_options {
	bool allow_multiline, allow_bom, allow_inline_comments, use_stack, stop_on_first_error;
	bool allow_no_value;
	char *start_comment_prefixes, *inline_comment_prefixes;
	int max_line;
};

static struct ini_options
ini_options_set(void)
{
	struct ini_options saved = {
	    ini_allow_multiline,
	    ini_allow_bom,
	    ini_allow_inline_comments,
	    ini_use_stack,
	    ini_stop_on_first_error,
	    ini_allow_no_value,
	    ini_start_comment_prefixes,
	    ini_inline_comment_prefixes,
	    ini_max_line,
	};
	/* An indented line would otherwise continue the previous value, calling the handler a
	 * second time with the same key: a duplicate command, or one more env, silently. */
	ini_allow_multiline = false;
	ini_allow_bom = true;
	/* "key = value ; comment", as SPEC.md's examples write; "#" only starts whole-line
	 * comments. */
	ini_allow_inline_comments = true;
	ini_inline_comment_prefixes = ";";
	ini_start_comment_prefixes = ";#";
	/* Debian's inih sizes its line buffer from ini_max_line (a variable-length array): room for
	 * the newline and the terminating NUL. read_line rejects longer lines. */
	ini_use_stack = true;
	ini_max_line = CONFIG_MAX_LINE + 2;
	ini_stop_on_first_error = true;
	ini_allow_no_value = false;
	return saved;
}

static void
ini_options_restore(const struct ini_options *saved)
{
	ini_allow_multiline = saved->allow_multiline;
	ini_allow_bom = saved->allow_bom;
	ini_allow_inline_comments = saved->allow_inline_comments;
	ini_use_stack = saved->use_stack;
	ini_stop_on_first_error = saved->stop_on_first_error;
	ini_allow_no_value = saved->allow_no_value;
	ini_start_comment_prefixes = saved->start_comment_prefixes;
	ini_inline_comment_prefixes = saved->inline_comment_prefixes;
	ini_max_line = saved->max_line;
}

/* After inih: what it found wrong itself, then what needs the whole file. */
static int
finish_file(struct parser *p, int inih_result)
{
	if (p->error)
		return p->error;
	if (inih_result > 0) {
		/* inih stopped at its first error, so the buffer still holds that line. */
		const char *text = p->buffer ? p->buffer : "";
		size_t length = strcspn(text, "\r\n");
		bool indented = *text == ' ' || *text == '\t';
		while (isspace((unsigned char)*text) && length > 0) {
			text++;
			length--;
		}
		return fail_at(
		    p, -EINVAL, (unsigned)inih_result,
		    "expected \"KEY = VALUE\", \"[SECTION]\" or a comment, not \"%.*s\"%s",
		    length > 60 ? 60 : (int)length, text,
		    indented ? " (values do not continue on indented lines)" : "");
	}
	if (inih_result < 0)
		return fail_errno(p, inih_result == -2 ? -ENOMEM : -EIO);
	if (finish_section(p) < 0)
		return p->error;
	if (p->config.service_count == 0)
		return fail_at(p, -EINVAL, 0, "no [service:NAME] section (at least one is needed)");
	if (!p->config.supervisor_path) {
		p->config.supervisor_path =
		    path_join(p->config.directory, CONFIG_DEFAULT_SUPERVISOR);
		if (!p->config.supervisor_path)
			return fail_errno(p, -ENOMEM);
		return check_socket_path(p, 0, p->config.supervisor_path);
	}
	return 0;
}

int
config_load(const char *path, struct config *ret_config, char *error, size_t error_size)
{
	struct parser p = {
	    .user_path = path,
	    .message = error,
	    .message_size = error_size,
	    .config = {.socket_mode = CONFIG_DEFAULT_SOCKET_MODE},
	};
	if (error_size)
		error[0] = '\0';
	if (!(p.file = fopen(path, "re")))
		return fail_errno(&p, -errno);
	int r = path_locate(path, &p.config.path, &p.config.directory);
	if (r < 0) {
		(void)fail_errno(&p, r);
	} else {
		struct ini_options saved = ini_options_set();
		r = ini_parse_stream(read_line, &p, handle_pair, &p);
		ini_options_restore(&saved);
		(void)finish_file(&p, r);
	}
	fclose(p.file);
	free(p.buffer);
	free(p.section_name);
	if (p.error) {
		config_free(&p.config);
		return p.error;
	}
	*ret_config = p.config;
	return 0;
}

void
config_free_argv(char **argv)
{
	if (!argv)
		return;
	for (char **arg = argv; *arg; arg++)
		free(*arg);
	free(argv);
}

void
config_free(struct config *config)
{
	if (!config)
		return;
	for (size_t i = 0; i < config->service_count; i++) {
		struct config_service *service = &config->services[i];
		free(service->name);
		config_free_argv(service->argv);
		config_free_argv(service->listen);
		config_free_argv(service->env);
		free(service->directory);
	}
	free(config->services);
	free(config->path);
	free(config->directory);
	free(config->supervisor_path);
	free(config->socket_group);
	free(config->log_path);
	free(config->prometheus);
	*config = (struct config){0};
}

/* Command splitting ------------------------------------------------------------------------- */

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

/* Reads one word starting at *text into word (large enough for all of text), advancing *text
 * past it. Returns its length, or -EINVAL with *ret_error set. */
static int
split_word(const char **text, char *word, const char **ret_error)
{
	const char *in = *text;
	char *out = word;
	while (*in && !is_blank(*in)) {
		if (*in == '\'') {
			const char *close = strchr(in + 1, '\'');
			if (!close)
				goto unterminated;
			memcpy(out, in + 1, (size_t)(close - in - 1));
			out += close - in - 1;
			in = close + 1;
		} else if (*in == '"') {
			for (in++; *in != '"'; in++) {
				if (*in == '\0')
					goto unterminated;
				if (*in == '\\' && in[1] && strchr("\"\\$`", in[1]))
					in++;
				*out++ = *in;
			}
			in++;
		} else if (*in == '\\') {
			if (in[1] == '\0') {
				*ret_error = "trailing backslash";
				return -EINVAL;
			}
			*out++ = in[1];
			in += 2;
		} else {
			*out++ = *in++;
		}
	}
	*text = in;
	return (int)(out - word);
unterminated:
	*ret_error = "unterminated quote";
	return -EINVAL;
}

int
config_split_command(const char *text, char ***ret_argv, const char **ret_error)
{
	char **argv = NULL;
	size_t count = 0;
	int r = 0;
	char *word = malloc(strlen(text) + 1);
	if (!word)
		return -ENOMEM;
	for (;;) {
		while (is_blank(*text))
			text++;
		if (*text == '\0')
			break;
		int length = split_word(&text, word, ret_error);
		if (length < 0) {
			r = length;
			goto out;
		}
		word[length] = '\0';
		if ((r = strv_append(&argv, &count, word)) < 0)
			goto out;
	}
	if (count == 0) {
		*ret_error = "empty command";
		r = -EINVAL;
	} else if (argv[0][0] == '\0') {
		*ret_error = "empty program name";
		r = -EINVAL;
	}
out:
	free(word);
	if (r < 0) {
		config_free_argv(argv);
		return r;
	}
	*ret_argv = argv;
	return 0;
}
