/* Unit tests of spawn.c: a respawn with the same inputs allocates nothing and gives the child the
 * same environment; different inputs give the new one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/worker.h"
#include "lib/loop.h"

/* Allocations are counted by replacing malloc, calloc and realloc for the whole process (glibc
 * supports that, and its own calls, such as asprintf's, come here too, which -Wl,--wrap would
 * not see). AddressSanitizer owns malloc itself, but calls a hook on each allocation. */
static volatile size_t allocations;

#if defined(__SANITIZE_ADDRESS__)
#define ALLOCATOR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ALLOCATOR_ASAN 1
#endif
#endif

#ifdef ALLOCATOR_ASAN
/* sanitizer/allocator_interface.h's, which not every compiler installs. */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
					      void (*free_hook)(const volatile void *));

static void
count_malloc(const volatile void *pointer, size_t size)
{
	(void)pointer;
	(void)size;
	allocations++;
}

static void
count_free(const volatile void *pointer)
{
	(void)pointer;
}

static void
allocations_start(void)
{
	(void)__sanitizer_install_malloc_and_free_hooks(count_malloc, count_free);
}
#else
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);

void *
malloc(size_t size)
{
	allocations++;
	return __libc_malloc(size);
}

void *
calloc(size_t count, size_t size)
{
	allocations++;
	return __libc_calloc(count, size);
}

void *
realloc(void *pointer, size_t size)
{
	allocations++;
	return __libc_realloc(pointer, size);
}

static void
allocations_start(void)
{
}
#endif

/* The child's environment as execve got it, NUL-separated (/proc/PID/environ), as one string
 * per entry; the pid-dependent entries are checked against pid and then masked, so that two
 * spawns compare equal. */
#define ENTRIES_MAX 512

struct seen {
	char text[64 * 1024];
	char *entries[ENTRIES_MAX];
	size_t count;
};

static void
seen_read(struct seen *seen, const char *path, pid_t pid)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	ssize_t length = read(fd, seen->text, sizeof(seen->text) - 1);
	close(fd);
	assert_true(length > 0);
	seen->text[length] = '\0';
	seen->count = 0;
	char pid_text[16];
	snprintf(pid_text, sizeof(pid_text), "%d", (int)pid);
	for (char *p = seen->text, *next; p < seen->text + length; p = next) {
		next = p + strlen(p) + 1;
		assert_true(seen->count < ENTRIES_MAX);
		if (strncmp(p, "LISTEN_PID=", 11) == 0 || strncmp(p, "WATCHDOG_PID=", 13) == 0) {
			char *value = strchr(p, '=') + 1;
			assert_string_equal(value, pid_text);
			*value = '\0';
		}
		seen->entries[seen->count++] = p;
	}
}

static const char *
seen_get(const struct seen *seen, const char *key)
{
	const char *found = NULL;
	size_t length = strlen(key);
	for (size_t i = 0; i < seen->count; i++) {
		if (strncmp(seen->entries[i], key, length) == 0 &&
		    seen->entries[i][length] == '=') {
			assert_null(found); /* each key once */
			found = seen->entries[i] + length + 1;
		}
	}
	return found;
}

static void
assert_same(const struct seen *a, const struct seen *b)
{
	assert_int_equal(a->count, b->count);
	for (size_t i = 0; i < a->count; i++)
		assert_string_equal(a->entries[i], b->entries[i]);
}

struct fixture {
	struct loop *loop;
	struct worker worker;
	char path[64];
	char *argv[5];
	char *env[2];
	int listen_fds[1];
	struct worker_exec exec;
};

/* Spawns, waits for the child to exit, and reads what it saw; returns the allocations made by
 * worker_spawn itself. */
static size_t
spawn_and_read(struct fixture *fixture, struct seen *seen)
{
	(void)unlink(fixture->path);
	size_t before = allocations;
	assert_int_equal(worker_spawn(&fixture->worker, fixture->loop, &fixture->exec), 0);
	size_t made = allocations - before;
	pid_t pid = fixture->worker.pid;
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	fixture->worker.pid = 0;
	seen_read(seen, fixture->path, pid);
	return made;
}

