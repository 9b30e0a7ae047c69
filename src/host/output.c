/* output: a worker's stdout and stderr, a pipe each, read by the loop and handed line by line
 * to the sink the host connected (logs.c's). */
#include "host/worker.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "lib/limits.h"
#include "lib/log.h"

static const struct worker_output_sink *sink;

void
worker_output_sink(const struct worker_output_sink *new_sink)
{
	sink = new_sink;
}

static void
output_line(struct worker_output *output, const char *line, size_t length)
{
	if (sink)
		sink->line(output->worker, output->stream, line, length);
}

static void
output_pump(void)
{
	if (sink)
		sink->pump();
}

static void
output_sink_flush(void)
{
	if (sink)
		sink->flush();
}

/* Hands on each complete line in the buffer and keeps the partial tail; a line that fills the
 * whole buffer is handed on as it is (in pieces of the buffer's size). */
static void
output_flush_lines(struct worker_output *output, bool all)
{
	char *start = output->buffer;
	char *end = output->buffer + output->length;
	for (char *newline; (newline = memchr(start, '\n', (size_t)(end - start)));) {
		output_line(output, start, (size_t)(newline - start));
		start = newline + 1;
	}
	size_t rest = (size_t)(end - start);
	if (rest > 0 && (all || rest == sizeof(output->buffer))) {
		output_line(output, start, rest);
		rest = 0;
	}
	memmove(output->buffer, start, rest);
	output->length = rest;
}

/* Reads what the pipe holds, a bounded number of reads: a worker writing without pause (yes)
 * would otherwise keep the host here forever; epoll is level-triggered and calls back. Returns
 * false at EOF (every holder of the write end is gone) or on an error. */
static bool
output_read(struct worker_output *output)
{
	for (int reads = 0; reads < WORKER_OUTPUT_READS_PER_WAKEUP; reads++) {
		ssize_t n = read(output->fd, output->buffer + output->length,
				 sizeof(output->buffer) - output->length);
		if (n > 0) {
			output->length += (size_t)n;
			output_flush_lines(output, false);
			/* Followers get each read's lines before the next read may overrun them in
			 * the ring. */
			output_pump();
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 && errno == EAGAIN;
	}
	return true;
}

static void
output_close(struct worker_output *output, struct loop *loop)
{
	if (output->fd < 0)
		return;
	/* Take what is already written before closing (bounded: a grandchild may still write). */
	(void)output_read(output);
	output_flush_lines(output, true);
	loop_remove(loop, output->fd);
	close(output->fd);
	output->fd = -1;
}

static void
on_output(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct worker_output *output = data;
	(void)fd;
	(void)events;
	if (!output_read(output))
		output_close(output, loop);
	/* Once per wake-up, not per line or read: the file gets one write. */
	output_sink_flush();
}

void
worker_output_init(struct worker *worker)
{
	for (int i = 0; i < WORKER_STREAM_COUNT; i++)
		worker->output[i] = (struct worker_output){
		    .worker = worker, .stream = (enum worker_stream)i, .fd = -1};
}

void
worker_output_close(struct worker *worker, struct loop *loop)
{
	for (int i = 0; i < WORKER_STREAM_COUNT; i++)
		output_close(&worker->output[i], loop);
	output_sink_flush();
}

void
worker_output_open(struct worker *worker, struct loop *loop, const int fds[2], pid_t pid)
{
	worker_output_close(worker, loop); /* leftover pipes from the previous run */
	worker->output_pid = pid;
	for (int i = 0; i < WORKER_STREAM_COUNT; i++) {
		struct worker_output *output = &worker->output[i];
		output->fd = fds[i];
		output->length = 0;
		int r = loop_add(loop, output->fd, EPOLLIN, on_output, output);
		if (r < 0) {
			/* The worker runs; this output is lost but it is supervised all the same.
			 */
			log_errno(LOG_WARN, r, "%s[%d]: cannot watch output", worker->label,
				  (int)pid);
			close(output->fd);
			output->fd = -1;
		}
	}
}
