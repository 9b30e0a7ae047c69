/* metrics: reading one process of a tree from /proc, and the walk to its children; the parsing
 * of what is read is in proc_parse.c, the threads and the order of a whole capture in
 * metrics_pool.c, the files kept open between captures in metrics_cache.c.
 *
 * Hand-written rather than built on libprocps: the cost of a capture is the number of /proc
 * files opened, and this reads three per process (stat, cmdline, smaps_rollup; a fourth, statm,
 * only where smaps_rollup can't be read) plus the children list, with one reusable buffer per
 * thread and no stdio. procps' readproc opens status and more for fields we don't need. */
#include "metrics/metrics_private.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/limits.h"

int
metrics_grow(void **array, size_t *capacity, size_t needed, size_t element_size)
{
	if (needed <= *capacity)
		return 0;
	size_t capacity_new = *capacity ? *capacity * 2 : 16;
	while (capacity_new < needed)
		capacity_new *= 2;
	void *array_new = reallocarray(*array, capacity_new, element_size);
	if (!array_new)
		return -ENOMEM;
	*array = array_new;
	*capacity = capacity_new;
	return 0;
}

int
metrics_buffer_init(struct metrics_buffer *buffer)
{
	buffer->size = 4096;
	buffer->data = malloc(buffer->size);
	return buffer->data ? 0 : -ENOMEM;
}

/* Reads a whole /proc file from its start into buffer, NUL-terminated: pread at 0 makes the
 * kernel generate a seq file afresh, so a kept fd reads the process as it is now. Returns its
 * length or -errno. one_record: the file is produced in one piece (stat, cmdline,
 * smaps_rollup), so a short read is its end; the children list is a sequence of records that the
 * kernel may hand out a page at a time, so it is read to EOF. */
static ssize_t
read_fd(struct metrics_buffer *buffer, int fd, bool one_record)
{
	size_t length = 0;
	for (;;) {
		if (length + 1 >= buffer->size) {
			size_t size_new = buffer->size * 2;
			char *data_new = realloc(buffer->data, size_new);
			if (!data_new)
				return -ENOMEM;
			buffer->data = data_new;
			buffer->size = size_new;
		}
		ssize_t n =
		    pread(fd, buffer->data + length, buffer->size - length - 1, (off_t)length);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		length += (size_t)n;
		/* /proc hands out a file in one read when the buffer has room: a short read is
		 * the end (as procps assumes), which saves a second read per file. */
		if (one_record && (size_t)n < buffer->size - (length - (size_t)n) - 1)
			break;
	}
	buffer->data[length] = '\0';
	return (ssize_t)length;
}

/* Opens path and reads it; the fd is closed, or kept in *ret_fd (when given) after a read that
 * succeeded. Returns the length or -errno. */
static ssize_t
read_path(struct metrics_buffer *buffer, const char *path, bool one_record, int *ret_fd)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	ssize_t n = read_fd(buffer, fd, one_record);
	if (ret_fd && n >= 0)
		*ret_fd = fd;
	else
		close(fd);
	return n;
}

/* Reads the file behind *slot (the entry's kept fd) or, without one or once it fails, path;
 * a fresh fd is kept in *slot if the cache has room. */
static ssize_t
read_kept(struct metrics_buffer *buffer, struct metrics_cache *cache, int *slot, const char *path)
{
	if (slot && *slot >= 0) {
		ssize_t n = read_fd(buffer, *slot, true);
		if (n > 0)
			return n;
		metrics_cache_close(cache, slot); /* the process is gone, or its memory */
	}
	int fd = -1;
	ssize_t n = read_path(buffer, path, true, slot ? &fd : NULL);
	if (fd >= 0 && (n <= 0 || !metrics_cache_keep(cache, slot, fd)))
		close(fd);
	return n;
}

static int
push_pid(struct metrics_pids *pids, pid_t pid)
{
	int r = metrics_grow((void **)&pids->pids, &pids->capacity, pids->count + 1,
			     sizeof(*pids->pids));
	if (r < 0)
		return r;
	pids->pids[pids->count++] = pid;
	return 0;
}

static int
push_child(pid_t pid, void *data)
{
	return push_pid(data, pid);
}

