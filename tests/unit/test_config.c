/* test_config: aerie.ini → structs, exact error messages, command splitting. */
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
#include <ini.h>

#include "config/config.h"

/* A scratch directory, the cwd of the tests that write files, so that messages read
 * "aerie.ini:3: ..." exactly as a user would see them. */
static char scratch[] = "/tmp/aerie-test-config-XXXXXX";

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(scratch) ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	(void)chdir("/");
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/aerie.ini", scratch);
	(void)unlink(path);
	snprintf(path, sizeof(path), "%s/aerie.d", scratch);
	(void)rmdir(path);
	return rmdir(scratch);
}

static void
write_bytes(const char *name, const char *content, size_t length)
{
	assert_int_equal(chdir(scratch), 0);
	FILE *file = fopen(name, "we");
	assert_non_null(file);
	assert_int_equal(fwrite(content, 1, length, file), length);
	assert_int_equal(fclose(file), 0);
}

/* Loads content as ./aerie.ini; returns config_load's result and its message in error. */
static int
load_text(const char *content, struct config *config, char *error, size_t size)
{
	write_bytes("aerie.ini", content, strlen(content));
	return config_load("aerie.ini", config, error, size);
}

static void
assert_rejected(const char *content, const char *expected)
{
	struct config config;
	char error[512];
	memset(&config, 0xA5, sizeof(config));
	int r = load_text(content, &config, error, sizeof(error));
	if (r != -EINVAL)
		fail_msg("accepted (%d): %s", r, content);
	if (strcmp(error, expected) != 0)
		fail_msg("for:\n%s\nexpected: %s\n     got: %s", content, expected, error);
	/* ret_config is untouched on failure. */
	for (size_t i = 0; i < sizeof(config); i++)
		assert_int_equal(((unsigned char *)&config)[i], 0xA5);
}

static char *
fixtures_config_directory(void)
{
	const char *fixtures = getenv("FIXTURES");
	assert_non_null(fixtures);
	assert_int_equal(chdir(fixtures), 0);
	assert_int_equal(chdir("config"), 0);
	char *cwd = getcwd(NULL, 0);
	assert_non_null(cwd);
	assert_int_equal(chdir(".."), 0);
	return cwd;
}

static void
assert_path(const char *actual, const char *directory, const char *suffix)
{
	char expected[PATH_MAX];
	snprintf(expected, sizeof(expected), "%s%s", directory, suffix);
	assert_string_equal(actual, expected);
}

static void
assert_argv(char **argv, const char *const *expected)
{
	size_t i = 0;
	for (; expected[i]; i++) {
		assert_non_null(argv[i]);
		assert_string_equal(argv[i], expected[i]);
	}
	assert_null(argv[i]);
}

/* The fixture sets every key; it is loaded by a relative path from another directory, so that
 * relative paths must resolve against the file's directory, not the cwd. */
