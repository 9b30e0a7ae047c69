/* config: an aerie.ini file → plain structs: inih glue, sections, whole-file checks, load/free. */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/parser.h"
#include "lib/limits.h"

/* Sections ---------------------------------------------------------------------------------- */

/* Checks what needs the whole section, once it has ended. */
static int
finish_section(struct parser *p)
{
	if (p->section != SECTION_SERVICE)
		return 0;
	struct config_service *service = parser_service(p);
	if (!service->argv)
		return parser_fail_at(p, -EINVAL, service->line, "missing command in [%s]",
				      p->section_name);
	/* WATCHDOG=1 travels on NOTIFY_SOCKET, which only ready = notify gives a worker. */
	if (service->health_timeout > 0 && service->ready != CONFIG_READY_NOTIFY)
		return parser_fail_at(
		    p, -EINVAL, p->key_lines[KEY_HEALTH_TIMEOUT],
		    "health_timeout needs ready = notify in [%s] (workers report health "
		    "with WATCHDOG=1 on NOTIFY_SOCKET)",
		    p->section_name);
	if (service->restart_delay_max < service->restart_delay) {
		unsigned max_line = p->key_lines[KEY_RESTART_DELAY_MAX];
		return parser_fail_at(
		    p, -EINVAL, max_line ? max_line : p->key_lines[KEY_RESTART_DELAY],
		    "restart_delay_max (%g%s) is less than restart_delay (%g) in [%s]",
		    service->restart_delay_max, max_line ? "" : ", the default",
		    service->restart_delay, p->section_name);
	}
	if (!service->directory && !(service->directory = strdup(p->config.directory)))
		return parser_fail_errno(p, -ENOMEM);
	return exec_finish(p, service);
}

static int
open_service(struct parser *p, const char *name)
{
	const char *service_name = name + strlen("service:");
	if (*service_name == '\0')
		return parser_fail(p, "missing service name in [%s] (expected [service:NAME])",
				   name);
	if (!parser_service_name_valid(service_name))
		return parser_fail(p, "invalid service name \"%s\" (use letters, digits, _ and -)",
				   service_name);
	if (strlen(service_name) > CONFIG_MAX_NAME)
		return parser_fail(p, "service name \"%s\" is longer than %d characters",
				   service_name, CONFIG_MAX_NAME);
	for (size_t i = 0; i < p->config.service_count; i++)
		if (strcmp(p->config.services[i].name, service_name) == 0)
			return parser_fail(p, "duplicate section [%s] (first at line %u)", name,
					   p->config.services[i].line);
	if (p->config.service_count == CONFIG_MAX_SERVICES)
		return parser_fail(p, "more than %d [service:NAME] sections", CONFIG_MAX_SERVICES);

	struct config_service *services = realloc(
	    p->config.services, (p->config.service_count + 1) * sizeof(*p->config.services));
	if (!services)
		return parser_fail_errno(p, -ENOMEM);
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
	    .min_uptime = CONFIG_DEFAULT_MIN_UPTIME,
	    .start_limit_burst = CONFIG_DEFAULT_START_LIMIT_BURST,
	    .start_limit_interval = CONFIG_DEFAULT_START_LIMIT_INTERVAL,
	    .kill_mode = CONFIG_DEFAULT_KILL_MODE,
	    .memory_leak_threshold = CONFIG_DEFAULT_MEMORY_LEAK_THRESHOLD,
	    .log_max_size = CONFIG_DEFAULT_LOG_MAX_SIZE,
	    .log_keep = CONFIG_DEFAULT_LOG_KEEP,
	    .log_lines = CONFIG_DEFAULT_LOG_LINES,
	};
	if (!(service->name = strdup(service_name)))
		return parser_fail_errno(p, -ENOMEM);
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
		return parser_fail_errno(p, -ENOMEM);

	if (strcmp(name, "host") == 0) {
		if (p->host_line)
			return parser_fail(p, "duplicate section [host] (first at line %u)",
					   p->host_line);
		p->host_line = p->line;
		p->section = SECTION_HOST;
		return 0;
	}
	if (strncmp(name, "service:", strlen("service:")) == 0)
		return open_service(p, name);
	return suggest_unknown_section(p, name);
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
		return parser_fail(p, "missing \"]\" at the end of the section header");
	const char *rest = end + 1;
	while (isspace((unsigned char)*rest))
		rest++;
	if (*rest != '\0' && *rest != ';')
		return parser_fail(p, "unexpected text after \"]\" in the section header");
	char *name = strndup(start, (size_t)(end - start));
	if (!name)
		return parser_fail_errno(p, -ENOMEM);
	int r = open_section(p, name);
	free(name);
	return r;
}

