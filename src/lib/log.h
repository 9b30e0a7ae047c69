/* log: leveled messages to stderr, one line each, for the host and the commands. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
/* json: one object per line, {"time":…,"level":…,"message":…} (and "worker", "pid" for a
 * worker's output), for log collectors; otherwise "HH:MM:SS.mmm level message". */
void log_set_json(bool json);
bool log_enabled(enum log_level level);
/* Sends stderr to path (appending); called again (SIGUSR1) it reopens the file, for log
 * rotation. The file must be a regular file, not a symbolic link, in a directory that only its
 * owner may change (or a sticky one, and then the file is ours): see log.c. Returns 0, or
 * -errno with error saying what is wrong (stderr unchanged). */
int log_to_file(const char *path, char *error, size_t error_size);

void log_message(enum log_level level, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends ": strerror(-error)" to the message. error is a negative errno. */
void log_errno(enum log_level level, int error, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
/* One line of a worker's output, as written (any bytes). */
void log_worker_line(const char *label, int pid, const char *text, size_t length);

#define log_error(...) log_message(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_message(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_message(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_enabled(LOG_DEBUG))                                                        \
			log_message(LOG_DEBUG, __VA_ARGS__);                                       \
	} while (0)