/* Appends the children that one task's children file lists. A vanished task has none. */
static int
push_task_children(struct metrics_buffer *buffer, pid_t pid, const char *tid,
		   struct metrics_pids *pids)
{
	char path[300];
	snprintf(path, sizeof(path), "/proc/%d/task/%s/children", (int)pid, tid);
	ssize_t n = read_path(buffer, path, false, NULL);
	if (n == -ENOENT || n == -ESRCH)
		return 0;
	if (n < 0)
		return (int)n;
	int r = metrics_parse_children(buffer->data, push_child, pids);
	return r < 0 ? r : 0;
}

/* The children of pid from the sorted edges of the scan walk, in pid order. */
static int
push_scanned_children(const struct metrics_walk_context *context, pid_t pid,
		      struct metrics_pids *pids)
{
	/* Lower bound of ppid == pid in the sorted edges. */
	size_t low = 0, high = context->edge_count;
	while (low < high) {
		size_t middle = low + (high - low) / 2;
		if (context->edges[middle].ppid < pid)
			low = middle + 1;
		else
			high = middle;
	}
	int r = 0;
	for (size_t i = low; r == 0 && i < context->edge_count && context->edges[i].ppid == pid;
	     i++)
		r = push_pid(pids, context->edges[i].pid);
	return r;
}

/* The main task's children file through the entry's kept fd (read to its end: the list comes a
 * page at a time), which a capture reads after the entry's stat, so that it is this process's;
 * an empty list is a list like another (a leaf), not a failure. */
static int
push_kept_children(struct metrics_buffer *buffer, struct metrics_cache *cache,
		   struct metrics_cache_entry *entry, pid_t pid, struct metrics_pids *pids)
{
	if (entry->children_fd < 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			return errno == ENOENT || errno == ESRCH ? 0 : -errno;
		if (!metrics_cache_keep(cache, &entry->children_fd, fd)) {
			close(fd);
			char tid[16];
			snprintf(tid, sizeof(tid), "%d", (int)pid);
			return push_task_children(buffer, pid, tid, pids);
		}
	}
	ssize_t n = read_fd(buffer, entry->children_fd, false);
	if (n < 0) {
		metrics_cache_close(cache, &entry->children_fd);
		return n == -ESRCH ? 0 : (int)n;
	}
	int r = metrics_parse_children(buffer->data, push_child, pids);
	return r < 0 ? r : 0;
}