static void
test_respawn(void **state)
{
	(void)state;
	/* Before any spawn, as the host's own set-up does: inherited values of keys the host sets
	 * or the config overrides are dropped. */
	assert_int_equal(setenv("AERIE_WORKER", "99", 1), 0);
	assert_int_equal(setenv("SPAWN_TEST_KEY", "inherited", 1), 0);
	assert_int_equal(setenv("SPAWN_TEST_KEPT", "kept", 1), 0);

	static struct fixture fixture;
	assert_int_equal(loop_new(&fixture.loop), 0);
	fixture.worker =
	    (struct worker){.label = "test.3", .index = 3, .generation = 7, .exit_status = -1};
	worker_output_init(&fixture.worker);
	snprintf(fixture.path, sizeof(fixture.path), "/tmp/aerie-test-spawn-%d", (int)getpid());
	/* /proc/$$/environ is what execve gave the shell, before it changes anything. */
	fixture.argv[0] = "/bin/sh";
	fixture.argv[1] = "-c";
	fixture.argv[2] = "cat /proc/$$/environ > \"$0\"";
	fixture.argv[3] = fixture.path;
	fixture.env[0] = "SPAWN_TEST_KEY=from config";
	fixture.listen_fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(fixture.listen_fds[0] >= 0);
	fixture.exec = (struct worker_exec){
	    .argv = fixture.argv,
	    .env = fixture.env,
	    .env_count = 1,
	    .notify_socket = "/run/test/notify",
	    .service_name = "test",
	    .listen_fds = fixture.listen_fds,
	    .listen_count = 1,
	    .listen_names = "test",
	    .watchdog_seconds = 1.5,
	};
	allocations_start();

	static struct seen first, second, third;
	/* The first spawn builds the environment: proof that the count sees allocations. */
	assert_true(spawn_and_read(&fixture, &first) > 0);
	assert_string_equal(seen_get(&first, "AERIE_SERVICE"), "test");
	assert_string_equal(seen_get(&first, "AERIE_WORKER"), "3");
	assert_string_equal(seen_get(&first, "AERIE_GENERATION"), "7");
	assert_string_equal(seen_get(&first, "NOTIFY_SOCKET"), "/run/test/notify");
	assert_string_equal(seen_get(&first, "LISTEN_FDS"), "1");
	assert_string_equal(seen_get(&first, "LISTEN_FDNAMES"), "test");
	assert_string_equal(seen_get(&first, "LISTEN_PID"), ""); /* masked: was the pid */
	assert_string_equal(seen_get(&first, "WATCHDOG_USEC"), "1500000");
	assert_string_equal(seen_get(&first, "WATCHDOG_PID"), "");
	assert_string_equal(seen_get(&first, "SPAWN_TEST_KEY"), "from config");
	assert_string_equal(seen_get(&first, "SPAWN_TEST_KEPT"), "kept");

	/* The same inputs: nothing allocated (the output pipe is a system call), the same
	 * environment but for the pid. */
	assert_int_equal(spawn_and_read(&fixture, &second), 0);
	assert_same(&first, &second);

	/* Equal contents at other addresses (a config loaded again) are the same inputs. */
	char *env_copy[] = {"SPAWN_TEST_KEY=from config", NULL};
	fixture.exec.env = env_copy;
	assert_int_equal(spawn_and_read(&fixture, &second), 0);
	assert_same(&first, &second);

	/* Different inputs: built again, and the child sees them. */
	char *env_changed[] = {"SPAWN_TEST_KEY=changed", NULL};
	fixture.exec.env = env_changed;
	fixture.exec.watchdog_seconds = 0;
	fixture.worker.generation = 8;
	assert_true(spawn_and_read(&fixture, &third) > 0);
	assert_string_equal(seen_get(&third, "AERIE_GENERATION"), "8");
	assert_string_equal(seen_get(&third, "SPAWN_TEST_KEY"), "changed");
	assert_null(seen_get(&third, "WATCHDOG_USEC"));
	assert_null(seen_get(&third, "WATCHDOG_PID"));
	assert_int_equal(third.count, first.count - 2);
	assert_int_equal(spawn_and_read(&fixture, &second), 0);
	assert_same(&third, &second);

	worker_release(&fixture.worker, fixture.loop);
	close(fixture.listen_fds[0]);
	(void)unlink(fixture.path);
	loop_free(fixture.loop);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_respawn),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
