/* notify: the sd_notify-compatible readiness socket that every worker gets as NOTIFY_SOCKET. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

struct notify;

/* One message from a worker, split into the fields the host uses. Strings point into a buffer
 * that lives until the callback returns. */
struct notify_message {
	pid_t pid; /* sender, as the kernel vouches (SCM_CREDENTIALS) */
	bool ready;
	bool stopping;
	bool reloading;
	bool watchdog;	    /* WATCHDOG=1: alive, for health_timeout */
	const char *status; /* NULL when the message has no STATUS= */
};

typedef void (*notify_fn)(const struct notify_message *message, void *data);

struct loop;
/* Binds a datagram socket to a kernel-chosen abstract address and watches it. */
int notify_open(struct loop *loop, notify_fn fn, void *data, struct notify **ret_notify);
void notify_close(struct notify *notify);
/* The value for NOTIFY_SOCKET, e.g. "@0003f". */
const char *notify_address(const struct notify *notify);

/* Pure: parses a datagram's "KEY=VALUE\n" lines into message (pid untouched). text is modified
 * (NUL-terminated in place). */
void notify_parse(char *text, struct notify_message *message);
