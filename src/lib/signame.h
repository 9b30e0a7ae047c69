/* signame: signal names ↔ numbers, for config values, protocol requests and log lines. */
#pragma once

/* Accepts "HUP", "SIGHUP", "hup" and "1". Returns the signal number, or -EINVAL for anything
 * that is not a signal (0 is not one). */
int signame_parse(const char *text);
/* "HUP" for SIGHUP; "RTMIN+3" or "RTMAX-2" for real-time signals (no SIG prefix, like the
 * others; signame_parse takes them back); "?" for anything else. */
const char *signame_name(int signal);
