/* output: a worker's stdout and stderr, a pipe each, read by the loop and handed line by line
 * to the sink the host connected (logs.c's). */
#include "host/worker.h"

#include <errno.h>
#include <stdlib.h>
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

/* Every pipe is read through this one buffer (the loop is one thread): a worker's own
 * struct keeps only the line a read left unfinished, and only once one did. */
static char chunk[WORKER_OUTPUT_LINE_MAX];

/* Hands on each complete line of data and keeps the partial tail in output->partial; a tail
 * that fills a whole line's room, or any tail when all (the pipe is closing), is handed on as
 * it is. data may be output->partial itself. */
static void
output_lines(struct worker_output *output, char *data, size_t length, bool all)
{
	output->length = 0;
	if (length == 0)
		return; /* data may be a partial never allocated */
	char *start = data;
	char *end = data + length;
	for (char *newline; (newline = memchr(start, '\n', (size_t)(end - start)));) {
		output_line(output, start, (size_t)(newline - start));
		start = newline + 1;
	}
	size_t rest = (size_t)(end - start);
	if (rest > 0 && !all && rest < WORKER_OUTPUT_LINE_MAX && !output->partial)
		output->partial = malloc(WORKER_OUTPUT_LINE_MAX);
	if (rest > 0 && (all || rest == WORKER_OUTPUT_LINE_MAX || !output->partial)) {
		output_line(output, start, rest); /* out of memory too: cut, not lost */
		rest = 0;
	}
	if (rest > 0)
		memmove(output->partial, start, rest);
	output->length = rest;
}

/* Reads what the pipe holds, a bounded number of reads: a worker writing without pause (yes)
 * would otherwise keep the host here forever; epoll is level-triggered and calls back. Returns
 * false at EOF (every holder of the write end is gone) or on an error. */
static bool
output_read(struct worker_output *output)
{
	for (int reads = 0; reads < WORKER_OUTPUT_READS_PER_WAKEUP; reads++) {
		size_t kept = output->length;
		if (kept > 0)
			memcpy(chunk, output->partial, kept);
		ssize_t n = read(output->fd, chunk + kept, sizeof(chunk) - kept);
		if (n > 0) {
			output_lines(output, chunk, kept + (size_t)n, false);
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
	output_lines(output, output->partial, output->length, true);
	free(output->partial);
	output->partial = NULL;
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
