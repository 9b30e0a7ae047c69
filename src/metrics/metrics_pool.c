/* metrics_pool: a capture spread over threads, and the order it is given in.
 *
 * The reads of different processes are independent and mostly kernel time (smaps_rollup walks
 * the page tables), so a capture is a queue of processes to read that the caller and the pool's
 * threads drain together: each takes a process, reads it and its children list without the
 * lock, and queues the children it found. A process remembers the children it queued, in the
 * order the walk lists them; at the end one depth-first pass over those lists from the root
 * gives the tree in the order of a single-threaded capture (root first, each child's subtree
 * before the next child), whichever thread read what, and a process gone meanwhile is left out
 * with its subtree, as before.
 *
 * The threads (one per CPU the process may run on, but the caller's, up to METRICS_MAX_THREADS)
 * start at the first capture and wait on a condition variable between captures, which costs no
 * wake-up; metrics_reader_idle ends them. They block every signal: those are the caller's
 * thread's business (the supervisor process reads them from a signalfd). A thread started by
 * a sandboxed process inherits its filter, its capabilities and its file system ids, which
 * Linux keeps per thread: the supervisor process starts them after sandbox_apply, never before,
 * so that no thread runs with more than the process has. */
#include "metrics/metrics_private.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "lib/limits.h"

/* A process to read, or read. */
struct node {
	pid_t pid;
	unsigned depth;
	int status; /* 0 read, -ESRCH gone */
	struct metrics_process process;
	size_t *children; /* indices into the capture's nodes, in the walk's order */
	size_t child_count;
};

struct job {
	const struct metrics_walk_context *context;
	struct node **nodes; /* stable pointers: the array grows while threads read nodes */
	size_t node_count, node_capacity;
	size_t *queue; /* indices of nodes not read yet; taken from the end */
	size_t queue_count, queue_capacity;
	size_t active; /* nodes being read now */
	int error;     /* the first error other than a process gone */
	uint64_t capture;
};

/* One thread's buffers, reused from process to process. */
struct worker {
	struct metrics_buffer buffer;
	struct metrics_pids pids;
};

struct metrics_reader {
	pthread_mutex_t lock;
	pthread_cond_t changed; /* the queue, the job or quit */
	struct job *job;	/* &capture while one runs, else NULL */
	struct job capture;
	bool quit;
	pthread_t *threads;
	size_t thread_count;
	struct metrics_cache *cache; /* NULL: none */
	uint64_t captures;
	struct worker self; /* the caller's */
};

static void
worker_free(struct worker *worker)
{
	free(worker->buffer.data);
	free(worker->pids.pids);
	*worker = (struct worker){0};
}

static int
add_node(struct job *job, pid_t pid, unsigned depth, size_t *ret_index)
{
	int r = metrics_grow((void **)&job->nodes, &job->node_capacity, job->node_count + 1,
			     sizeof(*job->nodes));
	if (r == 0)
		r = metrics_grow((void **)&job->queue, &job->queue_capacity, job->queue_count + 1,
				 sizeof(*job->queue));
	struct node *node = r == 0 ? calloc(1, sizeof(*node)) : NULL;
	if (!node)
		return -ENOMEM;
	node->pid = pid;
	node->depth = depth;
	node->status = -ESRCH;
	*ret_index = job->node_count;
	job->nodes[job->node_count++] = node;
	job->queue[job->queue_count++] = *ret_index;
	return 0;
}

/* Reads one node without the lock; entry is the cache's, claimed under it. */
static int
read_node(struct job *job, struct worker *worker, struct metrics_cache *cache,
	  struct metrics_cache_entry *entry, struct node *node)
{
	struct metrics_stat stat;
	worker->pids.count = 0;
	int r = metrics_read_process(job->context, &worker->buffer, cache, entry, node->pid,
				     node->depth, &node->process, &stat);
	if (r < 0)
		return r;
	node->status = 0;
	return metrics_read_children(job->context, &worker->buffer, cache, entry, node->pid,
				     stat.num_threads, &worker->pids);
}