static void
test_full(void **state)
{
	(void)state;
	char *directory = fixtures_config_directory(); /* and cwd = fixtures */
	struct config config;
	char error[512] = "";
	int saved_max_line = ini_max_line;
	int r = config_load("config/full.ini", &config, error, sizeof(error));
	if (r != 0)
		fail_msg("%s", error);
	assert_int_equal(ini_max_line, saved_max_line); /* inih's globals are restored */

	assert_path(config.path, directory, "/full.ini");
	assert_string_equal(config.directory, directory);
	assert_path(config.supervisor_path, directory, "/run/aerie.ipc");
	assert_int_equal(config.socket_mode, 0660);
	assert_string_equal(config.socket_group, "www-data");
	assert_int_equal(config.service_count, 2);

	struct config_service *web = &config.services[0];
	assert_string_equal(web->name, "web");
	assert_int_equal(web->line, 8);
	assert_argv(web->argv, (const char *const[]){"./worker", "--threads", "2", "two words",
						     "single quoted", "back slash", NULL});
	assert_int_equal(web->count, 4);
	assert_int_equal(web->listen_count, 3);
	assert_argv(web->listen, (const char *const[]){"tcp:127.0.0.1:8080", "tcp6:[::1]:8081",
						       "unix:web.sock", NULL});
	assert_int_equal(web->ready, CONFIG_READY_NOTIFY);
	assert_true(web->ready_timeout == 12.5);
	assert_int_equal(web->restart, CONFIG_RESTART_ON_FAILURE);
	assert_true(web->restart_delay == 0.25);
	assert_true(web->restart_delay_max == 60.0);
	assert_int_equal(web->stop_signal, SIGINT);
	assert_true(web->stop_timeout == 3.0);
	assert_path(web->directory, directory, "/../app"); /* lexical: ".." is kept */
	assert_int_equal(web->env_count, 3);
	assert_argv(web->env,
		    (const char *const[]){"LANG=C.UTF-8", "EMPTY=", "WITH_EQUALS=a=b", NULL});

	struct config_service *cron = &config.services[1];
	assert_string_equal(cron->name, "cron-job_2");
	assert_int_equal(cron->line, 26);
	assert_argv(cron->argv, (const char *const[]){"/bin/true", NULL});
	assert_int_equal(cron->count, CONFIG_DEFAULT_COUNT);
	assert_int_equal(cron->listen_count, 0);
	assert_int_equal(cron->ready, CONFIG_READY_NONE);
	assert_true(cron->ready_timeout == CONFIG_DEFAULT_READY_TIMEOUT);
	assert_int_equal(cron->restart, CONFIG_RESTART_ALWAYS);
	assert_true(cron->restart_delay == CONFIG_DEFAULT_RESTART_DELAY);
	assert_true(cron->restart_delay_max == CONFIG_DEFAULT_RESTART_DELAY_MAX);
	assert_int_equal(cron->stop_signal, SIGTERM);
	assert_true(cron->stop_timeout == CONFIG_DEFAULT_STOP_TIMEOUT);
	assert_string_equal(cron->directory, directory);
	assert_int_equal(cron->env_count, 0);

	config_free(&config);
	assert_null(config.services);
	config_free(&config); /* twice is harmless */
	free(directory);
}

/* No [host]: defaults; an absolute path with "." and "//" comes out clean; "directory = ." is
 * the file's directory; an absolute directory stays as written. */
static void
test_defaults_and_paths(void **state)
{
	(void)state;
	static const char text[] = "[service:a]\ncommand = a\ndirectory = .\n"
				   "[service:b]\ncommand = b\ndirectory = /srv//b/./\n"
				   "[service:c]\ncommand = c\ndirectory = sub/./dir/\n";
	struct config config;
	char error[512] = "", path[PATH_MAX];
	write_bytes("aerie.ini", text, strlen(text));
	snprintf(path, sizeof(path), "/tmp//%s/./aerie.ini", scratch + strlen("/tmp/"));
	int r = config_load(path, &config, error, sizeof(error));
	if (r != 0)
		fail_msg("%s", error);
	assert_path(config.path, scratch, "/aerie.ini");
	assert_string_equal(config.directory, scratch);
	assert_path(config.supervisor_path, scratch, "/" CONFIG_DEFAULT_SUPERVISOR);
	assert_int_equal(config.socket_mode, CONFIG_DEFAULT_SOCKET_MODE);
	assert_null(config.socket_group);
	assert_int_equal(config.service_count, 3);
	assert_string_equal(config.services[0].directory, scratch);
	assert_string_equal(config.services[1].directory, "/srv/b");
	assert_path(config.services[2].directory, scratch, "/sub/dir");
	config_free(&config);
}

/* A UTF-8 byte order mark, CRLF line ends, ":" as separator, a line of exactly the maximum
 * length, a service name longer than inih's 49-byte section buffer. */
