/* test_listen_spec: every accepted form of a listen spec, every rejection with its message. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/listen_spec.h"

static void
assert_tcp(const char *text, enum listen_family family, const char *host, unsigned port)
{
	struct listen_spec spec;
	const char *problem = NULL;
	assert_int_equal(listen_spec_parse(text, &spec, &problem), 0);
	assert_null(problem);
	assert_int_equal(spec.family, family);
	assert_string_equal(spec.host, host);
	assert_int_equal(spec.port, port);
	assert_string_equal(spec.path, "");
}

static void
assert_unix(const char *text, const char *path)
{
	struct listen_spec spec;
	const char *problem = NULL;
	assert_int_equal(listen_spec_parse(text, &spec, &problem), 0);
	assert_null(problem);
	assert_int_equal(spec.family, LISTEN_SPEC_UNIX);
	assert_string_equal(spec.host, "");
	assert_int_equal(spec.port, 0);
	assert_string_equal(spec.path, path);
}

/* A rejection leaves the spec as it was and names the problem. */
static void
assert_rejected(const char *text, const char *expected)
{
	struct listen_spec spec, before;
	memset(&spec, 0x5a, sizeof(spec));
	before = spec;
	const char *problem = NULL;
	assert_int_equal(listen_spec_parse(text, &spec, &problem), -EINVAL);
	assert_non_null(problem);
	assert_string_equal(problem, expected);
	assert_memory_equal(&spec, &before, sizeof(spec));
}

static void
test_tcp(void **state)
{
	(void)state;
	assert_tcp("tcp:127.0.0.1:8080", LISTEN_SPEC_TCP, "127.0.0.1", 8080);
	assert_tcp("tcp:localhost:1", LISTEN_SPEC_TCP, "localhost", 1);
	assert_tcp("tcp:0.0.0.0:65535", LISTEN_SPEC_TCP, "0.0.0.0", 65535);
	assert_tcp("tcp:my-host_1.example.org:443", LISTEN_SPEC_TCP, "my-host_1.example.org", 443);
	/* Leading zeros have always been accepted: the number is what counts. */
	assert_tcp("tcp:localhost:080", LISTEN_SPEC_TCP, "localhost", 80);
	assert_tcp("tcp:localhost:0000000000000080", LISTEN_SPEC_TCP, "localhost", 80);
}

static void
test_tcp6(void **state)
{
	(void)state;
	assert_tcp("tcp6:[::1]:8081", LISTEN_SPEC_TCP6, "::1", 8081);
	assert_tcp("tcp6:[::]:80", LISTEN_SPEC_TCP6, "::", 80);
	assert_tcp("tcp6:[2001:db8::17]:65535", LISTEN_SPEC_TCP6, "2001:db8::17", 65535);
	assert_tcp("tcp6:[::ffff:127.0.0.1]:9", LISTEN_SPEC_TCP6, "::ffff:127.0.0.1", 9);
	/* The zone is kept for getaddrinfo, which knows the interfaces. */
	assert_tcp("tcp6:[fe80::1%eth0]:80", LISTEN_SPEC_TCP6, "fe80::1%eth0", 80);
	assert_tcp("tcp6:[fe80::1%2]:80", LISTEN_SPEC_TCP6, "fe80::1%2", 80);
}

static void
test_unix(void **state)
{
	(void)state;
	assert_unix("unix:/run/web.sock", "/run/web.sock");
	assert_unix("unix:web.sock", "web.sock");
	assert_unix("unix:a", "a");
	assert_unix("unix:with:colons and spaces", "with:colons and spaces");
	char text[5 + LISTEN_SPEC_PATH_MAX + 1], path[LISTEN_SPEC_PATH_MAX + 1];
	memset(path, 'p', LISTEN_SPEC_PATH_MAX);
	path[LISTEN_SPEC_PATH_MAX] = '\0';
	snprintf(text, sizeof(text), "unix:%s", path);
	assert_unix(text, path);
}

