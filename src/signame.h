/* signame: signal names ↔ numbers, for config values, protocol requests and log lines. */
#pragma once

/* Accepts "HUP", "SIGHUP", "hup" and "1". Returns the signal number, or -EINVAL for anything
 * that is not a signal (0 is not one). */
int signame_parse(const char *text);
/* "HUP" for SIGHUP; "SIGRTMIN+3"-style for real-time signals; "?" for anything else. */
const char *signame_name(int signal);