static void
test_edges_accepted(void **state)
{
	(void)state;
	static const char name[] = "a-very-long-service-name-that-inih-would-truncate-0123456789";
	size_t size = CONFIG_MAX_LINE + 256;
	char *text = malloc(size), error[512] = "";
	assert_non_null(text);
	int n = snprintf(text, size, "\xEF\xBB\xBF[service:%s]\r\ncommand: x\r\n", name);
	int line_start = n;
	n += snprintf(text + n, size - (size_t)n, "env = A=");
	while (n - line_start < CONFIG_MAX_LINE)
		text[n++] = 'v';
	text[n] = '\0';
	struct config config;
	int r = load_text(text, &config, error, sizeof(error));
	if (r != 0)
		fail_msg("%s", error);
	assert_string_equal(config.services[0].name, name);
	assert_int_equal(strlen(config.services[0].env[0]), CONFIG_MAX_LINE - strlen("env = "));
	config_free(&config);

	/* One more character is an error, where fgets would have split the line in two. */
	strcat(text, "v");
	assert_rejected(text, "aerie.ini:3: line is longer than 4096 characters");
	free(text);

	/* A ";" without white space before it is not a comment. */
	r = load_text("[service:web]\ncommand = sh -c 'a;b' ; comment\n", &config, error,
		      sizeof(error));
	if (r != 0)
		fail_msg("%s", error);
	assert_argv(config.services[0].argv, (const char *const[]){"sh", "-c", "a;b", NULL});
	config_free(&config);
}

struct bad {
	const char *text;
	const char *message;
};

#define SERVICE "[service:web]\ncommand = ./w\n"

