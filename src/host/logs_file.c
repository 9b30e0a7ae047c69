/* logs_file: a service's log_file, written by the host and rotated by size. The host never
 * waits on it: a write that fails (a full disk, a quota, an I/O error) drops the lines of that
 * turn with a count in status and one warning until writing works again, and a file that
 * cannot be opened is the same. Lines are buffered for one turn of the loop, so a worker that
 * writes 100,000 lines costs a write per read of its pipe, not one per line. */
#include "host/logs_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/pathat.h"

/* Opens the file under its name in the directory held: it was checked then (log_open_at). */
static void
open_file(struct logs_file *file)
{
	char error[512];
	int fd = log_open_at(file->directory, file->name, file->path, error, sizeof(error));
	if (fd < 0) {
		log_error("log_file: %s; its lines are dropped until SIGUSR1 reopens it", error);
		file->failing = true;
		return;
	}
	struct stat st;
	file->size = fstat(fd, &st) == 0 ? (unsigned long long)st.st_size : 0;
	file->fd = fd;
}

int
logs_file_open(struct logs_file *file, const char *path, unsigned long long max_size, unsigned keep)
{
	*file = (struct logs_file){.directory = -1, .fd = -1, .max_size = max_size, .keep = keep};
	if (!(file->path = strdup(path)))
		return -ENOMEM;
	int r = pathat_open_parent(file->path, &file->directory, &file->name);
	if (r < 0) {
		log_errno(LOG_ERROR, r, "log_file: %s; its lines are dropped", path);
		file->failing = true;
		return r;
	}
	open_file(file);
	return file->fd < 0 ? -EIO : 0;
}

static void
drop(struct logs_file *file, unsigned lines, int error)
{
	file->dropped += lines;
	if (!file->failing)
		log_errno(
		    LOG_WARN, error,
		    "log_file %s: lines dropped (counted in status) until it can be written again",
		    file->path);
	file->failing = true;
}

void
logs_file_flush(struct logs_file *file)
{
	if (file->length == 0)
		return;
	if (file->fd < 0) {
		file->dropped += file->buffered_lines;
	} else {
		size_t written = 0;
		while (written < file->length) {
			ssize_t n = write(file->fd, file->buffer + written, file->length - written);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				/* What was cut short is counted whole: a line in pieces is no line.
				 */
				drop(file, file->buffered_lines, n < 0 ? -errno : -ENOSPC);
				break;
			}
			written += (size_t)n;
		}
		file->size += written;
		if (written == file->length && file->failing) {
			log_info("log_file %s: written again (%llu lines dropped so far)",
				 file->path, file->dropped);
			file->failing = false;
		}
	}
	file->length = 0;
	file->buffered_lines = 0;
}

/* name.N for N of 1…keep: a rotated file's name. */
static void
numbered(const struct logs_file *file, unsigned n, char *buffer, size_t size)
{
	snprintf(buffer, size, "%s.%u", file->name, n);
}

/* name.keep is removed, name.N becomes name.N+1, name becomes name.1 and a new name is opened:
 * renames inside the directory held, which never follow a link in the way (a name that is a
 * link is renamed as the link). */
static void
rotate(struct logs_file *file)
{
	logs_file_flush(file);
	char from[4096], to[4096];
	if (file->keep == 0) {
		if (unlinkat(file->directory, file->name, 0) < 0 && errno != ENOENT)
			log_errno(LOG_WARN, -errno, "log_file %s: cannot remove it", file->path);
	} else {
		numbered(file, file->keep, to, sizeof(to));
		(void)unlinkat(file->directory, to, 0);
		for (unsigned n = file->keep; n > 1; n--) {
			numbered(file, n - 1, from, sizeof(from));
			numbered(file, n, to, sizeof(to));
			if (renameat(file->directory, from, file->directory, to) < 0 &&
			    errno != ENOENT)
				log_errno(LOG_WARN, -errno, "log_file: cannot rename %s", from);
		}
		numbered(file, 1, to, sizeof(to));
		if (renameat(file->directory, file->name, file->directory, to) < 0)
			log_errno(LOG_WARN, -errno, "log_file %s: cannot rotate it", file->path);
	}
	logs_file_reopen(file);
}

void
logs_file_append(struct logs_file *file, const char *line, size_t length)
{
	if (file->max_size > 0 && file->fd >= 0 &&
	    file->size + file->length + length > file->max_size && file->size + file->length > 0)
		rotate(file);
	if (file->length + length > sizeof(file->buffer))
		logs_file_flush(file);
	if (length > sizeof(file->buffer))
		length = sizeof(file->buffer); /* never: lines are bounded far below */
	memcpy(file->buffer + file->length, line, length);
	file->length += length;
	file->buffered_lines++;
}

void
logs_file_reopen(struct logs_file *file)
{
	if (file->directory < 0)
		return;
	logs_file_flush(file);
	if (file->fd >= 0)
		close(file->fd);
	file->fd = -1;
	file->size = 0;
	open_file(file);
}

void
logs_file_close(struct logs_file *file)
{
	logs_file_flush(file);
	if (file->fd >= 0)
		close(file->fd);
	if (file->directory >= 0)
		close(file->directory);
	free(file->path);
	*file = (struct logs_file){.directory = -1, .fd = -1};
}
