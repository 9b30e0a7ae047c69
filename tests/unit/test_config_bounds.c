/* test_config_bounds: what config_load reads: a regular file, within its byte, line and count
 * bounds. */
#include <errno.h>
#include <limits.h>
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

#include "config/config.h"
#include "lib/limits.h"

/* The tests' cwd, so that messages read "aerie.ini: ..." as a user would see them. */
static char scratch[] = "/tmp/aerie-test-config-bounds-XXXXXX";

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(scratch) && chdir(scratch) == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	(void)unlink("aerie.ini");
	(void)unlink("fifo.ini");
	(void)chdir("/");
	return rmdir(scratch);
}

/* Writes text as ./aerie.ini and loads it: config_load's result, its message in error. */
static int
load(const char *text, struct config *config, char error[static 512])
{
	FILE *file = fopen("aerie.ini", "we");
	assert_non_null(file);
	assert_true(fputs(text, file) >= 0);
	assert_int_equal(fclose(file), 0);
	return config_load("aerie.ini", config, error, 512);
}

static void
assert_loads(const char *text, struct config *config)
{
	char error[512];
	if (load(text, config, error) != 0)
		fail_msg("%s", error);
}

/* Refused with code and message, ret_config untouched. */
static void
assert_refused(const char *text, int code, const char *message)
{
	struct config config;
	char error[512];
	memset(&config, 0xA5, sizeof(config));
	assert_int_equal(load(text, &config, error), code);
	assert_string_equal(error, message);
	for (size_t i = 0; i < sizeof(config); i++)
		assert_int_equal(((unsigned char *)&config)[i], 0xA5);
}

/* A valid config of exactly size bytes: a service, then comment lines. */
static char *
padded_config(size_t size)
{
	static const char head[] = "[service:web]\ncommand = x\n";
	char *text = malloc(size + 1);
	assert_non_null(text);
	memcpy(text, head, strlen(head));
	for (size_t at = strlen(head); at < size;) {
		size_t line = size - at > 100 ? 100 : size - at;
		memset(text + at, '#', line - 1);
		text[at + line - 1] = '\n';
		at += line;
	}
	text[size] = '\0';
	return text;
}

static void
test_file_size(void **state)
{
	(void)state;
	struct config config;
	char *text = padded_config(CONFIG_MAX_FILE);
	assert_loads(text, &config);
	config_free(&config);
	free(text);
	/* One byte more, or a hundred times more: the same message. */
	static const size_t sizes[] = {CONFIG_MAX_FILE + 1, 100 * CONFIG_MAX_FILE};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		text = padded_config(sizes[i]);
		assert_refused(text, -EFBIG, "aerie.ini: file is larger than 1048576 bytes");
		free(text);
	}
}

/* A line far longer than the bound fails at its line, as one a character over does. */
static void
test_long_line(void **state)
{
	(void)state;
	size_t size = 10 * 1024 * 1024;
	char *text = malloc(size + 1);
	assert_non_null(text);
	int n = snprintf(text, size, "[service:web]\ncommand = x\nenv = A=");
	memset(text + n, 'v', size - (size_t)n);
	text[size] = '\0';
	assert_refused(text, -EINVAL, "aerie.ini:3: line is longer than 4096 characters");
	free(text);
}

static void
test_not_a_regular_file(void **state)
{
	(void)state;
	struct config config;
	char error[512];
	/* A FIFO without a writer would block open() itself, and a reload with it. */
	assert_int_equal(mkfifo("fifo.ini", 0600), 0);
	assert_int_equal(config_load("fifo.ini", &config, error, sizeof(error)), -EBADFD);
	assert_string_equal(error, "fifo.ini: not a regular file (a FIFO)");
	/* /dev/zero would never end; /dev/null would be an empty config. */
	assert_int_equal(config_load("/dev/zero", &config, error, sizeof(error)), -EBADFD);
	assert_string_equal(error, "/dev/zero: not a regular file (a character device)");
	assert_int_equal(config_load("/dev/null", &config, error, sizeof(error)), -EBADFD);
	assert_string_equal(error, "/dev/null: not a regular file (a character device)");
}

/* Appends "FORMAT\n" with %d = i for i in [0, count) to text, which has room. */
static size_t
append_lines(char *text, size_t at, const char *format, int count)
{
	for (int i = 0; i < count; i++)
		at += (size_t)sprintf(text + at, format, i);
	return at;
}

/* What is checked against every earlier entry is bounded in number, so that a file of
 * CONFIG_MAX_FILE bytes is checked in milliseconds. */
static void
test_counts(void **state)
{
	(void)state;
	struct config config;
	char *text = malloc(CONFIG_MAX_FILE);
	assert_non_null(text);

	size_t at = append_lines(text, 0, "[service:s%d]\ncommand = x\n", CONFIG_MAX_SERVICES);
	assert_loads(text, &config);
	assert_int_equal(config.service_count, CONFIG_MAX_SERVICES);
	config_free(&config);
	strcpy(text + at, "[service:one-more]\ncommand = x\n");
	assert_refused(text, -EINVAL, "aerie.ini:2001: more than 1000 [service:NAME] sections");

	at = append_lines(text, 0, "[service:web]\ncommand = x\n", 1);
	at = append_lines(text, at, "env = A%d=1\n", CONFIG_MAX_ENV);
	assert_loads(text, &config);
	assert_int_equal(config.services[0].env_count, CONFIG_MAX_ENV);
	config_free(&config);
	strcpy(text + at, "env = B=1\n");
	assert_refused(text, -EINVAL, "aerie.ini:1003: more than 1000 env in [service:web]");

	at = append_lines(text, 0, "[service:web]\ncommand = x\n", 1);
	at = append_lines(text, at, "listen = unix:/run/aerie-test/%d\n", CONFIG_MAX_LISTEN);
	assert_loads(text, &config);
	assert_int_equal(config.services[0].listen_count, CONFIG_MAX_LISTEN);
	config_free(&config);
	strcpy(text + at, "listen = tcp:127.0.0.1:80\n");
	assert_refused(text, -EINVAL, "aerie.ini:259: more than 256 listen in [service:web]");
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_file_size),
	    cmocka_unit_test(test_long_line),
	    cmocka_unit_test(test_not_a_regular_file),
	    cmocka_unit_test(test_counts),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
