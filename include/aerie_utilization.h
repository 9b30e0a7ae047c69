/* aerie_utilization.h: a worker's side of aerie's utilization counters (utilization = yes).
 *
 * Copyright (c) the aerie authors.
 *
 * Permission is hereby granted, free of charge, to any person obtaining a copy of this file,
 * to deal in it without restriction, including without limitation the rights to use, copy,
 * modify, merge, publish, distribute, sublicense, and/or sell copies of it, and to permit
 * persons to whom it is furnished to do so, subject to the following condition: the above
 * copyright notice and this permission notice shall be included in all copies or substantial
 * portions of it. THE FILE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 * IMPLIED. IN NO EVENT SHALL THE AUTHORS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY
 * ARISING FROM IT OR ITS USE.
 *
 * The host passes AERIE_UTILIZATION=PATH:OFFSET: a 64-byte segment of a shared file holding
 * four native-endian 64-bit counters. The worker updates them with atomic operations; the host
 * reads them when status or Prometheus asks.
 *
 *     struct aerie_utilization *u = aerie_utilization_open();  // NULL: not asked for
 *     aerie_utilization_add(u, AERIE_REQUESTS_ACTIVE, 1);
 *     ...
 *     aerie_utilization_add(u, AERIE_REQUESTS_ACTIVE, -1);
 *     aerie_utilization_add(u, AERIE_REQUESTS_TOTAL, 1);
 *
 * Every function accepts NULL and then does nothing, so the calls need no condition. Each
 * worker has its own segment: the counters of one process (or of its threads, as they are
 * atomic). C11, Linux. */
#ifndef AERIE_UTILIZATION_H
#define AERIE_UTILIZATION_H

#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum aerie_utilization_counter {
	AERIE_CONNECTIONS_ACTIVE,
	AERIE_CONNECTIONS_TOTAL,
	AERIE_REQUESTS_ACTIVE,
	AERIE_REQUESTS_TOTAL,
};

struct aerie_utilization {
	_Atomic uint64_t counters[4];
	uint64_t reserved[4];
};

/* Maps the segment named by AERIE_UTILIZATION; NULL if it is not set or cannot be mapped.
 * The mapping lasts until exit (or aerie_utilization_close). */
static inline struct aerie_utilization *
aerie_utilization_open(void)
{
	const char *value = getenv("AERIE_UTILIZATION");
	const char *colon = value ? strrchr(value, ':') : NULL;
	if (!colon || colon == value || (size_t)(colon - value) >= 4096)
		return NULL;
	char path[4096];
	memcpy(path, value, (size_t)(colon - value));
	path[colon - value] = '\0';
	char *end;
	unsigned long long offset = strtoull(colon + 1, &end, 10);
	long page = sysconf(_SC_PAGESIZE);
	if (*end != '\0' || offset % 64 != 0 || page <= 0)
		return NULL;
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	/* mmap wants a page-aligned offset: map the page that holds the segment. */
	unsigned long long base = offset - offset % (unsigned long long)page;
	void *map = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)base);
	close(fd);
	if (map == MAP_FAILED)
		return NULL;
	return (struct aerie_utilization *)((char *)map + (offset - base));
}

static inline void
aerie_utilization_add(struct aerie_utilization *u, enum aerie_utilization_counter counter,
		      int64_t delta)
{
	if (u)
		atomic_fetch_add_explicit(&u->counters[counter], (uint64_t)delta,
					  memory_order_relaxed);
}

static inline void
aerie_utilization_close(struct aerie_utilization *u)
{
	if (!u)
		return;
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t address = (uintptr_t)u;
	(void)munmap((void *)(address - address % (uintptr_t)page), (size_t)page);
}

#endif
