/* utilization: the shared file of a service's counters (Falcon's utilization.shm), one 64-byte
 * segment per running worker, which the worker writes and the host reads when asked. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define UTILIZATION_SEGMENT_SIZE 64

/* A segment's words, in this order (include/aerie_utilization.h is the workers' side). */
struct utilization_counters {
	uint64_t connections_active;
	uint64_t connections_total;
	uint64_t requests_active;
	uint64_t requests_total;
};

struct utilization {
	char *path; /* NULL until a worker needs a segment */
	int fd;
	size_t slots;	     /* segments in the file */
	unsigned char *used; /* one per slot */
	/* The totals of segments given back (a worker exited, was replaced): a service's
	 * *_total counters keep growing over its workers' lives, as a Prometheus counter must. */
	struct utilization_counters retired;
};

/* A free segment, zeroed; the file is created (at path) or grown as needed. Returns 0 and
 * *ret_slot, or -errno (-ENOSPC past UTILIZATION_MAX_SLOTS). */
int utilization_take(struct utilization *utilization, const char *path, size_t *ret_slot);
/* Adds the segment's totals to retired and zeroes it: its worker is gone or replaced. */
void utilization_reset(struct utilization *utilization, size_t slot);
/* Resets the segment and gives it back. */
void utilization_release(struct utilization *utilization, size_t slot);
void utilization_read(const struct utilization *utilization, size_t slot,
		      struct utilization_counters *ret_counters);
/* Hands the file to the workers' user and group ((uid_t)-1, (gid_t)-1: unchanged), so that a
 * worker with `user`/`group` can open it; the host only preads and pwrites it. 0 or -errno. */
int utilization_give(struct utilization *utilization, uid_t uid, gid_t gid);
/* Closes and removes the file (if it is still the file it created). */
void utilization_close(struct utilization *utilization);
