/* metrics: capture a process tree (a pid and its descendants) from /proc into plain structs: the
 * walk and the reads; the parsing of what is read is in proc_parse.c.
 *
 * Hand-written rather than built on libprocps: the cost of a capture is the number of /proc
 * files opened, and this reads three per process (stat, cmdline, smaps_rollup; a fourth, statm,
 * only where smaps_rollup can't be read) plus the children list, with one reusable buffer and
 * no stdio. procps' readproc opens status and more for fields we don't need. */
#include "metrics/metrics.h"
#include "metrics/proc_parse.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct capture {
	struct metrics_tree tree;
	char *buffer;
	size_t buffer_size;
	double ticks_per_second;
	uint64_t page_size;
	/* A stack of (pid, depth) still to visit. */
	struct pending {
		pid_t pid;
		unsigned depth;
	} * stack;
	size_t stack_count, stack_capacity;
	/* Only for METRICS_WALK_SCAN: every (ppid, pid) on the system, sorted by ppid. */
	struct edge {
		pid_t ppid;
		pid_t pid;
	} * edges;
	size_t edge_count;
};

static int
grow(void **array, size_t *capacity, size_t needed, size_t element_size)
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

/* Reads a whole /proc file into capture->buffer, NUL-terminated. Returns its length or -errno.
 * one_record: the file is produced in one piece (stat, cmdline, smaps_rollup), so a short read
 * is its end; the children list is a sequence of records that the kernel may hand out a page
 * at a time, so it is read to EOF. */
static ssize_t
read_proc_file(struct capture *capture, const char *path, bool one_record)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	size_t length = 0;
	for (;;) {
		if (length + 1 >= capture->buffer_size) {
			size_t size_new = capture->buffer_size * 2;
			char *buffer_new = realloc(capture->buffer, size_new);
			if (!buffer_new) {
				close(fd);
				return -ENOMEM;
			}
			capture->buffer = buffer_new;
			capture->buffer_size = size_new;
		}
		ssize_t n = read(fd, capture->buffer + length, capture->buffer_size - length - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int r = -errno;
			close(fd);
			return r;
		}
		if (n == 0)
			break;
		length += (size_t)n;
		/* /proc hands out a file in one read when the buffer has room: a short read is
		 * the end (as procps assumes), which saves a second read per file. */
		if (one_record && (size_t)n < capture->buffer_size - (length - (size_t)n) - 1)
			break;
	}
	close(fd);
	capture->buffer[length] = '\0';
	return (ssize_t)length;
}

static int
push_pending(struct capture *capture, pid_t pid, unsigned depth)
{
	int r = grow((void **)&capture->stack, &capture->stack_capacity, capture->stack_count + 1,
		     sizeof(*capture->stack));
	if (r < 0)
		return r;
	capture->stack[capture->stack_count++] = (struct pending){pid, depth};
	return 0;
}

struct child_push {
	struct capture *capture;
	unsigned depth;
};

static int
push_child(pid_t pid, void *data)
{
	struct child_push *push = data;
	return push_pending(push->capture, pid, push->depth);
}

/* Pushes the children that one task's children file lists. A vanished task has none. */
static int
push_task_children(struct capture *capture, pid_t pid, const char *tid, unsigned depth)
{
	char path[300];
	snprintf(path, sizeof(path), "/proc/%d/task/%s/children", (int)pid, tid);
	ssize_t n = read_proc_file(capture, path, false);
	if (n == -ENOENT || n == -ESRCH)
		return 0;
	if (n < 0)
		return (int)n;
	struct child_push push = {capture, depth};
	int r = metrics_parse_children(capture->buffer, push_child, &push);
	return r < 0 ? r : 0;
}

static int
push_children(struct capture *capture, pid_t pid, uint64_t num_threads, unsigned depth)
{
	/* Children hang off the thread that forked them; a single-threaded process needs only
	 * its main task's file, which saves listing the task directory. */
	if (num_threads <= 1) {
		char tid[16];
		snprintf(tid, sizeof(tid), "%d", (int)pid);
		return push_task_children(capture, pid, tid, depth);
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
		r = push_task_children(capture, pid, entry->d_name, depth);
	}
	closedir(dir);
	return r;
}

static int
compare_edges(const void *a, const void *b)
{
	const struct edge *x = a, *y = b;
	if (x->ppid != y->ppid)
		return x->ppid < y->ppid ? -1 : 1;
	return (x->pid > y->pid) - (x->pid < y->pid);
}

/* The fallback walk: one pass over every /proc/PID/stat gives each process's parent. */
static int
scan_all_parents(struct capture *capture)
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
		if (read_proc_file(capture, path, true) < 0 ||
		    metrics_parse_stat(capture->buffer, &stat) < 0)
			continue; /* gone meanwhile */
		r = grow((void **)&capture->edges, &capacity, capture->edge_count + 1,
			 sizeof(*capture->edges));
		if (r < 0)
			break;
		capture->edges[capture->edge_count++] = (struct edge){stat.ppid, stat.pid};
	}
	closedir(dir);
	if (r < 0)
		return r;
	if (capture->edge_count)
		qsort(capture->edges, capture->edge_count, sizeof(*capture->edges), compare_edges);
	return 0;
}

static int
push_scanned_children(struct capture *capture, pid_t pid, unsigned depth)
{
	/* Lower bound of ppid == pid in the sorted edges. */
	size_t low = 0, high = capture->edge_count;
	while (low < high) {
		size_t middle = low + (high - low) / 2;
		if (capture->edges[middle].ppid < pid)
			low = middle + 1;
		else
			high = middle;
	}
	size_t end = low;
	while (end < capture->edge_count && capture->edges[end].ppid == pid)
		end++;
	/* Pushed in reverse so that they pop in pid order. */
	for (size_t i = end; i > low; i--) {
		int r = push_pending(capture, capture->edges[i - 1].pid, depth);
		if (r < 0)
			return r;
	}
	return 0;
}

