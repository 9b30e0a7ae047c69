/* log: leveled messages to stderr, one line each, for the host and the commands. */
#include "lib/log.h"
#include "lib/limits.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/pathat.h"

static enum log_level level_current = LOG_INFO;
static int journal_fd = -1;	/* log_to_journal's socket, connected */
static char pending[64 * 1024]; /* workers' lines not written yet (log_flush) */
static size_t pending_length;
static bool json_current;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void
log_set_level(enum log_level level)
{
	level_current = level;
}

void
log_set_json(bool json)
{
	json_current = json;
}

bool
log_enabled(enum log_level level)
{
	return level <= level_current;
}

/* What open_log refuses once the file is open, by what it is rather than by its name. */
static int
check_log(int fd, int shared, const char *path, char *error, size_t error_size)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int r = -errno;
		snprintf(error, error_size, "%s: %s", path, strerror(errno));
		return r;
	}
	if (!S_ISREG(st.st_mode))
		snprintf(error, error_size, "%s is not a regular file", path);
	else if (st.st_nlink != 1)
		snprintf(
		    error, error_size,
		    "%s has %ju names (hard links), so it could be any file; not writing to it",
		    path, (uintmax_t)st.st_nlink);
	else if (shared && st.st_uid != geteuid())
		snprintf(
		    error, error_size,
		    "%s belongs to uid %u in a directory others may write to; not writing to it",
		    path, (unsigned)st.st_uid);
	else
		return 0;
	return -EPERM;
}

/* The log file, opened so that nobody else can make it another file: never through a symbolic
 * link (O_NOFOLLOW); only a regular file with one name (a hard link could be any file; a FIFO
 * would hold the open, hence O_NONBLOCK until the check); in a directory only its owner can
 * change, or a sticky one (like /tmp) if the file is ours, which is fs.protected_regular's
 * rule. Returns the fd or -errno with error filled. */