/* inih glue --------------------------------------------------------------------------------- */

/* Reads the next line into p->buffer, its newline included, and returns its length: 0 at the
 * end of the file, -1 once a failure is recorded. Every byte is counted before it is stored, so
 * neither a line nor the file grows past its bound whatever the file is: the memory is the fixed
 * buffer, and the time is that of reading at most CONFIG_MAX_FILE bytes. */
static ssize_t
next_line(struct parser *p)
{
	size_t length = 0;
	for (;;) {
		int c = getc_unlocked(p->file);
		if (c == EOF)
			break;
		if (length == 0)
			p->line++;
		if (++p->file_bytes > CONFIG_MAX_FILE) {
			(void)parser_fail_at(p, -EFBIG, 0, "file is larger than %d bytes",
					     CONFIG_MAX_FILE);
			return -1;
		}
		p->buffer[length++] = (char)c;
		if (c == '\n')
			break;
		/* The line has CONFIG_MAX_LINE characters and one more that is not its newline. */
		if (length > CONFIG_MAX_LINE) {
			(void)parser_fail(p, "line is longer than %d characters", CONFIG_MAX_LINE);
			return -1;
		}
	}
	if (ferror(p->file)) {
		(void)parser_fail_errno(p, errno ? -errno : -EIO);
		return -1;
	}
	p->buffer[length] = '\0';
	return (ssize_t)length;
}

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
	ssize_t length = next_line(p);
	if (length <= 0)
		return NULL;
	if (memchr(p->buffer, '\0', (size_t)length)) {
		(void)parser_fail(p, "the line contains a NUL byte");
		return NULL;
	}
	/* ini_options_set gives inih room for the longest line next_line returns. */
	if ((size_t)length + 1 > (size_t)size) {
		(void)parser_fail(p, "line is longer than %d characters", CONFIG_MAX_LINE);
		return NULL;
	}
	if (scan_section(p, p->buffer) < 0)
		return NULL;
	memcpy(buffer, p->buffer, (size_t)length + 1);
	return buffer;
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
		(void)parser_fail(p,
				  "key \"%s\" is outside any section (put it under [host] or "
				  "[service:NAME])",
				  name);
		return 0;
	}
	if (*name == '\0') {
		(void)parser_fail(p, "missing key before \"=\" in [%s]", p->section_name);
		return 0;
	}
	const struct key_info *key = keys_find(p->section, name);
	if (!key) {
		(void)suggest_unknown_key(p, name);
		return 0;
	}
	unsigned *first = &p->key_lines[key - keys_table];
	if (*first && !key->repeatable) {
		(void)parser_fail(p, "duplicate key \"%s\" in [%s] (first at line %u)", name,
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
	bool allow_no_value, allow_realloc;
	char *start_comment_prefixes, *inline_comment_prefixes;
	int max_line;
};

static struct ini_options
ini_options_set(void)
{
	struct ini_options saved = {
	    .allow_multiline = ini_allow_multiline,
	    .allow_bom = ini_allow_bom,
	    .allow_inline_comments = ini_allow_inline_comments,
	    .use_stack = ini_use_stack,
	    .stop_on_first_error = ini_stop_on_first_error,
	    .allow_no_value = ini_allow_no_value,
	    .allow_realloc = ini_allow_realloc,
	    .start_comment_prefixes = ini_start_comment_prefixes,
	    .inline_comment_prefixes = ini_inline_comment_prefixes,
	    .max_line = ini_max_line,
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
	/* inih grows its buffer only when the reader fills it without a newline, which read_line
	 * never does; off all the same, so that inih's buffer is fixed whatever a reader does. */
	ini_allow_realloc = false;
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
	ini_allow_realloc = saved->allow_realloc;
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
		const char *text = p->buffer;
		size_t length = strcspn(text, "\r\n");
		bool indented = *text == ' ' || *text == '\t';
		while (isspace((unsigned char)*text) && length > 0) {
			text++;
			length--;
		}
		return parser_fail_at(
		    p, -EINVAL, (unsigned)inih_result,
		    "expected \"KEY = VALUE\", \"[SECTION]\" or a comment, not \"%.*s\"%s",
		    length > 60 ? 60 : (int)length, text,
		    indented ? " (values do not continue on indented lines)" : "");
	}
	if (inih_result < 0)
		return parser_fail_errno(p, inih_result == -2 ? -ENOMEM : -EIO);
	if (finish_section(p) < 0)
		return p->error;
	if (p->config.service_count == 0)
		return parser_fail_at(p, -EINVAL, 0,
				      "no [service:NAME] section (at least one is needed)");
	if (!p->config.supervisor_path) {
		p->config.supervisor_path =
		    path_join(p->config.directory, CONFIG_DEFAULT_SUPERVISOR);
		if (!p->config.supervisor_path)
			return parser_fail_errno(p, -ENOMEM);
		return parser_check_socket_path(p, 0, p->config.supervisor_path);
	}
	return 0;
}

/* 0 if mode is a regular file's, else the failure, with what the file is. The errors are
 * systemd's (stat_verify_regular): -EISDIR for a directory, as reading one would say, and
 * -EBADFD for the others. */
static int
check_regular(struct parser *p, mode_t mode)
{
	if (S_ISREG(mode))
		return 0;
	if (S_ISDIR(mode))
		return parser_fail_errno(p, -EISDIR);
	const char *kind = "a socket";
	if (S_ISFIFO(mode))
		kind = "a FIFO";
	else if (S_ISCHR(mode))
		kind = "a character device";
	else if (S_ISBLK(mode))
		kind = "a block device";
	return parser_fail_at(p, -EBADFD, 0, "not a regular file (%s)", kind);
}

/* Opens path as p->file if it is a regular file. O_NONBLOCK makes the open itself return at
 * once: a FIFO without a writer, or a device such as a serial line, would block it (and with it
 * a reload, in the host's loop) before fstat could refuse it; it changes nothing for a regular
 * file. O_NOCTTY: a terminal named as the config must not become the host's. */
static int
open_config(struct parser *p, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return parser_fail_errno(p, -errno);
	struct stat st;
	int r = fstat(fd, &st) < 0 ? parser_fail_errno(p, -errno) : check_regular(p, st.st_mode);
	if (r == 0 && !(p->file = fdopen(fd, "r")))
		r = parser_fail_errno(p, -errno);
	if (r < 0)
		(void)close(fd);
	return r;
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
	int r = open_config(&p, path);
	if (r < 0)
		return r;
	r = path_locate(path, &p.config.path, &p.config.directory);
	if (r < 0) {
		(void)parser_fail_errno(&p, r);
	} else {
		struct ini_options saved = ini_options_set();
		r = ini_parse_stream(read_line, &p, handle_pair, &p);
		ini_options_restore(&saved);
		(void)finish_file(&p, r);
	}
	fclose(p.file);
	free(p.section_name);
	if (p.error) {
		config_free(&p.config);
		return p.error;
	}
	*ret_config = p.config;
	return 0;
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
		exec_free(&service->exec);
		free(service->log_file);
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