static double
boot_seconds(void)
{
	struct timespec now;
	(void)clock_gettime(CLOCK_BOOTTIME, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* Reads one process. Returns 0, -ESRCH if it is gone (not an error for the capture), or
 * another -errno. On success the process is appended to the tree. */
static int
read_process(struct capture *capture, pid_t pid, unsigned depth, struct metrics_stat *ret_stat)
{
	char path[64];
	struct metrics_stat stat;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	ssize_t n = read_proc_file(capture, path, true);
	if (n == -ENOENT || n == -ESRCH)
		return -ESRCH;
	if (n < 0)
		return (int)n;
	/* Unparsable can only be a process caught mid-exit (seen as state X with pgid -1):
	 * like one that is gone, it is left out rather than failing the whole capture. */
	if (metrics_parse_stat(capture->buffer, &stat) < 0 || stat.state == 'X')
		return -ESRCH;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	n = read_proc_file(capture, path, true);
	if (n == -ENOENT || n == -ESRCH)
		return -ESRCH;
	if (n < 0)
		n = 0; /* unreadable: show [comm] as ps does */
	char *command =
	    metrics_command_from_cmdline(capture->buffer, (size_t)n, stat.comm, stat.state);
	if (!command)
		return -ENOMEM;

	int r = grow((void **)&capture->tree.processes, &capture->tree.capacity,
		     capture->tree.count + 1, sizeof(*capture->tree.processes));
	if (r < 0) {
		free(command);
		return r;
	}

	double processor_time =
	    (double)(stat.utime_ticks + stat.stime_ticks) / capture->ticks_per_second;
	/* The clock is read after stat, per process, so that a busy process never shows more
	 * CPU time than elapsed time (a vDSO call: nothing next to the reads). */
	double elapsed = boot_seconds() - (double)stat.start_ticks / capture->ticks_per_second;
	if (elapsed < 0)
		elapsed = 0;
	struct metrics_process process = {
	    .pid = stat.pid,
	    .ppid = stat.ppid,
	    .pgid = stat.pgid,
	    .depth = depth,
	    .processor_utilization = elapsed > 0 ? processor_time / elapsed * 100.0 : 0.0,
	    .virtual_size = stat.vsize_bytes,
	    .resident_size = stat.rss_pages * capture->page_size,
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
	if (read_proc_file(capture, path, true) > 0 &&
	    metrics_parse_smaps_rollup(capture->buffer, &process.memory) == 0) {
		process.has_memory = true;
		process.resident_size = process.memory.resident_size;
	} else {
		snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
		uint64_t resident;
		if (read_proc_file(capture, path, true) > 0 &&
		    metrics_parse_statm(capture->buffer, &resident) == 0 &&
		    resident <= UINT64_MAX / capture->page_size)
			process.resident_size = resident * capture->page_size;
	}

	capture->tree.processes[capture->tree.count++] = process;
	*ret_stat = stat;
	return 0;
}

static bool
children_files_exist(void)
{
	return access("/proc/thread-self/children", F_OK) == 0;
}

int
metrics_capture(pid_t root, enum metrics_walk walk, struct metrics_tree *ret_tree)
{
	struct capture capture = {0};
	int r;

	capture.buffer_size = 4096;
	capture.buffer = malloc(capture.buffer_size);
	if (!capture.buffer)
		return -ENOMEM;
	long ticks = sysconf(_SC_CLK_TCK);
	long page_size = sysconf(_SC_PAGESIZE);
	capture.ticks_per_second = ticks > 0 ? (double)ticks : 100.0;
	capture.page_size = page_size > 0 ? (uint64_t)page_size : 4096;

	if (walk == METRICS_WALK_CHILDREN && !children_files_exist())
		walk = METRICS_WALK_SCAN;
	if (walk == METRICS_WALK_SCAN) {
		r = scan_all_parents(&capture);
		if (r < 0)
			goto out;
	}

	r = push_pending(&capture, root, 0);
	while (r >= 0 && capture.stack_count > 0) {
		struct pending next = capture.stack[--capture.stack_count];
		struct metrics_stat stat = {0};
		r = read_process(&capture, next.pid, next.depth, &stat);
		if (r == -ESRCH) {
			r = 0; /* exited during the capture */
			continue;
		}
		if (r < 0)
			break;
		size_t first_child = capture.stack_count;
		if (walk == METRICS_WALK_SCAN)
			r = push_scanned_children(&capture, next.pid, next.depth + 1);
		else
			r = push_children(&capture, next.pid, stat.num_threads, next.depth + 1);
		/* The stack pops last-pushed first: reverse so that children come out in the
		 * order the kernel lists them (oldest first). */
		if (walk == METRICS_WALK_CHILDREN) {
			for (size_t i = first_child, j = capture.stack_count; i + 1 < j; i++, j--) {
				struct pending swap = capture.stack[i];
				capture.stack[i] = capture.stack[j - 1];
				capture.stack[j - 1] = swap;
			}
		}
	}
	if (r >= 0 && capture.tree.count == 0)
		r = -ESRCH;

out:
	free(capture.buffer);
	free(capture.stack);
	free(capture.edges);
	if (r < 0) {
		metrics_tree_free(&capture.tree);
		return r;
	}
	*ret_tree = capture.tree;
	return 0;
}

void
metrics_tree_free(struct metrics_tree *tree)
{
	for (size_t i = 0; i < tree->count; i++)
		free(tree->processes[i].command);
	free(tree->processes);
	*tree = (struct metrics_tree){0};
}