int
metrics_read_children(const struct metrics_walk_context *context, struct metrics_buffer *buffer,
		      struct metrics_cache *cache, struct metrics_cache_entry *entry, pid_t pid,
		      uint64_t num_threads, struct metrics_pids *pids)
{
	if (context->walk == METRICS_WALK_SCAN)
		return push_scanned_children(context, pid, pids);
	/* Children hang off the thread that forked them; a single-threaded process needs only
	 * its main task's file, which saves listing the task directory. */
	if (num_threads <= 1 && entry)
		return push_kept_children(buffer, cache, entry, pid, pids);
	if (entry) /* threads now: their files are listed afresh */
		metrics_cache_close(cache, &entry->children_fd);
	if (num_threads <= 1) {
		char tid[16];
		snprintf(tid, sizeof(tid), "%d", (int)pid);
		return push_task_children(buffer, pid, tid, pids);
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *dir = opendir(path);
	if (!dir)
		return errno == ENOENT || errno == ESRCH ? 0 : -errno;
	int r = 0;
	for (struct dirent *entry; r >= 0 && (entry = readdir(dir));) {
		if (entry->d_name[0] == '.')
			continue;
		r = push_task_children(buffer, pid, entry->d_name, pids);
	}
	closedir(dir);
	return r;
}

static int
compare_edges(const void *a, const void *b)
{
	const struct metrics_edge *x = a, *y = b;
	if (x->ppid != y->ppid)
		return x->ppid < y->ppid ? -1 : 1;
	return (x->pid > y->pid) - (x->pid < y->pid);
}

/* The fallback walk: one pass over every /proc/PID/stat gives each process's parent. */
static int
scan_all_parents(struct metrics_walk_context *context, struct metrics_buffer *buffer)
{
	DIR *dir = opendir("/proc");
	if (!dir)
		return -errno;
	size_t capacity = 0;
	int r = 0;
	for (struct dirent *entry; (entry = readdir(dir));) {
		if (!isdigit((unsigned char)entry->d_name[0]))
			continue;
		char path[sizeof(entry->d_name) + 16];
		snprintf(path, sizeof(path), "/proc/%s/stat", entry->d_name);
		struct metrics_stat stat;
		if (read_path(buffer, path, true, NULL) < 0 ||
		    metrics_parse_stat(buffer->data, &stat) < 0)
			continue; /* gone meanwhile */
		r = metrics_grow((void **)&context->edges, &capacity, context->edge_count + 1,
				 sizeof(*context->edges));
		if (r < 0)
			break;
		context->edges[context->edge_count++] = (struct metrics_edge){stat.ppid, stat.pid};
	}
	closedir(dir);
	if (r < 0)
		return r;
	if (context->edge_count)
		qsort(context->edges, context->edge_count, sizeof(*context->edges), compare_edges);
	return 0;
}

static double
boot_seconds(void)
{
	struct timespec now;
	(void)clock_gettime(CLOCK_BOOTTIME, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static bool
children_files_exist(void)
{
	return access("/proc/thread-self/children", F_OK) == 0;
}

int
metrics_walk_context_init(struct metrics_walk_context *context, struct metrics_buffer *buffer,
			  enum metrics_walk walk)
{
	long ticks = sysconf(_SC_CLK_TCK);
	long page_size = sysconf(_SC_PAGESIZE);
	*context = (struct metrics_walk_context){
	    .walk = walk,
	    .ticks_per_second = ticks > 0 ? (double)ticks : 100.0,
	    .page_size = page_size > 0 ? (uint64_t)page_size : 4096,
	    .started = boot_seconds(),
	};
	if (walk == METRICS_WALK_CHILDREN && !children_files_exist())
		context->walk = METRICS_WALK_SCAN;
	return context->walk == METRICS_WALK_SCAN ? scan_all_parents(context, buffer) : 0;
}

void
metrics_walk_context_finish(struct metrics_walk_context *context)
{
	free(context->edges);
	context->edges = NULL;
}

/* Matches entry to the process whose stat was just read: a different start time is a reused
 * pid, a different program text, stack or name an exec; either way what it kept is another
 * process's. */
static void
entry_identify(struct metrics_cache *cache, struct metrics_cache_entry *entry,
	       const struct metrics_stat *stat)
{
	if (entry->start_ticks == stat->start_ticks && entry->start_code == stat->start_code &&
	    entry->start_stack == stat->start_stack && strcmp(entry->comm, stat->comm) == 0)
		return;
	int stat_fd = entry->stat_fd; /* read just now: it is this process's */
	entry->stat_fd = -1;
	metrics_cache_forget(cache, entry);
	entry->stat_fd = stat_fd;
	entry->start_ticks = stat->start_ticks;
	entry->start_code = stat->start_code;
	entry->start_stack = stat->start_stack;
	snprintf(entry->comm, sizeof(entry->comm), "%s", stat->comm);
}

/* The process's command, from the entry's copy of its cmdline or from the file (then kept). */
static int
read_command(const struct metrics_walk_context *context, struct metrics_buffer *buffer,
	     struct metrics_cache_entry *entry, pid_t pid, const struct metrics_stat *stat,
	     char **ret_command)
{
	/* A zombie's cmdline is empty, and ps shows it as [comm] <defunct>. */
	bool cached = entry && entry->cmdline && stat->state != 'Z' &&
		      context->started - entry->cmdline_read < METRICS_CMDLINE_MAX_AGE;
	const char *cmdline = cached ? entry->cmdline : NULL;
	size_t length = cached ? entry->cmdline_length : 0;
	if (!cached) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
		ssize_t n = read_path(buffer, path, true, NULL);
		if (n == -ENOENT || n == -ESRCH)
			return -ESRCH;
		length = n < 0 ? 0 : (size_t)n; /* unreadable: show [comm] as ps does */
		cmdline = buffer->data;
		if (entry && length > 0 && stat->state != 'Z') {
			free(entry->cmdline);
			entry->cmdline = malloc(length + 1);
			if (entry->cmdline) { /* else read again next time */
				memcpy(entry->cmdline, cmdline, length + 1);
				entry->cmdline_length = length;
				entry->cmdline_read = context->started;
			}
		}
	}
	*ret_command = metrics_command_from_cmdline(cmdline, length, stat->comm, stat->state);
	return *ret_command ? 0 : -ENOMEM;
}

int
metrics_read_process(const struct metrics_walk_context *context, struct metrics_buffer *buffer,
		     struct metrics_cache *cache, struct metrics_cache_entry *entry, pid_t pid,
		     unsigned depth, struct metrics_process *ret_process,
		     struct metrics_stat *ret_stat)
{
	char path[64];
	struct metrics_stat stat;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	ssize_t n = -ESRCH;
	/* A kept stat fd that fails is a process that has exited: whatever has its pid now is
	 * another one, which none of the entry's files or command belongs to. */
	if (entry && entry->stat_fd >= 0 && (n = read_fd(buffer, entry->stat_fd, true)) <= 0)
		metrics_cache_forget(cache, entry);
	if (!entry || entry->stat_fd < 0)
		n = read_kept(buffer, cache, entry ? &entry->stat_fd : NULL, path);
	if (n == -ENOENT || n == -ESRCH || n == 0)
		return -ESRCH;
	if (n < 0)
		return (int)n;
	/* Unparsable can only be a process caught mid-exit (seen as state X with pgid -1):
	 * like one that is gone, it is left out rather than failing the whole capture. */
	if (metrics_parse_stat(buffer->data, &stat) < 0 || stat.state == 'X' || stat.pid != pid)
		return -ESRCH;
	if (entry)
		entry_identify(cache, entry, &stat);

	char *command;
	int r = read_command(context, buffer, entry, pid, &stat, &command);
	if (r < 0)
		return r;

	double processor_time =
	    (double)(stat.utime_ticks + stat.stime_ticks) / context->ticks_per_second;
	/* The clock is read after stat, per process, so that a busy process never shows more
	 * CPU time than elapsed time (a vDSO call: nothing next to the reads). */
	double elapsed = boot_seconds() - (double)stat.start_ticks / context->ticks_per_second;
	if (elapsed < 0)
		elapsed = 0;
	struct metrics_process process = {
	    .pid = stat.pid,
	    .ppid = stat.ppid,
	    .pgid = stat.pgid,
	    .depth = depth,
	    .processor_utilization = elapsed > 0 ? processor_time / elapsed * 100.0 : 0.0,
	    .virtual_size = stat.vsize_bytes,
	    .resident_size = stat.rss_pages * context->page_size,
	    .processor_time = processor_time,
	    .elapsed_time = elapsed,
	    .start_ticks = stat.start_ticks,
	    .command = command,
	    .minor_faults = stat.minor_faults,
	    .major_faults = stat.major_faults,
	};

	/* Another user's process (EACCES) or one that became a zombie has no rollup: memory is
	 * null, and resident_size comes from statm, whose resident count is the one ps shows
	 * (VmRSS in status). stat's rss is the kernel's cheap approximate read of the same
	 * counters, which misses pages still batched per CPU: 108 KiB of a sleep's 1.7 MiB and
	 * 200 KiB of a python3's 10 MiB on Linux 6.18, where statm and status sum them exactly. */
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	if (read_kept(buffer, cache, entry ? &entry->smaps_fd : NULL, path) > 0 &&
	    metrics_parse_smaps_rollup(buffer->data, &process.memory) == 0) {
		process.has_memory = true;
		process.resident_size = process.memory.resident_size;
	} else {
		if (entry)
			metrics_cache_close(cache, &entry->smaps_fd);
		snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
		uint64_t resident;
		if (read_path(buffer, path, true, NULL) > 0 &&
		    metrics_parse_statm(buffer->data, &resident) == 0 &&
		    resident <= UINT64_MAX / context->page_size)
			process.resident_size = resident * context->page_size;
	}

	*ret_process = process;
	*ret_stat = stat;
	return 0;
}
