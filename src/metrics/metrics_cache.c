/* metrics_cache: the /proc files of a tree kept open between captures, and each process's
 * command, so that a capture of a tree it has seen before opens nothing: a pread at offset 0 of
 * a kept stat, smaps_rollup or children list regenerates it (seq files), and cmdline is read
 * at most once a METRICS_CMDLINE_MAX_AGE per process (argv may be rewritten: lib/limits.h).
 *
 * Entries are keyed by pid and checked against the start time (a reused pid) and the program's
 * text and stack addresses and name (an exec) at every read of stat: a kept fd refers to the
 * process that was opened, never to a later holder of its pid, so a process gone shows as a
 * failed read and its entry is forgotten. The fds are bounded (max_fds, a share of
 * RLIMIT_NOFILE: lib/limits.h); past it processes are read as without a cache. Entries of
 * processes a capture did not see are dropped at its end; all of them when the owner says the
 * cache has been idle (metrics_pool.c). Not thread-safe: claims are made under the capture's
 * lock, and an entry is then used by the one thread that claimed it. */
#include "metrics/metrics_private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct metrics_cache {
	size_t max_fds;
	atomic_size_t open_fds; /* kept ones, counted by the threads that open and close them */
	/* Open addressing by pid, linear probing; rebuilt (not deleted from) at a sweep. */
	struct metrics_cache_entry **slots;
	size_t slot_count; /* a power of two, or 0 */
	size_t entry_count;
};

int
metrics_cache_new(size_t max_fds, struct metrics_cache **ret_cache)
{
	struct metrics_cache *cache = calloc(1, sizeof(*cache));
	if (!cache)
		return -ENOMEM;
	cache->max_fds = max_fds;
	atomic_init(&cache->open_fds, 0);
	*ret_cache = cache;
	return 0;
}

static size_t
slot_of(const struct metrics_cache *cache, pid_t pid)
{
	/* Knuth's multiplicative hash: neighbouring pids land apart. */
	return ((uint32_t)pid * 2654435761U) & (cache->slot_count - 1);
}

static void
insert(struct metrics_cache *cache, struct metrics_cache_entry *entry)
{
	size_t i = slot_of(cache, entry->pid);
	while (cache->slots[i])
		i = (i + 1) & (cache->slot_count - 1);
	cache->slots[i] = entry;
}

/* Rehashes into a table of slot_count slots, keeping only the entries keep() says. */
static int
rebuild(struct metrics_cache *cache, size_t slot_count, uint64_t capture, bool sweep)
{
	struct metrics_cache_entry **old = cache->slots;
	size_t old_count = cache->slot_count;
	struct metrics_cache_entry **slots = NULL;
	if (slot_count) {
		slots = calloc(slot_count, sizeof(*slots));
		if (!slots)
			return -ENOMEM;
	}
	cache->slots = slots;
	cache->slot_count = slot_count;
	cache->entry_count = 0;
	for (size_t i = 0; i < old_count; i++) {
		struct metrics_cache_entry *entry = old[i];
		if (!entry)
			continue;
		if (!slots || (sweep && entry->seen != capture)) {
			metrics_cache_forget(cache, entry);
			free(entry);
			continue;
		}
		insert(cache, entry);
		cache->entry_count++;
	}
	free(old);
	return 0;
}

struct metrics_cache_entry *
metrics_cache_claim(struct metrics_cache *cache, pid_t pid, uint64_t capture)
{
	if (cache->slot_count) {
		for (size_t i = slot_of(cache, pid); cache->slots[i];
		     i = (i + 1) & (cache->slot_count - 1)) {
			struct metrics_cache_entry *entry = cache->slots[i];
			if (entry->pid != pid)
				continue;
			if (entry->seen == capture)
				return NULL;
			entry->seen = capture;
			return entry;
		}
	}
	/* At most half full, so that probes stay short. */
	if ((cache->entry_count + 1) * 2 > cache->slot_count &&
	    rebuild(cache, cache->slot_count ? cache->slot_count * 2 : 64, capture, false) < 0)
		return NULL;
	struct metrics_cache_entry *entry = calloc(1, sizeof(*entry));
	if (!entry)
		return NULL;
	entry->pid = pid;
	entry->stat_fd = entry->smaps_fd = entry->children_fd = -1;
	entry->seen = capture;
	insert(cache, entry);
	cache->entry_count++;
	return entry;
}

bool
metrics_cache_keep(struct metrics_cache *cache, int *slot, int fd)
{
	if (atomic_fetch_add(&cache->open_fds, 1) >= cache->max_fds) {
		atomic_fetch_sub(&cache->open_fds, 1);
		return false;
	}
	*slot = fd;
	return true;
}

void
metrics_cache_close(struct metrics_cache *cache, int *slot)
{
	if (*slot < 0)
		return;
	close(*slot);
	*slot = -1;
	atomic_fetch_sub(&cache->open_fds, 1);
}

void
metrics_cache_forget(struct metrics_cache *cache, struct metrics_cache_entry *entry)
{
	metrics_cache_close(cache, &entry->stat_fd);
	metrics_cache_close(cache, &entry->smaps_fd);
	metrics_cache_close(cache, &entry->children_fd);
	free(entry->cmdline);
	entry->cmdline = NULL;
	entry->cmdline_length = 0;
	entry->start_ticks = entry->start_code = entry->start_stack = 0;
	entry->comm[0] = '\0';
}

void
metrics_cache_sweep(struct metrics_cache *cache, uint64_t capture)
{
	size_t slot_count = cache->slot_count;
	/* Shrinks with the tree, so that a tree that was large once costs no memory for ever. */
	while (slot_count > 64 && cache->entry_count * 8 < slot_count)
		slot_count /= 2;
	if (rebuild(cache, slot_count, capture, true) < 0) {
		/* No memory for a new table: sweep in place is not possible with open
		 * addressing, so drop everything (the next capture reads afresh). */
		metrics_cache_clear(cache);
	}
}

void
metrics_cache_clear(struct metrics_cache *cache)
{
	for (size_t i = 0; i < cache->slot_count; i++) {
		if (cache->slots[i]) {
			metrics_cache_forget(cache, cache->slots[i]);
			free(cache->slots[i]);
		}
	}
	free(cache->slots);
	cache->slots = NULL;
	cache->slot_count = 0;
	cache->entry_count = 0;
}

size_t
metrics_cache_open_fds(const struct metrics_cache *cache)
{
	return atomic_load(&cache->open_fds);
}

void
metrics_cache_free(struct metrics_cache *cache)
{
	if (!cache)
		return;
	metrics_cache_clear(cache);
	free(cache);
}