static const struct bad bad_configs[] = {
    /* Keys. */
    {SERVICE "restat = always\n",
     "aerie.ini:3: unknown key \"restat\" in [service:web] (did you mean \"restart\"?)"},
    {SERVICE "Count = 2\n",
     "aerie.ini:3: unknown key \"Count\" in [service:web] (did you mean \"count\"?)"},
    {SERVICE "stop_sginal = INT\n",
     "aerie.ini:3: unknown key \"stop_sginal\" in [service:web] (did you mean \"stop_signal\"?)"},
    {SERVICE "frobnicate = 1\n", "aerie.ini:3: unknown key \"frobnicate\" in [service:web]"},
    {"[host]\ncommand = ./w\n" SERVICE,
     "aerie.ini:2: unknown key \"command\" in [host] (it belongs in a [service:NAME] section)"},
    {SERVICE "supervisor = x.ipc\n",
     "aerie.ini:3: unknown key \"supervisor\" in [service:web] (it belongs in [host])"},
    {SERVICE "= 3\n", "aerie.ini:3: missing key before \"=\" in [service:web]"},
    {SERVICE "count = 2\n\ncount = 3\n",
     "aerie.ini:5: duplicate key \"count\" in [service:web] (first at line 3)"},
    {SERVICE "command = ./x\n",
     "aerie.ini:3: duplicate key \"command\" in [service:web] (first at line 2)"},
    {"count = 1\n" SERVICE, "aerie.ini:1: key \"count\" is outside any section (put it under "
			    "[host] or [service:NAME])"},

    /* Sections. */
    {"[services:web]\ncommand = x\n",
     "aerie.ini:1: unknown section [services:web] (did you mean [service:web]?)"},
    {"[web]\ncommand = x\n", "aerie.ini:1: unknown section [web] (did you mean [service:web]?)"},
    {"[hots]\n" SERVICE, "aerie.ini:1: unknown section [hots] (did you mean [host]?)"},
    {"[the host]\n" SERVICE,
     "aerie.ini:1: unknown section [the host] (expected [host] or [service:NAME])"},
    {"[]\n" SERVICE, "aerie.ini:1: unknown section [] (expected [host] or [service:NAME])"},
    {"[service:we.b]\ncommand = x\n",
     "aerie.ini:1: invalid service name \"we.b\" (use letters, digits, _ and -)"},
    {"[service:]\ncommand = x\n",
     "aerie.ini:1: missing service name in [service:] (expected [service:NAME])"},
    {"[service:"
     "a23456789b23456789c23456789d23456789e23456789f23456789g23456789h2345]\ncommand = x\n",
     "aerie.ini:1: service name "
     "\"a23456789b23456789c23456789d23456789e23456789f23456789g23456789h2345\" is longer "
     "than 64 characters"},
    {SERVICE "[service:db]\ncommand = x\n[service:web]\ncommand = y\n",
     "aerie.ini:5: duplicate section [service:web] (first at line 1)"},
    {"[host]\n" SERVICE "[host]\n", "aerie.ini:4: duplicate section [host] (first at line 1)"},
    {"[service:web\ncommand = x\n", "aerie.ini:1: missing \"]\" at the end of the section header"},
    {"[service:web ; comment]\ncommand = x\n",
     "aerie.ini:1: missing \"]\" at the end of the section header"},
    {"[service:web] extra\ncommand = x\n",
     "aerie.ini:1: unexpected text after \"]\" in the section header"},
    {"[service:web]\ncount = 2\n[service:db]\ncommand = x\n",
     "aerie.ini:1: missing command in [service:web]"},
    {"[host]\n\n[service:db]\ncommand = x\n[service:web]\ncount = 2\n",
     "aerie.ini:5: missing command in [service:web]"},
    {"[host]\nsupervisor = x.ipc\n",
     "aerie.ini: no [service:NAME] section (at least one is needed)"},
    {"", "aerie.ini: no [service:NAME] section (at least one is needed)"},

    /* Lines inih itself rejects. */
    {SERVICE "junk\n",
     "aerie.ini:3: expected \"KEY = VALUE\", \"[SECTION]\" or a comment, not \"junk\""},
    {SERVICE "  --flag\n", "aerie.ini:3: expected \"KEY = VALUE\", \"[SECTION]\" or a comment, "
			   "not \"--flag\" (values do not continue on indented lines)"},

    /* Numbers. */
    {SERVICE "count = 0\n", "aerie.ini:3: invalid count \"0\" in [service:web] (expected a "
			    "whole number from 1 to 10000)"},
    {SERVICE "count = 10001\n", "aerie.ini:3: invalid count \"10001\" in [service:web] "
				"(expected a whole number from 1 to 10000)"},
    {SERVICE "count = -1\n", "aerie.ini:3: invalid count \"-1\" in [service:web] (expected a "
			     "whole number from 1 to 10000)"},
    {SERVICE "count = 2x\n", "aerie.ini:3: invalid count \"2x\" in [service:web] (expected a "
			     "whole number from 1 to 10000)"},
    {SERVICE "count =\n", "aerie.ini:3: invalid count \"\" in [service:web] (expected a whole "
			  "number from 1 to 10000)"},
    {SERVICE "count = 99999999999999999999999\n",
     "aerie.ini:3: invalid count \"99999999999999999999999\" in [service:web] (expected a "
     "whole number from 1 to 10000)"},
    {SERVICE "ready_timeout = 0\n", "aerie.ini:3: invalid ready_timeout \"0\" in [service:web] "
				    "(expected seconds, more than 0 and at most 31536000)"},
    {SERVICE "ready_timeout = nan\n",
     "aerie.ini:3: invalid ready_timeout \"nan\" in [service:web] (expected seconds, more than "
     "0 and at most 31536000)"},
    {SERVICE "stop_timeout = inf\n", "aerie.ini:3: invalid stop_timeout \"inf\" in "
				     "[service:web] (expected seconds from 0 to 31536000)"},
    {SERVICE "stop_timeout = -1\n", "aerie.ini:3: invalid stop_timeout \"-1\" in [service:web] "
				    "(expected seconds from 0 to 31536000)"},
    {SERVICE "restart_delay = 1e3\n", "aerie.ini:3: invalid restart_delay \"1e3\" in "
				      "[service:web] (expected seconds from 0 to 31536000)"},
    {SERVICE "restart_delay = 0x10\n", "aerie.ini:3: invalid restart_delay \"0x10\" in "
				       "[service:web] (expected seconds from 0 to 31536000)"},
    {SERVICE "restart_delay = 1.5s\n", "aerie.ini:3: invalid restart_delay \"1.5s\" in "
				       "[service:web] (expected seconds from 0 to 31536000)"},
    {SERVICE "restart_delay = 1.2.3\n", "aerie.ini:3: invalid restart_delay \"1.2.3\" in "
					"[service:web] (expected seconds from 0 to 31536000)"},
    {SERVICE "restart_delay = .\n", "aerie.ini:3: invalid restart_delay \".\" in "
				    "[service:web] (expected seconds from 0 to 31536000)"},
    {SERVICE "restart_delay_max = 31536001\n",
     "aerie.ini:3: invalid restart_delay_max \"31536001\" in [service:web] (expected seconds "
     "from 0 to 31536000)"},
    {SERVICE "restart_delay = 10\nrestart_delay_max = 5\n",
     "aerie.ini:4: restart_delay_max (5) is less than restart_delay (10) in [service:web]"},
    {SERVICE "restart_delay = 60\n[service:db]\ncommand = x\n",
     "aerie.ini:3: restart_delay_max (30, the default) is less than restart_delay (60) in "
     "[service:web]"},
    {"[host]\nsocket_mode = 0999\n" SERVICE, "aerie.ini:2: invalid socket_mode \"0999\" in "
					     "[host] (expected an octal mode such as 0660)"},
    {"[host]\nsocket_mode = 17777\n" SERVICE, "aerie.ini:2: invalid socket_mode \"17777\" in "
					      "[host] (expected an octal mode such as 0660)"},

    /* Enumerations, signals, env. */
    {SERVICE "restart = sometimes\n", "aerie.ini:3: invalid restart \"sometimes\" in "
				      "[service:web] (expected always, on-failure or never)"},
    {SERVICE "ready = yes\n",
     "aerie.ini:3: invalid ready \"yes\" in [service:web] (expected notify or none)"},
    {SERVICE "stop_signal = SIGFOO\n",
     "aerie.ini:3: invalid stop_signal \"SIGFOO\" in [service:web] (expected a signal name "
     "such as TERM or INT, or its number)"},
    {SERVICE "stop_signal = 0\n", "aerie.ini:3: invalid stop_signal \"0\" in [service:web] "
				  "(expected a signal name such as TERM or INT, or its number)"},
    {SERVICE "env = 1A=x\n",
     "aerie.ini:3: invalid env \"1A=x\" in [service:web] (expected KEY=VALUE, KEY made of "
     "letters, digits and _, not starting with a digit)"},
    {SERVICE "env = NOVALUE\n",
     "aerie.ini:3: invalid env \"NOVALUE\" in [service:web] (expected KEY=VALUE, KEY made of "
     "letters, digits and _, not starting with a digit)"},
    {SERVICE "env = A B=c\n",
     "aerie.ini:3: invalid env \"A B=c\" in [service:web] (expected KEY=VALUE, KEY made of "
     "letters, digits and _, not starting with a digit)"},
    {SERVICE "env = A=1\nenv = AB=2\nenv = A=3\n",
     "aerie.ini:5: duplicate env key \"A\" in [service:web]"},

    /* Listen. */
    {SERVICE "listen = tcp:localhost\n", "aerie.ini:3: invalid listen \"tcp:localhost\" in "
					 "[service:web] (expected tcp:HOST:PORT)"},
    {SERVICE "listen = tcp:localhost:0\n",
     "aerie.ini:3: invalid listen \"tcp:localhost:0\" in [service:web] (the port must be a "
     "number from 1 to 65535)"},
    {SERVICE "listen = tcp:localhost:65536\n",
     "aerie.ini:3: invalid listen \"tcp:localhost:65536\" in [service:web] (the port must be a "
     "number from 1 to 65535)"},
    {SERVICE "listen = tcp::80\n",
     "aerie.ini:3: invalid listen \"tcp::80\" in [service:web] (the host is empty)"},
    {SERVICE "listen = tcp:[::1]:80\n",
     "aerie.ini:3: invalid listen \"tcp:[::1]:80\" in [service:web] (for IPv6 use "
     "tcp6:[ADDR]:PORT)"},
    {SERVICE "listen = tcp:a/b:80\n", "aerie.ini:3: invalid listen \"tcp:a/b:80\" in "
				      "[service:web] (the host must be a name or an IPv4 "
				      "address)"},
    {SERVICE "listen = tcp6:::1:80\n", "aerie.ini:3: invalid listen \"tcp6:::1:80\" in "
				       "[service:web] (expected tcp6:[ADDR]:PORT)"},
    {SERVICE "listen = tcp6:[zz::1]:80\n", "aerie.ini:3: invalid listen \"tcp6:[zz::1]:80\" "
					   "in [service:web] (not an IPv6 address)"},
    {SERVICE "listen = tcp6:[::1]:80x\n",
     "aerie.ini:3: invalid listen \"tcp6:[::1]:80x\" in [service:web] (the port must be a "
     "number from 1 to 65535)"},
    {SERVICE "listen = unix:\n",
     "aerie.ini:3: invalid listen \"unix:\" in [service:web] (the socket path is empty)"},
    {SERVICE "listen = udp:localhost:53\n",
     "aerie.ini:3: invalid listen \"udp:localhost:53\" in [service:web] (expected "
     "tcp:HOST:PORT, tcp6:[ADDR]:PORT or unix:PATH)"},
    {SERVICE "listen = tcp:localhost:80\nlisten = tcp:localhost:80\n",
     "aerie.ini:4: duplicate listen \"tcp:localhost:80\" in [service:web]"},

    /* Commands and paths. */
    {"[service:web]\ncommand = sh -c 'echo\n", "aerie.ini:2: invalid command \"sh -c 'echo\" "
					       "in [service:web] (unterminated quote)"},
    {"[service:web]\ncommand = sh -c 'a ; b'\n",
     "aerie.ini:2: invalid command \"sh -c 'a\" in [service:web] (unterminated quote; \" ;\" "
     "starts a comment, even in quotes)"},
    {"[service:web]\ncommand =\n",
     "aerie.ini:2: invalid command \"\" in [service:web] (empty command)"},
    {"[service:web]\ncommand = ./w \\\n",
     "aerie.ini:2: invalid command \"./w \\\" in [service:web] (trailing backslash)"},
    {SERVICE "directory =\n",
     "aerie.ini:3: invalid directory \"\" in [service:web] (expected a path)"},
    {"[host]\nsocket_group =\n" SERVICE, "aerie.ini:2: invalid socket_group \"\" in [host] "
					 "(expected a group name or number)"},
    {"[host]\nsupervisor = /run/"
     "a23456789b23456789c23456789d23456789e23456789f23456789g23456789h23456789i23456789j23456789"
     "k23456789/x.ipc\n" SERVICE,
     "aerie.ini:2: supervisor path \"/run/"
     "a23456789b23456789c23456789d23456789e23456789f23456789g23456789h23456789i23456789j23456789"
     "k23456789/x.ipc\" is too long for a unix socket (110 bytes, at most 107)"},
};

