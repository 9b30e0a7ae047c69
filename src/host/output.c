/* output: a worker's stdout and stderr, one pipe read by the loop and logged line by line. */
#include "host/worker.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "lib/limits.h"
#include "lib/log.h"

static void
log_output_line(struct worker *worker, const char *line, size_t length)
{
	log_worker_line(worker->label, (int)worker->output_pid, line, length);
}

/* Logs each complete line in the buffer and keeps the partial tail; a line that fills the
 * whole buffer is logged as it is. */
static void
output_flush_lines(struct worker *worker, bool all)
{
	char *start = worker->output;
	char *end = worker->output + worker->output_length;
	for (char *newline; (newline = memchr(start, '\n', (size_t)(end - start)));) {
		log_output_line(worker, start, (size_t)(newline - start));
		start = newline + 1;
	}
	size_t rest = (size_t)(end - start);
	if (rest > 0 && (all || rest == sizeof(worker->output))) {
		log_output_line(worker, start, rest);
		rest = 0;
	}
	memmove(worker->output, start, rest);
	worker->output_length = rest;
}

static void
on_output(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct worker *worker = data;
	(void)events;
	/* A bounded number of reads per wake-up: a worker writing without pause (yes) would
	 * otherwise keep the host here forever; epoll is level-triggered and calls back. */
	for (int reads = 0; reads < WORKER_OUTPUT_READS_PER_WAKEUP; reads++) {
		ssize_t n = read(fd, worker->output + worker->output_length,
				 sizeof(worker->output) - worker->output_length);
		if (n > 0) {
			worker->output_length += (size_t)n;
			output_flush_lines(worker, false);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		/* EOF: every holder of the write end is gone. */
		worker_output_close(worker, loop);
		return;
	}
}

void
worker_output_close(struct worker *worker, struct loop *loop)
{
	if (worker->output_fd < 0)
		return;
	/* Take what is already written before closing (bounded: a grandchild may still write). */
	for (int reads = 0; reads < WORKER_OUTPUT_READS_PER_WAKEUP; reads++) {
		ssize_t n = read(worker->output_fd, worker->output + worker->output_length,
				 sizeof(worker->output) - worker->output_length);
		if (n <= 0 && !(n < 0 && errno == EINTR))
			break;
		if (n > 0) {
			worker->output_length += (size_t)n;
			output_flush_lines(worker, false);
		}
	}
	output_flush_lines(worker, true);
	loop_remove(loop, worker->output_fd);
	close(worker->output_fd);
	worker->output_fd = -1;
}

void
worker_output_open(struct worker *worker, struct loop *loop, int fd, pid_t pid)
{
	worker_output_close(worker, loop); /* a leftover pipe from the previous run */
	worker->output_fd = fd;
	worker->output_pid = pid;
	worker->output_length = 0;
	int r = loop_add(loop, worker->output_fd, EPOLLIN, on_output, worker);
	if (r < 0) {
		/* The worker runs; its output is lost but it is supervised all the same. */
		log_errno(LOG_WARN, r, "%s[%d]: cannot watch output", worker->label, (int)pid);
		close(worker->output_fd);
		worker->output_fd = -1;
	}
}
