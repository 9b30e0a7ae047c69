/* test_host_memory: the available memory for memory_free_minimum, from fake /proc and cgroup
 * files: cgroup v2 (limit in the own cgroup or a parent, "max" everywhere), v1, hybrid
 * hierarchies, unlimited v1, and /proc/meminfo when no cgroup limits. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics/host_memory.h"

#define MEMINFO                                                                                    \
	"MemTotal:       16000000 kB\nMemFree:         1000000 kB\n"                               \
	"MemAvailable:    2000000 kB\nBuffers:          100000 kB\n"

/* Writes text at root/relative, making the directories on the way. */
static void
put(const char *root, const char *relative, const char *text)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", root, relative);
	for (char *slash = strchr(path + strlen(root) + 1, '/'); slash;
	     slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		assert_true(mkdir(path, 0700) == 0 || errno == EEXIST);
		*slash = '/';
	}
	FILE *file = fopen(path, "w");
	assert_non_null(file);
	assert_int_equal(fputs(text, file) >= 0, 1);
	assert_int_equal(fclose(file), 0);
}

static char *
fake_root(void)
{
	char *root = strdup("/tmp/aerie-host-memory-XXXXXX");
	assert_non_null(mkdtemp(root));
	return root;
}

static void
remove_root(char *root)
{
	char command[4200];
	snprintf(command, sizeof(command), "rm -rf '%s'", root);
	assert_int_equal(system(command), 0);
	free(root);
}

static void
expect(const char *root, uint64_t bytes, enum host_memory_source source)
{
	uint64_t available = 0;
	enum host_memory_source from = HOST_MEMORY_MEMINFO;
	assert_int_equal(host_memory_available(root, &available, &from), 0);
	assert_int_equal(from, source);
	assert_int_equal(available, bytes);
}

static void
cgroup2_own_limit(void **state)
{
	(void)state;
	char *root = fake_root();
	put(root, "proc/self/cgroup", "0::/system.slice/web.service\n");
	put(root, "sys/fs/cgroup/system.slice/web.service/memory.max", "1073741824\n");
	put(root, "sys/fs/cgroup/system.slice/web.service/memory.current", "268435456\n");
	put(root, "proc/meminfo", MEMINFO);
	expect(root, 1073741824 - 268435456, HOST_MEMORY_CGROUP2);
	remove_root(root);
}

/* "max" in the own cgroup: the parent's limit and usage are what bind. */
static void
cgroup2_parent_limit(void **state)
{
	(void)state;
	char *root = fake_root();
	put(root, "proc/self/cgroup", "0::/system.slice/web.service\n");
	put(root, "sys/fs/cgroup/system.slice/web.service/memory.max", "max\n");
	put(root, "sys/fs/cgroup/system.slice/web.service/memory.current", "1000\n");
	put(root, "sys/fs/cgroup/system.slice/memory.max", "500000000\n");
	put(root, "sys/fs/cgroup/system.slice/memory.current", "100000000\n");
	put(root, "proc/meminfo", MEMINFO);
	expect(root, 400000000, HOST_MEMORY_CGROUP2);
	remove_root(root);
}

/* Over its limit (usage can pass memory.max briefly): nothing available, not a wrap-around. */
static void
cgroup2_over(void **state)
{
	(void)state;
	char *root = fake_root();
	put(root, "proc/self/cgroup", "0::/a\n");
	put(root, "sys/fs/cgroup/a/memory.max", "1000\n");
	put(root, "sys/fs/cgroup/a/memory.current", "2000\n");
	expect(root, 0, HOST_MEMORY_CGROUP2);
	remove_root(root);
}

static void
cgroup2_unlimited_falls_back_to_meminfo(void **state)
{
	(void)state;
	char *root = fake_root();
	put(root, "proc/self/cgroup", "0::/a/b\n");
	put(root, "sys/fs/cgroup/a/b/memory.max", "max\n");
	put(root, "sys/fs/cgroup/a/memory.max", "max\n");
	put(root, "proc/meminfo", MEMINFO);
	expect(root, 2000000ULL * 1024, HOST_MEMORY_MEMINFO);
	remove_root(root);
}

/* A hybrid hierarchy (v2 for systemd only, v1 memory controller) as on this kind of host. */
static void
cgroup1_limit(void **state)
{
	(void)state;
	char *root = fake_root();
	put(root, "proc/self/cgroup",
	    "9:name=systemd:/\n4:cpu,memory:/docker/abc\n1:cpu:/\n0::/\n");
	put(root, "sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "2147483648\n");
	put(root, "sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes", "1073741824\n");
	put(root, "proc/meminfo", MEMINFO);
	expect(root, 1073741824, HOST_MEMORY_CGROUP1);
	remove_root(root);
}

/* v1 writes PAGE_COUNTER_MAX pages for no limit. */
static void
cgroup1_unlimited_falls_back_to_meminfo(void **state)
{
	(void)state;
	char *root = fake_root();
	put(root, "proc/self/cgroup", "4:memory:/\n");
	put(root, "sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
	put(root, "sys/fs/cgroup/memory/memory.usage_in_bytes", "843780096\n");
	put(root, "proc/meminfo", MEMINFO);
	expect(root, 2000000ULL * 1024, HOST_MEMORY_MEMINFO);
	remove_root(root);
}

static void
no_cgroup_file(void **state)
{
	(void)state;
	char *root = fake_root();
	put(root, "proc/meminfo", MEMINFO);
	expect(root, 2000000ULL * 1024, HOST_MEMORY_MEMINFO);
	remove_root(root);
}

static void
nothing_readable(void **state)
{
	(void)state;
	char *root = fake_root();
	uint64_t available = 7;
	enum host_memory_source source = HOST_MEMORY_CGROUP1;
	assert_int_equal(host_memory_available(root, &available, &source), -ENOENT);
	assert_int_equal(available, 7); /* untouched on failure */
	put(root, "proc/meminfo", "MemTotal: 100 kB\n");
	assert_int_equal(host_memory_available(root, &available, &source), -ENODATA);
	assert_int_equal(available, 7);
	remove_root(root);
}

/* The real files of the machine the test runs on: some figure, from some source. */
static void
this_machine(void **state)
{
	(void)state;
	uint64_t available = 0;
	enum host_memory_source source;
	assert_int_equal(host_memory_available("", &available, &source), 0);
	assert_true(available > 0);
	assert_non_null(host_memory_source_name(source));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(cgroup2_own_limit),
	    cmocka_unit_test(cgroup2_parent_limit),
	    cmocka_unit_test(cgroup2_over),
	    cmocka_unit_test(cgroup2_unlimited_falls_back_to_meminfo),
	    cmocka_unit_test(cgroup1_limit),
	    cmocka_unit_test(cgroup1_unlimited_falls_back_to_meminfo),
	    cmocka_unit_test(no_cgroup_file),
	    cmocka_unit_test(nothing_readable),
	    cmocka_unit_test(this_machine),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