static void
test_bad_configs(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_configs) / sizeof(bad_configs[0]); i++)
		assert_rejected(bad_configs[i].text, bad_configs[i].message);
}

static void
test_nul_byte(void **state)
{
	(void)state;
	static const char text[] = "[service:web]\ncommand = a\0b\n";
	struct config config;
	char error[512];
	write_bytes("aerie.ini", text, sizeof(text) - 1);
	assert_int_equal(config_load("aerie.ini", &config, error, sizeof(error)), -EINVAL);
	assert_string_equal(error, "aerie.ini:2: the line contains a NUL byte");
}

static void
test_unreadable(void **state)
{
	(void)state;
	struct config config;
	char error[512];
	assert_int_equal(chdir(scratch), 0);
	assert_int_equal(config_load("missing.ini", &config, error, sizeof(error)), -ENOENT);
	assert_string_equal(error, "missing.ini: No such file or directory");
	assert_int_equal(mkdir("aerie.d", 0700), 0);
	assert_int_equal(config_load("aerie.d", &config, error, sizeof(error)), -EISDIR);
	assert_string_equal(error, "aerie.d: Is a directory");
	/* No buffer for the message is allowed, and a short one is truncated. */
	assert_int_equal(config_load("missing.ini", &config, NULL, 0), -ENOENT);
	char tiny[8];
	assert_int_equal(config_load("missing.ini", &config, tiny, sizeof(tiny)), -ENOENT);
	assert_string_equal(tiny, "missing");
}

