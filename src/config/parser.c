/* parser: the state of one file being loaded, and the messages of its failures. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config/parser.h"
#include "lib/listen_spec.h"

int
parser_fail_at(struct parser *p, int error, unsigned line, const char *format, ...)
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

int
parser_fail_errno(struct parser *p, int error)
{
	return parser_fail_at(p, error, 0, "%s", strerror(-error));
}

int
parser_fail_invalid(struct parser *p, const struct key_info *key, const char *value,
		    const char *hint)
{
	return parser_fail(p, "invalid %s \"%s\" in [%s] (%s)", key->name, value, p->section_name,
			   hint);
}

struct config_service *
parser_service(struct parser *p)
{
	return &p->config.services[p->config.service_count - 1];
}

bool
parser_service_name_valid(const char *name)
{
	size_t length = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				     "0123456789_-");
	return length > 0 && name[length] == '\0';
}

int
parser_check_socket_path(struct parser *p, unsigned line, const char *path)
{
	if (strlen(path) <= (size_t)LISTEN_SPEC_PATH_MAX)
		return 0;
	return parser_fail_at(
	    p, -EINVAL, line,
	    "supervisor path \"%s\" is too long for a unix socket (%zu bytes, at most %zu)", path,
	    strlen(path), (size_t)LISTEN_SPEC_PATH_MAX);
}
