/* host_memory: the memory available to the host, for [host] memory_free_minimum. */
#include "metrics/host_memory.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A limit this large is no limit: cgroup v1 writes PAGE_COUNTER_MAX pages (about 2^63). */
#define UNLIMITED (UINT64_C(1) << 60)

/* The file's first bytes, NUL-terminated; 0 or -errno. */
static int
read_small(const char *path, char *buffer, size_t size)
{
	buffer[0] = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buffer, size - 1);
	int r = n < 0 ? -errno : 0;
	(void)close(fd);
	buffer[n > 0 ? n : 0] = '\0';
	return r;
}

/* A number alone on its line ("max" and the like are not). */
static bool
read_number(const char *path, uint64_t *ret_value)
{
	char text[64], *end;
	if (read_small(path, text, sizeof(text)) < 0 || text[0] < '0' || text[0] > '9')
		return false;
	errno = 0;
	unsigned long long value = strtoull(text, &end, 10);
	if (errno || (*end != '\0' && *end != '\n'))
		return false;
	*ret_value = value;
	return true;
}

/* From mount/path up to mount itself: the first directory whose limit file holds a limit. */
static bool
cgroup_available(const char *mount, const char *path, const char *limit_name,
		 const char *usage_name, uint64_t *ret_bytes)
{
	char directory[4096];
	int n = snprintf(directory, sizeof(directory), "%s%s", mount, path);
	if (n < 0 || (size_t)n >= sizeof(directory))
		return false;
	size_t base = strlen(mount);
	for (;;) {
		size_t length = strlen(directory);
		while (length > base && directory[length - 1] == '/')
			directory[--length] = '\0';
		char file[4200];
		uint64_t limit, usage;
		snprintf(file, sizeof(file), "%s/%s", directory, limit_name);
		if (read_number(file, &limit) && limit < UNLIMITED) {
			snprintf(file, sizeof(file), "%s/%s", directory, usage_name);
			if (!read_number(file, &usage))
				return false;
			*ret_bytes = limit > usage ? limit - usage : 0;
			return true;
		}
		char *slash = strrchr(directory + base, '/');
		if (!slash)
			return false;
		*slash = '\0';
	}
}

/* Whether the comma-separated list of controllers names memory. */
static bool
has_memory_controller(const char *controllers, size_t length)
{
	for (const char *c = controllers; c < controllers + length;) {
		size_t word = strcspn(c, ",:");
		if (word == 6 && strncmp(c, "memory", 6) == 0)
			return true;
		c += word + 1;
	}
	return false;
}

static bool
from_cgroups(const char *root, uint64_t *ret_bytes, enum host_memory_source *ret_source)
{
	char path[4096], text[8192];
	snprintf(path, sizeof(path), "%s/proc/self/cgroup", root);
	if (read_small(path, text, sizeof(text)) < 0)
		return false;
	char v2[4096] = "", v1[4096] = "";
	bool has_v2 = false, has_v1 = false;
	for (char *line = text, *next; *line; line = next) {
		next = line + strcspn(line, "\n");
		if (*next)
			*next++ = '\0';
		/* ID:CONTROLLERS:PATH */
		char *first = strchr(line, ':'), *second = first ? strchr(first + 1, ':') : NULL;
		if (!second)
			continue;
		if (strncmp(line, "0::", 3) == 0) {
			has_v2 = true;
			snprintf(v2, sizeof(v2), "%s", second + 1);
		} else if (has_memory_controller(first + 1, (size_t)(second - first - 1))) {
			has_v1 = true;
			snprintf(v1, sizeof(v1), "%s", second + 1);
		}
	}
	char mount[4200];
	if (has_v2) {
		snprintf(mount, sizeof(mount), "%s/sys/fs/cgroup", root);
		if (cgroup_available(mount, v2, "memory.max", "memory.current", ret_bytes)) {
			*ret_source = HOST_MEMORY_CGROUP2;
			return true;
		}
	}
	if (has_v1) {
		snprintf(mount, sizeof(mount), "%s/sys/fs/cgroup/memory", root);
		if (cgroup_available(mount, v1, "memory.limit_in_bytes", "memory.usage_in_bytes",
				     ret_bytes)) {
			*ret_source = HOST_MEMORY_CGROUP1;
			return true;
		}
	}
	return false;
}

int
host_memory_available(const char *root, uint64_t *ret_bytes, enum host_memory_source *ret_source)
{
	if (from_cgroups(root, ret_bytes, ret_source))
		return 0;
	char path[4096], text[8192];
	snprintf(path, sizeof(path), "%s/proc/meminfo", root);
	int r = read_small(path, text, sizeof(text));
	if (r < 0)
		return r;
	const char *line = strstr(text, "MemAvailable:");
	unsigned long long kib;
	if (!line || sscanf(line, "MemAvailable: %llu kB", &kib) != 1)
		return -ENODATA;
	*ret_bytes = (uint64_t)kib * 1024;
	*ret_source = HOST_MEMORY_MEMINFO;
	return 0;
}

const char *
host_memory_source_name(enum host_memory_source source)
{
	switch (source) {
	case HOST_MEMORY_CGROUP2:
		return "cgroup v2 memory.max - memory.current";
	case HOST_MEMORY_CGROUP1:
		return "cgroup v1 memory.limit_in_bytes - memory.usage_in_bytes";
	case HOST_MEMORY_MEMINFO:
		return "MemAvailable";
	}
	return "?";
}
