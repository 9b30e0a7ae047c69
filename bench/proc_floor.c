/* proc_floor: the least a process-tree capture can do, as a yardstick for `aerie metrics`.
 *
 * Given a root pid it walks the same tree the same way aerie does (/proc/PID/task/PID/children,
 * depth first) and, per process, reads exactly the files aerie reads: stat, cmdline and
 * smaps_rollup, into one static buffer. Parsing is limited to the children lists; the other
 * files are only counted. Each file costs open + read + close: a read that returns less than
 * the buffer holds is the whole file (procps' file2str relies on the same property of /proc),
 * so no second read is spent waiting for 0. Prints "processes N bytes B" on stdout; with -t,
 * also "ms T": the walk's own time, without the start of the process (bench/metrics_warm). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static char buffer[1 << 16];

/* Reads one /proc file whole. Returns its length, or -1 if it can't be opened (process gone). */
static ssize_t
read_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	size_t length = 0;
	for (;;) {
		size_t room = sizeof(buffer) - 1 - length;
		ssize_t n = read(fd, buffer + length, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		length += (size_t)n;
		/* A short read is the whole file; a full buffer is enough for a yardstick. */
		if ((size_t)n < room || length == sizeof(buffer) - 1)
			break;
	}
	close(fd);
	buffer[length] = '\0';
	return (ssize_t)length;
}

int
main(int argc, char **argv)
{
	int timed = argc == 3 && strcmp(argv[2], "-t") == 0;
	if (argc != 2 && !timed) {
		fprintf(stderr, "usage: proc_floor PID [-t]\n");
		return 2;
	}
	struct timespec start, end;
	clock_gettime(CLOCK_MONOTONIC, &start);
	size_t capacity = 1024, count = 0;
	pid_t *stack = malloc(capacity * sizeof(*stack));
	if (!stack)
		return 1;
	stack[count++] = (pid_t)atoi(argv[1]);

	unsigned long processes = 0, bytes = 0;
	char path[64];
	while (count > 0) {
		pid_t pid = stack[--count];
		static const char *const files[] = {"stat", "cmdline", "smaps_rollup"};
		ssize_t n = 0;
		for (size_t i = 0; i < 3 && n >= 0; i++) {
			snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, files[i]);
			n = read_file(path);
			if (n > 0)
				bytes += (unsigned long)n;
		}
		if (n < 0)
			continue; /* exited meanwhile */
		processes++;

		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
		n = read_file(path);
		if (n <= 0)
			continue;
		bytes += (unsigned long)n;
		for (char *p = buffer; *p;) {
			char *end;
			long child = strtol(p, &end, 10);
			if (end == p)
				break;
			if (count == capacity) {
				capacity *= 2;
				pid_t *stack_new = realloc(stack, capacity * sizeof(*stack));
				if (!stack_new)
					return 1;
				stack = stack_new;
			}
			stack[count++] = (pid_t)child;
			p = end;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	if (timed)
		printf("processes %lu bytes %lu ms %.3f\n", processes, bytes,
		       (double)(end.tv_sec - start.tv_sec) * 1e3 +
			   (double)(end.tv_nsec - start.tv_nsec) / 1e6);
	else
		printf("processes %lu bytes %lu\n", processes, bytes);
	free(stack);
	return 0;
}
