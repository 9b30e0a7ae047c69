/* test_metrics_cache: the metrics reader (metrics_pool.c, metrics_cache.c) on live children of
 * this process: the same tree as a one-off capture, the fds it keeps counted in /proc/self/fd,
 * a gone child's closed, a reused pid read afresh, nothing kept once idle. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics/metrics.h"

#define DIRTY_BYTES (32 * 1024 * 1024)

/* A child that waits for SIGKILL; with dirty, having written that many bytes first. Returns
 * once it is there (a pipe closes). */
static pid_t
spawn_child(size_t dirty)
{
	int ready[2];
	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Gone with the test, whatever failed. */
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(ready[0]);
		if (dirty) {
			char *memory = malloc(dirty);
			if (!memory)
				_exit(1);
			memset(memory, 1, dirty);
		}
		close(ready[1]);
		for (;;)
			pause();
	}
	close(ready[1]);
	char byte;
	assert_int_equal(read(ready[0], &byte, 1), 0);
	close(ready[0]);
	return pid;
}

static void
kill_child(pid_t pid)
{
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
}

/* How many of this process's fds point into /proc/PID/ (any pid if pid is 0). */
static size_t
proc_fds(pid_t pid)
{
	char prefix[64];
	if (pid)
		snprintf(prefix, sizeof(prefix), "/proc/%d/", (int)pid);
	else
		snprintf(prefix, sizeof(prefix), "/proc/");
	DIR *dir = opendir("/proc/self/fd");
	assert_non_null(dir);
	size_t count = 0;
	for (struct dirent *entry; (entry = readdir(dir));) {
		char path[PATH_MAX], link[PATH_MAX];
		snprintf(path, sizeof(path), "/proc/self/fd/%s", entry->d_name);
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		/* The directory being listed is an fd of /proc/self/fd itself. */
		if (strncmp(link, prefix, strlen(prefix)) == 0 && !strstr(link, "/fd"))
			count++;
	}
	closedir(dir);
	return count;
}

static const struct metrics_process *
find(const struct metrics_tree *tree, pid_t pid)
{
	for (size_t i = 0; i < tree->count; i++)
		if (tree->processes[i].pid == pid)
			return &tree->processes[i];
	return NULL;
}