int
log_open_at(int directory, const char *name, const char *path, char *error, size_t error_size)
{
	int shared = pathat_check_directory(directory, path, error, error_size);
	if (shared < 0)
		return shared;
	int fd = openat(
	    directory, name,
	    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK, 0640);
	if (fd < 0) {
		/* ELOOP, or EACCES where fs.protected_symlinks refuses a stranger's link in a
		 * sticky directory, or ENXIO for a FIFO: what the name is says it better. */
		int r = -errno;
		struct stat st;
		bool found = fstatat(directory, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
		if (found && S_ISLNK(st.st_mode))
			snprintf(error, error_size,
				 "%s is a symbolic link: not followed; name the file itself", path);
		else if (found && !S_ISREG(st.st_mode))
			snprintf(error, error_size, "%s is not a regular file", path);
		else
			snprintf(error, error_size, "%s: %s", path, strerror(-r));
		return r;
	}
	int r = check_log(fd, shared, path, error, error_size);
	/* Blocking again: a log line is written whole or not at all. */
	if (r == 0 && fcntl(fd, F_SETFL, O_APPEND) < 0) {
		r = -errno;
		snprintf(error, error_size, "%s: %s", path, strerror(errno));
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int
log_to_file(const char *path, char *error, size_t error_size)
{
	int directory;
	const char *name;
	int r = pathat_open_parent(path, &directory, &name);
	if (r < 0) {
		snprintf(error, error_size, "%s: %s", path, strerror(-r));
		return r;
	}
	int fd = log_open_at(directory, name, path, error, error_size);
	close(directory);
	if (fd < 0)
		return fd;
	log_flush(); /* into the file they were logged for */
	/* dup2 onto stderr: whatever writes to fd 2 (this module, libc's messages, ASan) goes
	 * to the file, and a reopen swaps it in one step. */
	r = dup2(fd, STDERR_FILENO) < 0 ? -errno : 0;
	if (r < 0)
		snprintf(error, error_size, "%s: %s", path, strerror(-r));
	close(fd);
	return r;
}

/* Appends text as the inside of a JSON string: quotes, backslashes and control characters
 * escaped, bytes that are not UTF-8 replaced by U+FFFD. Returns the new length. */
size_t
log_json_string(char *line, size_t length, size_t size, const char *text, size_t text_length)
{
	const unsigned char *s = (const unsigned char *)text;
	for (size_t i = 0; i < text_length && length + 8 < size;) {
		unsigned char c = s[i];
		if (c == '"' || c == '\\') {
			line[length++] = '\\';
			line[length++] = (char)c;
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			length += (size_t)snprintf(line + length, size - length, "\\u%04x", c);
			i++;
		} else if (c < 0x80) {
			line[length++] = (char)c;
			i++;
		} else {
			size_t need = (c & 0xe0) == 0xc0   ? 2
				      : (c & 0xf0) == 0xe0 ? 3
				      : (c & 0xf8) == 0xf0 ? 4
							   : 0;
			bool valid = need > 0 && i + need <= text_length;
			for (size_t k = 1; valid && k < need; k++)
				valid = (s[i + k] & 0xc0) == 0x80;
			if (valid) {
				memcpy(line + length, s + i, need);
				length += need;
				i += need;
			} else {
				/* U+FFFD; the line is counted by length, not terminated. */
				// NOLINTNEXTLINE(bugprone-not-null-terminated-result)
				memcpy(line + length, "\xef\xbf\xbd", 3);
				length += 3;
				i++;
			}
		}
	}
	return length;
}

/* A native journal entry (systemd's "Native Journal Protocol"): KEY=value lines, and MESSAGE
 * in the binary-safe form (KEY, newline, its length as 64-bit little-endian, the bytes, a
 * newline), since a worker's line may hold any byte. One datagram, sent without blocking: a
 * journal that cannot keep up loses lines rather than stopping the host. */
static void
journal_emit(enum log_level level, const struct log_worker *worker, const char *message,
	     size_t message_length)
{
	/* syslog priorities: err, warning, info, debug. */
	static const char priorities[] = {'3', '4', '6', '7'};
	char fields[512];
	int n;
	if (worker && worker->service)
		n = snprintf(fields, sizeof(fields),
			     "PRIORITY=%c\nSYSLOG_IDENTIFIER=aerie\nAERIE_SERVICE=%s\n"
			     "AERIE_WORKER=%u\nAERIE_PID=%d\nAERIE_STREAM=%s\n",
			     priorities[level], worker->service, worker->index, worker->pid,
			     worker->stderr ? "stderr" : "stdout");
	else if (worker)
		n = snprintf(
		    fields, sizeof(fields),
		    "PRIORITY=%c\nSYSLOG_IDENTIFIER=aerie\nAERIE_PROCESS=%s\nAERIE_PID=%d\n",
		    priorities[level], worker->label, worker->pid);
	else
		n = snprintf(fields, sizeof(fields), "PRIORITY=%c\nSYSLOG_IDENTIFIER=aerie\n",
			     priorities[level]);
	if (n < 0 || (size_t)n >= sizeof(fields))
		return;
	uint64_t size = message_length;
	unsigned char size_le[8];
	for (int i = 0; i < 8; i++)
		size_le[i] = (unsigned char)(size >> (8 * i));
	struct iovec parts[] = {
	    {fields, (size_t)n},	{(void *)"MESSAGE\n", 8},
	    {size_le, sizeof(size_le)}, {(void *)message, message_length},
	    {(void *)"\n", 1},
	};
	struct msghdr header = {.msg_iov = parts, .msg_iovlen = 5};
	while (sendmsg(journal_fd, &header, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

int
log_to_journal(const char *path)
{
	struct sockaddr_un address = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(address.sun_path))
		return -ENAMETOOLONG;
	// NOLINTNEXTLINE(bugprone-not-null-terminated-result): counted, not a C string
	memcpy(address.sun_path, path, strlen(path));
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&address, sizeof(address)) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	/* Room for a long line with its fields; journald takes datagrams far larger. */
	int size = 4 * LOG_LINE_MAX;
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	if (journal_fd >= 0)
		close(journal_fd);
	journal_fd = fd;
	return 0;
}

bool
log_stderr_is_journal(void)
{
	const char *stream = getenv("JOURNAL_STREAM");
	struct stat st;
	unsigned long long device, inode;
	if (!stream || sscanf(stream, "%llu:%llu", &device, &inode) != 2 ||
	    fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == device && (unsigned long long)st.st_ino == inode;
}

/* text, then spaces to width, then one space; text is short (a level, a label). */
static size_t
append_padded(char *line, size_t length, const char *text, size_t width)
{
	size_t n = strnlen(text, 96);
	// NOLINTNEXTLINE(bugprone-not-null-terminated-result): counted, not a C string
	memcpy(line + length, text, n);
	length += n;
	while (n++ < width)
		line[length++] = ' ';
	line[length++] = ' ';
	return length;
}

static size_t
append_decimal(char *line, size_t length, int value)
{
	char digits[16];
	size_t n = 0;
	unsigned long v = value < 0 ? 0 : (unsigned long)value;
	do
		digits[n++] = (char)('0' + v % 10);
	while ((v /= 10) > 0 && n < sizeof(digits));
	while (n > 0)
		line[length++] = digits[--n];
	return length;
}

/* Whole records only, each write: lines from the host and its workers never interleave
 * mid-line with another process's writes to the same file. */
static void
write_all(const char *data, size_t length)
{
	for (size_t written = 0; written < length;) {
		ssize_t n = write(STDERR_FILENO, data + written, length - written);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		written += (size_t)n;
	}
}

/* Writes one record: worker (whose line it is, or NULL), the message. */
static void
emit(enum log_level level, const struct log_worker *worker, const char *message,
     size_t message_length)
{
	if (journal_fd >= 0) {
		journal_emit(level, worker, message, message_length);
		return;
	}
	char line[LOG_LINE_MAX];
	struct timespec now;
	struct tm tm;
	size_t length;
	(void)clock_gettime(CLOCK_REALTIME, &now);
	if (json_current) {
		(void)gmtime_r(&now.tv_sec, &tm);
		length = (size_t)snprintf(line, sizeof(line),
					  "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\","
					  "\"level\":\"%s\",",
					  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
					  tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000,
					  level_names[level]);
		if (worker) {
			length += (size_t)snprintf(line + length, sizeof(line) - length,
						   "\"worker\":\"%s\",\"pid\":%d,%s", worker->label,
						   worker->pid,
						   worker->stderr ? "\"stream\":\"stderr\"," : "");
		}
		length += (size_t)snprintf(line + length, sizeof(line) - length, "\"message\":\"");
		length = log_json_string(line, length, sizeof(line) - 3, message, message_length);
		line[length++] = '"';
		line[length++] = '}';
	} else {
		/* Put together by hand: printf's parsing and localtime's conversion were most of
		 * the cost of a worker's line (the clock's second is converted once per second). */
		static time_t second = -1;
		static char clock_text[16]; /* "HH:MM:SS" */
		if (now.tv_sec != second) {
			(void)localtime_r(&now.tv_sec, &tm);
			snprintf(clock_text, sizeof(clock_text), "%02u:%02u:%02u",
				 (unsigned)tm.tm_hour % 100, (unsigned)tm.tm_min % 100,
				 (unsigned)tm.tm_sec % 100);
			second = now.tv_sec;
		}
		// NOLINTNEXTLINE(bugprone-not-null-terminated-result): counted, not a C string
		memcpy(line, clock_text, 8);
		long ms = now.tv_nsec / 1000000;
		line[8] = '.';
		line[9] = (char)('0' + ms / 100);
		line[10] = (char)('0' + ms / 10 % 10);
		line[11] = (char)('0' + ms % 10);
		line[12] = ' ';
		length = 13;
		length = append_padded(line, length, level_names[level], 5);
		if (worker) {
			length = append_padded(line, length, worker->label, 0);
			line[length - 1] = '['; /* over append_padded's space */
			length = append_decimal(line, length, worker->pid);
			line[length++] = ']';
			if (worker->stderr)
				length = append_padded(line, length, " stderr:", 0);
			else
				line[length++] = ' ';
		}
		if (message_length > sizeof(line) - length - 1)
			message_length = sizeof(line) - length - 1;
		memcpy(line + length, message, message_length);
		length += message_length;
	}
	line[length++] = '\n';
	/* A worker's lines wait for log_flush, at the end of the loop's turn that read them: a
	 * worker writing 100,000 lines costs a write per read of its pipe, not one per line. Any
	 * other message flushes them first, so the log keeps its order. */
	if (worker) {
		if (pending_length + length > sizeof(pending))
			log_flush();
		memcpy(pending + pending_length, line, length);
		pending_length += length;
		return;
	}
	log_flush();
	write_all(line, length);
}

void
log_flush(void)
{
	if (pending_length == 0)
		return;
	write_all(pending, pending_length);
	pending_length = 0;
}

static void
log_line(enum log_level level, const char *suffix, const char *format, va_list args)
{
	if (!log_enabled(level))
		return;
	char message[LOG_LINE_MAX / 2];
	int n = vsnprintf(message, sizeof(message), format, args);
	if (n < 0)
		return;
	size_t length = (size_t)n < sizeof(message) ? (size_t)n : sizeof(message) - 1;
	if (suffix) {
		n = snprintf(message + length, sizeof(message) - length, ": %s", suffix);
		if (n > 0)
			length += (size_t)n;
		if (length >= sizeof(message))
			length = sizeof(message) - 1;
	}
	emit(level, NULL, message, length);
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

void
log_worker_line(enum log_level level, const struct log_worker *worker, const char *text,
		size_t length)
{
	if (log_enabled(level))
		emit(level, worker, text, length);
}