static void
test_rejected_kind(void **state)
{
	(void)state;
	const char *expected = "expected tcp:HOST:PORT, tcp6:[ADDR]:PORT or unix:PATH";
	assert_rejected("", expected);
	assert_rejected("udp:localhost:53", expected);
	assert_rejected("TCP:localhost:80", expected);
	assert_rejected("localhost:80", expected);
	assert_rejected("tcp", expected);
	assert_rejected("unix", expected);
	assert_rejected(" tcp:localhost:80", expected);
}

static void
test_rejected_tcp(void **state)
{
	(void)state;
	const char *port = "the port must be a number from 1 to 65535";
	assert_rejected("tcp:", "expected tcp:HOST:PORT");
	assert_rejected("tcp:localhost", "expected tcp:HOST:PORT");
	assert_rejected("tcp::80", "the host is empty");
	assert_rejected("tcp:[::1]:80", "for IPv6 use tcp6:[ADDR]:PORT");
	assert_rejected("tcp:::1:80", "for IPv6 use tcp6:[ADDR]:PORT");
	assert_rejected("tcp::", "the host is empty");
	assert_rejected("tcp:a::80", "for IPv6 use tcp6:[ADDR]:PORT");
	assert_rejected("tcp:a/b:80", "the host must be a name or an IPv4 address");
	assert_rejected("tcp:a b:80", "the host must be a name or an IPv4 address");
	assert_rejected("tcp:localhost:", port);
	assert_rejected("tcp:localhost:0", port);
	assert_rejected("tcp:localhost:65536", port);
	assert_rejected("tcp:localhost:99999999999999999999", port);
	assert_rejected("tcp:localhost:-1", port);
	assert_rejected("tcp:localhost:+80", port);
	assert_rejected("tcp:localhost:80 ", port);
	assert_rejected("tcp:localhost:http", port);
}

static void
test_rejected_tcp6(void **state)
{
	(void)state;
	const char *form = "expected tcp6:[ADDR]:PORT";
	assert_rejected("tcp6:", form);
	assert_rejected("tcp6:::1:80", form);
	assert_rejected("tcp6:[::1", form);
	assert_rejected("tcp6:[::1]80", form);
	assert_rejected("tcp6:[::1]", form);
	assert_rejected("tcp6:[zz::1]:80", "not an IPv6 address");
	assert_rejected("tcp6:[127.0.0.1]:80", "not an IPv6 address");
	assert_rejected("tcp6:[]:80", "not an IPv6 address");
	assert_rejected("tcp6:[0000:0000:0000:0000:0000:0000:0000:0000:0000]:80",
			"not an IPv6 address");
	assert_rejected("tcp6:[fe80::1%]:80", "the zone after \"%\" is empty");
	assert_rejected("tcp6:[::1]:80x", "the port must be a number from 1 to 65535");
	assert_rejected("tcp6:[::1]:0", "the port must be a number from 1 to 65535");
	assert_rejected("tcp6:[::1]:", "the port must be a number from 1 to 65535");
}

static void
test_rejected_unix(void **state)
{
	(void)state;
	assert_rejected("unix:", "the socket path is empty");
	char text[5 + LISTEN_SPEC_PATH_MAX + 2];
	memcpy(text, "unix:", 5);
	memset(text + 5, 'p', LISTEN_SPEC_PATH_MAX + 1);
	text[sizeof(text) - 1] = '\0';
	assert_rejected(text, "the socket path is too long for a unix socket (at most 107 bytes)");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tcp),		  cmocka_unit_test(test_tcp6),
	    cmocka_unit_test(test_unix),	  cmocka_unit_test(test_rejected_kind),
	    cmocka_unit_test(test_rejected_tcp),  cmocka_unit_test(test_rejected_tcp6),
	    cmocka_unit_test(test_rejected_unix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