/* Under the lock: queues the children worker found for node. */
static int
queue_children(struct job *job, struct worker *worker, struct node *node)
{
	if (worker->pids.count == 0)
		return 0;
	node->children = calloc(worker->pids.count, sizeof(*node->children));
	if (!node->children)
		return -ENOMEM;
	for (size_t i = 0; i < worker->pids.count; i++) {
		int r = add_node(job, worker->pids.pids[i], node->depth + 1, &node->children[i]);
		if (r < 0)
			return r;
		node->child_count++;
	}
	return 0;
}

/* Takes and reads nodes until the queue is empty; called and returns with the lock held. */
static void
drain(struct metrics_reader *reader, struct job *job, struct worker *worker)
{
	while (job->queue_count > 0) {
		struct node *node = job->nodes[job->queue[--job->queue_count]];
		struct metrics_cache_entry *entry =
		    reader->cache && job->error == 0
			? metrics_cache_claim(reader->cache, node->pid, job->capture)
			: NULL;
		job->active++;
		int r = 0;
		if (job->error == 0) {
			pthread_mutex_unlock(&reader->lock);
			r = read_node(job, worker, reader->cache, entry, node);
			pthread_mutex_lock(&reader->lock);
		}
		if (r == 0 && node->status == 0)
			r = queue_children(job, worker, node);
		if (r < 0 && r != -ESRCH && job->error == 0)
			job->error = r;
		job->active--;
		/* Wake the others for the new work, or the caller for the end. */
		if (worker->pids.count > 0 || (job->active == 0 && job->queue_count == 0))
			pthread_cond_broadcast(&reader->changed);
		worker->pids.count = 0;
	}
}

static void *
thread_main(void *data)
{
	struct metrics_reader *reader = data;
	struct worker worker = {0};
	if (metrics_buffer_init(&worker.buffer) < 0)
		return NULL; /* the caller and the other threads do the work */
	pthread_mutex_lock(&reader->lock);
	for (;;) {
		while (!reader->quit && !(reader->job && reader->job->queue_count > 0))
			pthread_cond_wait(&reader->changed, &reader->lock);
		if (reader->quit)
			break;
		drain(reader, reader->job, &worker);
	}
	pthread_mutex_unlock(&reader->lock);
	worker_free(&worker);
	return NULL;
}

/* The CPUs this process may run on, as the scheduler says (a cgroup's cpuset or taskset). */
static size_t
cpus_available(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 1;
	int count = CPU_COUNT(&set);
	return count > 0 ? (size_t)count : 1;
}

/* Starts the pool's threads; fewer (even none) if the system refuses some: the caller's thread
 * reads everything then. */
