/* signame: signal names ↔ numbers, for config values, protocol requests and log lines. */
#include "lib/signame.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

/* The standard Linux signals, without the SIG prefix, indexed by number. */
static const char *const names[] = {
    [SIGHUP] = "HUP",	[SIGINT] = "INT",	[SIGQUIT] = "QUIT", [SIGILL] = "ILL",
    [SIGTRAP] = "TRAP", [SIGABRT] = "ABRT",	[SIGBUS] = "BUS",   [SIGFPE] = "FPE",
    [SIGKILL] = "KILL", [SIGUSR1] = "USR1",	[SIGSEGV] = "SEGV", [SIGUSR2] = "USR2",
    [SIGPIPE] = "PIPE", [SIGALRM] = "ALRM",	[SIGTERM] = "TERM", [SIGSTKFLT] = "STKFLT",
    [SIGCHLD] = "CHLD", [SIGCONT] = "CONT",	[SIGSTOP] = "STOP", [SIGTSTP] = "TSTP",
    [SIGTTIN] = "TTIN", [SIGTTOU] = "TTOU",	[SIGURG] = "URG",   [SIGXCPU] = "XCPU",
    [SIGXFSZ] = "XFSZ", [SIGVTALRM] = "VTALRM", [SIGPROF] = "PROF", [SIGWINCH] = "WINCH",
    [SIGIO] = "IO",	[SIGPWR] = "PWR",	[SIGSYS] = "SYS",
};

/* Real-time signals are named from the nearer end of the range, as `kill -l` does. SIGRTMIN is
 * a function call in glibc (it reserves the first few for threads), so these are offsets, and
 * the strings are constants rather than formatted into a shared buffer. */
static const char *const rtmin_names[] = {
    "RTMIN",	"RTMIN+1",  "RTMIN+2",	"RTMIN+3",  "RTMIN+4",	"RTMIN+5",
    "RTMIN+6",	"RTMIN+7",  "RTMIN+8",	"RTMIN+9",  "RTMIN+10", "RTMIN+11",
    "RTMIN+12", "RTMIN+13", "RTMIN+14", "RTMIN+15", "RTMIN+16",
};
static const char *const rtmax_names[] = {
    "RTMAX",	"RTMAX-1",  "RTMAX-2",	"RTMAX-3",  "RTMAX-4",	"RTMAX-5",
    "RTMAX-6",	"RTMAX-7",  "RTMAX-8",	"RTMAX-9",  "RTMAX-10", "RTMAX-11",
    "RTMAX-12", "RTMAX-13", "RTMAX-14", "RTMAX-15", "RTMAX-16",
};

#define LENGTH(array) (sizeof(array) / sizeof((array)[0]))

/* Parses a short unsigned decimal ("3", not "+3", "", or "99999999999"); -1 if it is not one. */
static int
parse_small(const char *text)
{
	int value = 0;
	if (*text == '\0')
		return -1;
	for (const char *p = text; *p; p++) {
		if (*p < '0' || *p > '9' || p - text >= 3)
			return -1;
		value = value * 10 + (*p - '0');
	}
	return value;
}

/* Case-insensitive; on a match, *ret_rest points just past the prefix. */
static bool
has_prefix(const char *text, const char *prefix, const char **ret_rest)
{
	size_t length = strlen(prefix);
	if (strncasecmp(text, prefix, length) != 0)
		return false;
	*ret_rest = text + length;
	return true;
}

/* "RTMIN", "RTMIN+n", "RTMAX", "RTMAX-n", with n small enough to stay in the range. */
static int
parse_realtime(const char *text)
{
	const char *rest;
	int offset = 0;
	if (has_prefix(text, "RTMIN", &rest)) {
		if (*rest == '+' && (offset = parse_small(rest + 1)) < 0)
			return -EINVAL;
		if (*rest != '\0' && *rest != '+')
			return -EINVAL;
		return offset <= SIGRTMAX - SIGRTMIN ? SIGRTMIN + offset : -EINVAL;
	}
	if (has_prefix(text, "RTMAX", &rest)) {
		if (*rest == '-' && (offset = parse_small(rest + 1)) < 0)
			return -EINVAL;
		if (*rest != '\0' && *rest != '-')
			return -EINVAL;
		return offset <= SIGRTMAX - SIGRTMIN ? SIGRTMAX - offset : -EINVAL;
	}
	return -EINVAL;
}

int
signame_parse(const char *text)
{
	const char *name = text;
	int number = parse_small(text);
	if (number >= 0)
		return number >= 1 && number < _NSIG ? number : -EINVAL;
	(void)has_prefix(text, "SIG", &name);
	for (size_t i = 1; i < LENGTH(names); i++)
		if (names[i] && strcasecmp(name, names[i]) == 0)
			return (int)i;
	return parse_realtime(name);
}

const char *
signame_name(int signal)
{
	if (signal > 0 && (size_t)signal < LENGTH(names) && names[signal])
		return names[signal];
	if (signal < SIGRTMIN || signal > SIGRTMAX)
		return "?";
	int from_min = signal - SIGRTMIN, from_max = SIGRTMAX - signal;
	if (from_min <= from_max)
		return (size_t)from_min < LENGTH(rtmin_names) ? rtmin_names[from_min] : "?";
	return (size_t)from_max < LENGTH(rtmax_names) ? rtmax_names[from_max] : "?";
}