static uint64_t
start_ticks(pid_t pid)
{
	char path[64], text[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *file = fopen(path, "re");
	assert_non_null(file);
	assert_non_null(fgets(text, sizeof(text), file));
	fclose(file);
	const char *p = strrchr(text, ')');
	assert_non_null(p);
	/* Field 22; p is at the end of field 2. */
	unsigned long long value = 0;
	for (int field = 2; field < 22; field++)
		p = strchr(p + 1, ' ');
	assert_int_equal(sscanf(p + 1, "%llu", &value), 1);
	return value;
}

static void
same_tree(const struct metrics_tree *a, const struct metrics_tree *b)
{
	assert_int_equal(a->count, b->count);
	for (size_t i = 0; i < a->count; i++) {
		const struct metrics_process *x = &a->processes[i], *y = &b->processes[i];
		assert_int_equal(x->pid, y->pid);
		assert_int_equal(x->ppid, y->ppid);
		assert_int_equal(x->pgid, y->pgid);
		assert_int_equal(x->depth, y->depth);
		assert_int_equal(x->start_ticks, y->start_ticks);
		assert_int_equal(x->has_memory, y->has_memory);
		assert_string_equal(x->command, y->command);
	}
}

static void
reader_gives_the_tree_of_a_capture(void **state)
{
	(void)state;
	pid_t children[6];
	for (size_t i = 0; i < 6; i++)
		children[i] = spawn_child(0);
	struct metrics_reader *reader;
	assert_int_equal(metrics_reader_new(64, &reader), 0);
	struct metrics_tree once, cold, warm;
	assert_int_equal(metrics_capture(getpid(), METRICS_WALK_CHILDREN, &once), 0);
	assert_int_equal(metrics_reader_capture(reader, getpid(), METRICS_WALK_CHILDREN, &cold), 0);
	assert_int_equal(metrics_reader_capture(reader, getpid(), METRICS_WALK_CHILDREN, &warm), 0);
	assert_int_equal(once.count, 7);
	same_tree(&once, &cold);
	same_tree(&once, &warm);
	/* Children in the kernel's order: oldest first. */
	for (size_t i = 0; i < 6; i++)
		assert_int_equal(warm.processes[i + 1].pid, children[i]);
	/* stat, smaps_rollup and children of each, within the budget; but this process's
	 * children list when it runs the reader's threads (a directory of them, listed anew). */
	size_t kept = metrics_reader_threads(reader) > 0 ? 20 : 21;
	assert_int_equal(metrics_reader_cached_fds(reader), kept);
	assert_int_equal(proc_fds(0), kept);
	metrics_tree_free(&once);
	metrics_tree_free(&cold);
	metrics_tree_free(&warm);
	/* Idle: no thread, no fd. */
	metrics_reader_idle(reader);
	assert_int_equal(metrics_reader_threads(reader), 0);
	assert_int_equal(metrics_reader_cached_fds(reader), 0);
	assert_int_equal(proc_fds(0), 0);
	metrics_reader_free(reader);
	for (size_t i = 0; i < 6; i++)
		kill_child(children[i]);
}

static void
budget_bounds_the_fds(void **state)
{
	(void)state;
	pid_t children[4];
	for (size_t i = 0; i < 4; i++)
		children[i] = spawn_child(0);
	struct metrics_reader *reader;
	assert_int_equal(metrics_reader_new(3, &reader), 0);
	struct metrics_tree bounded, once;
	assert_int_equal(metrics_reader_capture(reader, getpid(), METRICS_WALK_CHILDREN, &bounded),
			 0);
	assert_int_equal(metrics_reader_cached_fds(reader), 3);
	assert_int_equal(proc_fds(0), 3);
	/* Past the budget a process is read as without a cache: the same values. */
	assert_int_equal(metrics_capture(getpid(), METRICS_WALK_CHILDREN, &once), 0);
	same_tree(&once, &bounded);
	metrics_tree_free(&bounded);
	metrics_tree_free(&once);
	metrics_reader_free(reader);
	assert_int_equal(proc_fds(0), 0);
	for (size_t i = 0; i < 4; i++)
		kill_child(children[i]);
}

static void
gone_child_fds_closed(void **state)
{
	(void)state;
	pid_t stays = spawn_child(0), goes = spawn_child(0);
	struct metrics_reader *reader;
	assert_int_equal(metrics_reader_new(64, &reader), 0);
	struct metrics_tree tree;
	assert_int_equal(metrics_reader_capture(reader, getpid(), METRICS_WALK_CHILDREN, &tree), 0);
	metrics_tree_free(&tree);
	assert_int_equal(proc_fds(goes), 3);
	kill_child(goes);
	assert_int_equal(metrics_reader_capture(reader, getpid(), METRICS_WALK_CHILDREN, &tree), 0);
	assert_null(find(&tree, goes));
	assert_non_null(find(&tree, stays));
	metrics_tree_free(&tree);
	assert_int_equal(proc_fds(goes), 0);
	assert_int_equal(proc_fds(stays), 3);
	assert_int_equal(metrics_reader_cached_fds(reader),
			 metrics_reader_threads(reader) > 0 ? 5 : 6);
	metrics_reader_free(reader);
	kill_child(stays);
}

/* Forks a child with the pid wanted, by setting the kernel's last pid just below it (root only;
 * other processes may take it first: then again). Returns the pid or -1. */
static pid_t
spawn_with_pid(pid_t wanted, size_t dirty)
{
	for (int attempt = 0; attempt < 200; attempt++) {
		int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return -1;
		char text[16];
		int length = snprintf(text, sizeof(text), "%d", (int)wanted - 1);
		ssize_t n = write(fd, text, (size_t)length);
		close(fd);
		if (n != length)
			return -1;
		pid_t pid = spawn_child(dirty);
		if (pid == wanted)
			return pid;
		kill_child(pid);
	}
	return -1;
}

static void
reused_pid_read_afresh(void **state)
{
	(void)state;
	if (geteuid() != 0 || access("/proc/sys/kernel/ns_last_pid", W_OK) != 0)
		skip(); /* needs root to choose a pid */
	pid_t first = spawn_child(0);
	struct metrics_reader *reader;
	assert_int_equal(metrics_reader_new(64, &reader), 0);
	struct metrics_tree tree;
	assert_int_equal(metrics_reader_capture(reader, getpid(), METRICS_WALK_CHILDREN, &tree), 0);
	const struct metrics_process *old = find(&tree, first);
	assert_non_null(old);
	uint64_t old_start = old->start_ticks, old_resident = old->resident_size;
	metrics_tree_free(&tree);

	kill_child(first);
	/* A tick later at least, so that the start times differ as well as the processes. */
	usleep(20 * 1000);
	pid_t second = spawn_with_pid(first, DIRTY_BYTES);
	assert_int_equal(second, first);
	assert_int_equal(metrics_reader_capture(reader, getpid(), METRICS_WALK_CHILDREN, &tree), 0);
	const struct metrics_process *now = find(&tree, second);
	assert_non_null(now);
	/* The new process's values, not what the kept fds of the old one would say. */
	assert_int_equal(now->start_ticks, start_ticks(second));
	assert_true(now->start_ticks > old_start);
	assert_true(now->resident_size >= old_resident + DIRTY_BYTES / 2);
	assert_true(now->memory.private_dirty_size >= DIRTY_BYTES / 2);
	metrics_tree_free(&tree);
	assert_int_equal(proc_fds(second), 3);
	metrics_reader_free(reader);
	kill_child(second);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(reader_gives_the_tree_of_a_capture),
	    cmocka_unit_test(budget_bounds_the_fds),
	    cmocka_unit_test(gone_child_fds_closed),
	    cmocka_unit_test(reused_pid_read_afresh),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