/* Command splitting -------------------------------------------------------------------------- */

static void
assert_split(const char *text, const char *const *expected)
{
	char **argv = NULL;
	const char *problem = NULL;
	int r = config_split_command(text, &argv, &problem);
	if (r != 0)
		fail_msg("%s: %s", text, problem);
	assert_argv(argv, expected);
	config_free_argv(argv);
}

static void
assert_split_error(const char *text, const char *expected)
{
	char **argv = (char **)0x1;
	const char *problem = NULL;
	assert_int_equal(config_split_command(text, &argv, &problem), -EINVAL);
	assert_ptr_equal(argv, (char **)0x1);
	assert_string_equal(problem, expected);
}

#define WORDS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void
test_split(void **state)
{
	(void)state;
	assert_split("./worker --threads 2", WORDS("./worker", "--threads", "2"));
	assert_split("  a \t b\tc  ", WORDS("a", "b", "c"));
	assert_split("a'b c'd", WORDS("ab cd"));
	assert_split("\"a\"'b'c", WORDS("abc"));
	assert_split("prog '' x \"\"", WORDS("prog", "", "x", ""));
	assert_split("echo 'it''s' 'don'\\''t'", WORDS("echo", "its", "don't"));
	assert_split("a\\ b \\'q\\' \\\\", WORDS("a b", "'q'", "\\"));
	assert_split("\"\\\" \\\\ \\$ \\` \\n \\a\"", WORDS("\" \\ $ ` \\n \\a"));
	assert_split("'single \\ \" $x'", WORDS("single \\ \" $x"));
	/* No expansion, globbing, operators or comments. */
	assert_split(
	    "echo $HOME *.c ~ a|b > out # not a comment",
	    WORDS("echo", "$HOME", "*.c", "~", "a|b", ">", "out", "#", "not", "a", "comment"));
	assert_split("x\\\ty", WORDS("x\ty"));

	assert_split_error("sh -c 'echo", "unterminated quote");
	assert_split_error("\"abc", "unterminated quote");
	assert_split_error("\"abc\\\"", "unterminated quote");
	assert_split_error("a 'b'c'", "unterminated quote");
	assert_split_error("./w \\", "trailing backslash");
	assert_split_error("", "empty command");
	assert_split_error(" \t ", "empty command");
	assert_split_error("''", "empty program name");
	assert_split_error("\"\" x", "empty program name");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full),	   cmocka_unit_test(test_defaults_and_paths),
	    cmocka_unit_test(test_edges_accepted), cmocka_unit_test(test_bad_configs),
	    cmocka_unit_test(test_nul_byte),	   cmocka_unit_test(test_unreadable),
	    cmocka_unit_test(test_split),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
