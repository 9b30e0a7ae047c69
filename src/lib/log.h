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
/* Whose a line of worker output is, for the log's prefix and fields. */
struct log_worker {
	const char *label;   /* "web.2" */
	const char *service; /* "web"; NULL for the host's own processes (the supervisor) */
	unsigned index;
	int pid;
	bool stderr; /* from its stderr: logged at warn, marked */
};
/* One line of a worker's output, as written (any bytes), at level. Kept in a buffer (64 KiB)
 * until log_flush or the next other message. */
void log_worker_line(enum log_level level, const struct log_worker *worker, const char *text,
		     size_t length);
/* Writes the workers' lines kept (the host calls it once per turn of its loop). */
void log_flush(void);
/* Opens name in directory (path names it in error) for appending, as log_to_file does: never
 * through a symbolic link, only a regular file with one name, in a directory only its owner
 * may change (or a sticky one, the file then ours). Returns the fd (O_CLOEXEC, blocking) or
 * -errno with error filled. */
int log_open_at(int directory, const char *name, const char *path, char *error, size_t error_size);
/* Appends text as the inside of a JSON string into line (of size bytes, from length): quotes,
 * backslashes and control characters escaped, bytes that are not UTF-8 replaced by U+FFFD;
 * stops short of size - 8. Returns the new length. */
size_t log_json_string(char *line, size_t length, size_t size, const char *text,
		       size_t text_length);
/* Sends every later message as a native journal entry to the datagram socket at path
 * (systemd's /run/systemd/journal/socket) with PRIORITY, SYSLOG_IDENTIFIER=aerie and, for a
 * worker's line, AERIE_SERVICE, AERIE_WORKER and AERIE_PID. Returns 0 or -errno (then
 * nothing changes). */
int log_to_journal(const char *path);
/* Whether the host runs under systemd with stderr going to the journal: JOURNAL_STREAM names
 * stderr's device and inode (systemd.exec(5)). */
bool log_stderr_is_journal(void);

#define log_error(...) log_message(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_message(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_message(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_enabled(LOG_DEBUG))                                                        \
			log_message(LOG_DEBUG, __VA_ARGS__);                                       \
	} while (0)