static void
start_threads(struct metrics_reader *reader)
{
	size_t wanted = cpus_available();
	if (wanted > METRICS_MAX_THREADS)
		wanted = METRICS_MAX_THREADS;
	if (wanted <= 1)
		return;
	reader->threads = calloc(wanted - 1, sizeof(*reader->threads));
	if (!reader->threads)
		return;
	pthread_attr_t attr;
	if (pthread_attr_init(&attr) != 0)
		return;
	(void)pthread_attr_setstacksize(&attr, METRICS_THREAD_STACK);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (size_t i = 0; i + 1 < wanted; i++) {
		if (pthread_create(&reader->threads[reader->thread_count], &attr, thread_main,
				   reader) != 0)
			break;
		reader->thread_count++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
}

int
metrics_reader_new(size_t max_cached_fds, struct metrics_reader **ret_reader)
{
	struct metrics_reader *reader = calloc(1, sizeof(*reader));
	if (!reader)
		return -ENOMEM;
	int r = metrics_buffer_init(&reader->self.buffer);
	if (r == 0 && max_cached_fds > 0)
		r = metrics_cache_new(max_cached_fds, &reader->cache);
	if (r == 0 && (pthread_mutex_init(&reader->lock, NULL) != 0 ||
		       pthread_cond_init(&reader->changed, NULL) != 0))
		r = -ENOMEM;
	if (r < 0) {
		metrics_cache_free(reader->cache);
		worker_free(&reader->self);
		free(reader);
		return r;
	}
	*ret_reader = reader;
	return 0;
}

/* The read nodes from index down, depth first, moved into tree (which has room for all). */
static int
assemble(struct job *job, struct metrics_tree *tree)
{
	size_t *stack = malloc(job->node_count * sizeof(*stack));
	if (!stack)
		return -ENOMEM;
	size_t depth = 0;
	stack[depth++] = 0;
	while (depth > 0) {
		struct node *node = job->nodes[stack[--depth]];
		if (node->status != 0)
			continue; /* gone: its subtree was never queued */
		tree->processes[tree->count++] = node->process;
		node->process.command = NULL; /* the tree's now */
		for (size_t i = node->child_count; i > 0; i--)
			stack[depth++] = node->children[i - 1];
	}
	free(stack);
	return 0;
}

static void
job_free(struct job *job)
{
	for (size_t i = 0; i < job->node_count; i++) {
		free(job->nodes[i]->process.command);
		free(job->nodes[i]->children);
		free(job->nodes[i]);
	}
	free(job->nodes);
	free(job->queue);
}

int
metrics_reader_capture(struct metrics_reader *reader, pid_t root, enum metrics_walk walk,
		       struct metrics_tree *ret_tree)
{
	struct metrics_walk_context context;
	int r = metrics_walk_context_init(&context, &reader->self.buffer, walk);
	if (r < 0) {
		metrics_walk_context_finish(&context);
		return r;
	}
	struct job *job = &reader->capture;
	*job = (struct job){.context = &context, .capture = ++reader->captures};
	size_t root_index;
	r = add_node(job, root, 0, &root_index);
	if (r == 0) {
		if (!reader->threads)
			start_threads(reader);
		pthread_mutex_lock(&reader->lock);
		reader->job = job;
		pthread_cond_broadcast(&reader->changed);
		for (;;) {
			drain(reader, job, &reader->self);
			if (job->active == 0)
				break;
			pthread_cond_wait(&reader->changed, &reader->lock);
		}
		reader->job = NULL; /* no thread touches it from here: all are waiting */
		pthread_mutex_unlock(&reader->lock);
		r = job->error;
	}
	struct metrics_tree tree = {0};
	if (r == 0 && job->nodes[0]->status != 0)
		r = -ESRCH;
	if (r == 0) {
		tree.processes = calloc(job->node_count, sizeof(*tree.processes));
		tree.capacity = job->node_count;
		r = tree.processes ? assemble(job, &tree) : -ENOMEM;
	}
	job_free(job);
	metrics_walk_context_finish(&context);
	if (reader->cache)
		metrics_cache_sweep(reader->cache, job->capture);
	*job = (struct job){0}; /* its context was this call's */
	if (r < 0) {
		metrics_tree_free(&tree);
		return r;
	}
	*ret_tree = tree;
	return 0;
}

void
metrics_reader_idle(struct metrics_reader *reader)
{
	if (reader->thread_count) {
		pthread_mutex_lock(&reader->lock);
		reader->quit = true;
		pthread_cond_broadcast(&reader->changed);
		pthread_mutex_unlock(&reader->lock);
		for (size_t i = 0; i < reader->thread_count; i++)
			pthread_join(reader->threads[i], NULL);
		reader->quit = false;
	}
	free(reader->threads);
	reader->threads = NULL;
	reader->thread_count = 0;
	if (reader->cache)
		metrics_cache_clear(reader->cache);
}

size_t
metrics_reader_threads(const struct metrics_reader *reader)
{
	return reader->thread_count;
}

size_t
metrics_reader_cached_fds(const struct metrics_reader *reader)
{
	return reader->cache ? metrics_cache_open_fds(reader->cache) : 0;
}

void
metrics_reader_free(struct metrics_reader *reader)
{
	if (!reader)
		return;
	metrics_reader_idle(reader);
	pthread_cond_destroy(&reader->changed);
	pthread_mutex_destroy(&reader->lock);
	metrics_cache_free(reader->cache);
	worker_free(&reader->self);
	free(reader);
}

int
metrics_capture(pid_t root, enum metrics_walk walk, struct metrics_tree *ret_tree)
{
	struct metrics_reader *reader;
	int r = metrics_reader_new(0, &reader);
	if (r < 0)
		return r;
	r = metrics_reader_capture(reader, root, walk, ret_tree);
	metrics_reader_free(reader);
	return r;
}

void
metrics_tree_free(struct metrics_tree *tree)
{
	for (size_t i = 0; i < tree->count; i++)
		free(tree->processes[i].command);
	free(tree->processes);
	*tree = (struct metrics_tree){0};
}
