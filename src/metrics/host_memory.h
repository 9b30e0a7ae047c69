/* host_memory: how much memory the host may still use, as Falcon's MemoryMonitor reads it: its
 * cgroup's limit less its usage (v2, else v1), else /proc/meminfo's MemAvailable. */
#pragma once

#include <stdint.h>

enum host_memory_source {
	HOST_MEMORY_CGROUP2, /* memory.max - memory.current */
	HOST_MEMORY_CGROUP1, /* memory.limit_in_bytes - memory.usage_in_bytes */
	HOST_MEMORY_MEMINFO, /* MemAvailable */
};

/* Reads root/proc/self/cgroup, then the cgroup's files under root/sys/fs/cgroup (from the
 * process' own cgroup up to the top of the mount, the first that has a limit), then
 * root/proc/meminfo. root is "" for the real files; a test gives a directory of fakes.
 * Returns 0, *ret_bytes and *ret_source, or -errno when nothing could be read. */
int host_memory_available(const char *root, uint64_t *ret_bytes,
			  enum host_memory_source *ret_source);
const char *host_memory_source_name(enum host_memory_source source);
