/* utilization: the shared file of a service's counters. Workers open it by the path in
 * AERIE_UTILIZATION, so it cannot be a memfd: it is a file the host creates with O_EXCL and
 * O_NOFOLLOW (a name planted there beforehand, a symbolic link to some other file, is removed,
 * never followed or reused), mode 0600, next to the control socket, in a directory that only
 * the host's user (or root) should be able to write. The host touches the mapping only when
 * asked (status, Prometheus) and when a worker comes or goes: no timer reads it. */
#include "host/utilization.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/limits.h"
#include "lib/log.h"

static int
create_file(struct utilization *utilization, const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	int fd = -1;
	for (int attempt = 0; attempt < 2 && fd < 0; attempt++) {
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		/* Left by a host that was killed: ours to remove (unlink removes a link itself,
		 * never its target), then created anew. */
		if (fd < 0 && errno == EEXIST && attempt == 0 && unlink(path) < 0 &&
		    errno != ENOENT)
			break;
	}
	if (fd < 0) {
		int r = -errno;
		free(copy);
		return r;
	}
	/* The umask could have taken the owner's write bit: workers need it. */
	if (fchmod(fd, 0600) < 0) {
		int r = -errno;
		(void)close(fd);
		(void)unlink(path);
		free(copy);
		return r;
	}
	utilization->path = copy;
	utilization->fd = fd;
	return 0;
}

static int
grow(struct utilization *utilization, size_t slots)
{
	unsigned char *used = realloc(utilization->used, slots);
	if (!used)
		return -ENOMEM;
	memset(used + utilization->slots, 0, slots - utilization->slots);
	utilization->used = used;
	/* Whole pages: a worker maps the page that holds its segment, which must be in the file.
	 * The workers' own mappings stay valid: the file only grows. */
	long page = sysconf(_SC_PAGESIZE);
	size_t bytes = slots * UTILIZATION_SEGMENT_SIZE, unit = page > 0 ? (size_t)page : 4096;
	if (ftruncate(utilization->fd, (off_t)((bytes + unit - 1) / unit * unit)) < 0)
		return -errno;
	utilization->slots = slots;
	return 0;
}

/* The host reads and zeroes segments with pread and pwrite, never through a mapping: a worker
 * may write the file (it is given to the service's user), and one that truncated it would
 * make a mapped read SIGBUS the host. A short read (a truncated file) reads as zeros. */
static void
zero_segment(const struct utilization *utilization, size_t slot)
{
	static const unsigned char zeros[UTILIZATION_SEGMENT_SIZE];
	if (pwrite(utilization->fd, zeros, sizeof(zeros),
		   (off_t)(slot * UTILIZATION_SEGMENT_SIZE)) != (ssize_t)sizeof(zeros))
		log_errno(LOG_WARN, -errno, "cannot zero a segment of %s", utilization->path);
}

int
utilization_take(struct utilization *utilization, const char *path, size_t *ret_slot)
{
	if (!utilization->path) {
		int r = create_file(utilization, path);
		if (r < 0)
			return r;
	}
	size_t slot = 0;
	while (slot < utilization->slots && utilization->used[slot])
		slot++;
	if (slot == utilization->slots) {
		if (slot >= UTILIZATION_MAX_SLOTS)
			return -ENOSPC;
		size_t slots =
		    slot * 2 < UTILIZATION_FIRST_SLOTS ? UTILIZATION_FIRST_SLOTS : slot * 2;
		int r = grow(utilization,
			     slots < UTILIZATION_MAX_SLOTS ? slots : UTILIZATION_MAX_SLOTS);
		if (r < 0)
			return r;
	}
	utilization->used[slot] = 1;
	zero_segment(utilization, slot);
	*ret_slot = slot;
	return 0;
}

void
utilization_read(const struct utilization *utilization, size_t slot,
		 struct utilization_counters *ret_counters)
{
	uint64_t words[4] = {0};
	ssize_t n =
	    pread(utilization->fd, words, sizeof(words), (off_t)(slot * UTILIZATION_SEGMENT_SIZE));
	if (n != (ssize_t)sizeof(words))
		memset(words, 0, sizeof(words));
	*ret_counters = (struct utilization_counters){words[0], words[1], words[2], words[3]};
}

void
utilization_reset(struct utilization *utilization, size_t slot)
{
	struct utilization_counters counters;
	utilization_read(utilization, slot, &counters);
	utilization->retired.connections_total += counters.connections_total;
	utilization->retired.requests_total += counters.requests_total;
	zero_segment(utilization, slot);
}

void
utilization_release(struct utilization *utilization, size_t slot)
{
	utilization_reset(utilization, slot);
	utilization->used[slot] = 0;
}

int
utilization_give(struct utilization *utilization, uid_t uid, gid_t gid)
{
	return fchown(utilization->fd, uid, gid) < 0 ? -errno : 0;
}

void
utilization_close(struct utilization *utilization)
{
	if (!utilization->path)
		return;
	struct stat ours, named;
	if (fstat(utilization->fd, &ours) == 0 && lstat(utilization->path, &named) == 0 &&
	    ours.st_dev == named.st_dev && ours.st_ino == named.st_ino &&
	    unlink(utilization->path) < 0)
		log_errno(LOG_WARN, -errno, "cannot remove %s", utilization->path);
	(void)close(utilization->fd);
	free(utilization->used);
	free(utilization->path);
	*utilization = (struct utilization){0};
}
