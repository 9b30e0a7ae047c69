/* log: leveled messages to stderr, one line each, for the host and the commands. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum log_level level_current = LOG_INFO;

void
log_set_level(enum log_level level)
{
	level_current = level;
}

bool
log_enabled(enum log_level level)
{
	return level <= level_current;
}

static void
log_line(enum log_level level, const char *suffix, const char *format, va_list args)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	if (!log_enabled(level))
		return;
	/* One buffer, one write: lines from the host and its workers never interleave mid-line. */
	char line[4096];
	struct timespec now;
	struct tm tm;
	(void)clock_gettime(CLOCK_REALTIME, &now);
	(void)localtime_r(&now.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%02d:%02d:%02d.%03ld %-5s ", tm.tm_hour, tm.tm_min,
			 tm.tm_sec, now.tv_nsec / 1000000, names[level]);
	if (n < 0)
		return;
	size_t length = (size_t)n;
	n = vsnprintf(line + length, sizeof(line) - length, format, args);
	if (n < 0)
		return;
	length += (size_t)n;
	if (length > sizeof(line) - 2)
		length = sizeof(line) - 2;
	if (suffix) {
		n = snprintf(line + length, sizeof(line) - length, ": %s", suffix);
		if (n > 0)
			length += (size_t)n;
		if (length > sizeof(line) - 2)
			length = sizeof(line) - 2;
	}
	line[length++] = '\n';
	(void)fwrite(line, 1, length, stderr);
	(void)fflush(stderr);
}

void
log_message(enum log_level level, const char *format, ...)
{
	va_list args;
	va_start(args, format);
	log_line(level, NULL, format, args);
	va_end(args);
}

void
log_errno(enum log_level level, int error, const char *format, ...)
{
	va_list args;
	va_start(args, format);
	log_line(level, strerror(error < 0 ? -error : error), format, args);
	va_end(args);
}
