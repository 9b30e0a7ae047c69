/* test_signame: signal names ↔ numbers, round trips and rejections. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/signame.h"

static void
test_standard_names(void **state)
{
	(void)state;
	assert_int_equal(signame_parse("HUP"), SIGHUP);
	assert_int_equal(signame_parse("SIGHUP"), SIGHUP);
	assert_int_equal(signame_parse("hup"), SIGHUP);
	assert_int_equal(signame_parse("sigHup"), SIGHUP);
	assert_int_equal(signame_parse("1"), SIGHUP);
	assert_int_equal(signame_parse("TERM"), SIGTERM);
	assert_int_equal(signame_parse("STKFLT"), SIGSTKFLT);
	assert_int_equal(signame_parse("PWR"), SIGPWR);
	assert_int_equal(signame_parse("io"), SIGIO);
	assert_int_equal(signame_parse("SYS"), SIGSYS);
	assert_int_equal(signame_parse("64"), 64);
	assert_string_equal(signame_name(SIGHUP), "HUP");
	assert_string_equal(signame_name(SIGCHLD), "CHLD");
	assert_string_equal(signame_name(SIGVTALRM), "VTALRM");
}

/* Every standard signal and every real-time one comes back as itself, by name and number. */
static void
test_round_trips(void **state)
{
	(void)state;
	static const int standard[] = {
	    SIGHUP,  SIGINT,	SIGQUIT, SIGILL,   SIGTRAP, SIGABRT, SIGBUS,  SIGFPE,
	    SIGKILL, SIGUSR1,	SIGSEGV, SIGUSR2,  SIGPIPE, SIGALRM, SIGTERM, SIGSTKFLT,
	    SIGCHLD, SIGCONT,	SIGSTOP, SIGTSTP,  SIGTTIN, SIGTTOU, SIGURG,  SIGXCPU,
	    SIGXFSZ, SIGVTALRM, SIGPROF, SIGWINCH, SIGIO,   SIGPWR,  SIGSYS,
	};
	for (size_t i = 0; i < sizeof(standard) / sizeof(standard[0]); i++) {
		const char *name = signame_name(standard[i]);
		char prefixed[32], number[16];
		assert_string_not_equal(name, "?");
		assert_int_equal(signame_parse(name), standard[i]);
		snprintf(prefixed, sizeof(prefixed), "sig%s", name);
		assert_int_equal(signame_parse(prefixed), standard[i]);
		snprintf(number, sizeof(number), "%d", standard[i]);
		assert_int_equal(signame_parse(number), standard[i]);
	}
	for (int signal = SIGRTMIN; signal <= SIGRTMAX; signal++) {
		const char *name = signame_name(signal);
		assert_true(strncmp(name, "RTM", 3) == 0);
		assert_int_equal(signame_parse(name), signal);
	}
}

static void
test_realtime(void **state)
{
	(void)state;
	assert_int_equal(signame_parse("RTMIN"), SIGRTMIN);
	assert_int_equal(signame_parse("SIGRTMIN+3"), SIGRTMIN + 3);
	assert_int_equal(signame_parse("rtmax-2"), SIGRTMAX - 2);
	assert_int_equal(signame_parse("RTMAX"), SIGRTMAX);
	assert_string_equal(signame_name(SIGRTMIN), "RTMIN");
	assert_string_equal(signame_name(SIGRTMIN + 3), "RTMIN+3");
	assert_string_equal(signame_name(SIGRTMAX - 2), "RTMAX-2");
	assert_string_equal(signame_name(SIGRTMAX), "RTMAX");
	assert_int_equal(signame_parse("RTMIN-1"), -EINVAL);
	assert_int_equal(signame_parse("RTMAX+1"), -EINVAL);
	assert_int_equal(signame_parse("RTMIN+"), -EINVAL);
	assert_int_equal(signame_parse("RTMIN++1"), -EINVAL);
	char beyond[32];
	snprintf(beyond, sizeof(beyond), "RTMIN+%d", SIGRTMAX - SIGRTMIN + 1);
	assert_int_equal(signame_parse(beyond), -EINVAL);
	snprintf(beyond, sizeof(beyond), "RTMAX-%d", SIGRTMAX - SIGRTMIN + 1);
	assert_int_equal(signame_parse(beyond), -EINVAL);
}

static void
test_rejections(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "0",	 "65",	       "SIGFOO", "",	 "HUP1",
	    "SIG",	 "SIG1",       "-1",	 "+1",	 " 1",
	    "HUP ",	 " HUP",       "1a",	 "1000", "99999999999999999999",
	    "SIGSIGHUP", "SIGRTMIN+x", "RT",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (signame_parse(bad[i]) != -EINVAL)
			fail_msg("\"%s\" parsed as %d", bad[i], signame_parse(bad[i]));
	}
	assert_string_equal(signame_name(0), "?");
	assert_string_equal(signame_name(-1), "?");
	assert_string_equal(signame_name(_NSIG), "?");
	assert_string_equal(signame_name(32), "?"); /* glibc's own, below SIGRTMIN */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_standard_names),
	    cmocka_unit_test(test_round_trips),
	    cmocka_unit_test(test_realtime),
	    cmocka_unit_test(test_rejections),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
