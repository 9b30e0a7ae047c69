/* proc_parse: the /proc text of one process (stat, smaps_rollup, statm, children, cmdline) into
 * plain structs. Pure: no file access, no allocation but the command string, so that each is
 * tested on recorded samples and fuzzed. */
#include "metrics/proc_parse.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
skip_spaces(const char *p)
{
	while (*p == ' ')
		p++;
	return p;
}

/* Reads one unsigned decimal field; fails on anything else so that a garbled line is caught. */
static int
next_u64(const char **p, uint64_t *ret_value)
{
	const char *s = skip_spaces(*p);
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	uint64_t value = 0;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned digit = (unsigned)(*s - '0');
		if (value > (UINT64_MAX - digit) / 10)
			return -EINVAL;
		value = value * 10 + digit;
	}
	*p = s;
	*ret_value = value;
	return 0;
}

/* Skips one field that may be signed (priority, nice). */
static int
skip_field(const char **p)
{
	const char *s = skip_spaces(*p);
	if (*s == '-')
		s++;
	uint64_t ignored;
	if (next_u64(&s, &ignored) < 0)
		return -EINVAL;
	*p = s;
	return 0;
}

static int
next_pid(const char **p, pid_t *ret_pid)
{
	uint64_t value;
	if (next_u64(p, &value) < 0 || value > INT_MAX)
		return -EINVAL;
	*ret_pid = (pid_t)value;
	return 0;
}

/* A pid field that the kernel prints as -1 when there is none. */
static int
next_signed_pid(const char **p, pid_t *ret_pid)
{
	const char *s = skip_spaces(*p);
	if (s[0] == '-' && s[1] == '1' && (s[2] == ' ' || s[2] == '\0')) {
		*p = s + 2;
		*ret_pid = -1;
		return 0;
	}
	return next_pid(p, ret_pid);
}

int
metrics_parse_stat(const char *text, struct metrics_stat *ret_stat)
{
	struct metrics_stat stat = {0};
	const char *p = text;

	if (next_pid(&p, &stat.pid) < 0)
		return -EINVAL;
	/* The command name may hold spaces and ')' itself: it ends at the last ')'. */
	const char *open_paren = strchr(p, '(');
	const char *close_paren = strrchr(p, ')');
	if (!open_paren || !close_paren || close_paren < open_paren)
		return -EINVAL;
	size_t comm_length = (size_t)(close_paren - open_paren - 1);
	if (comm_length >= sizeof(stat.comm))
		comm_length = sizeof(stat.comm) - 1;
	memcpy(stat.comm, open_paren + 1, comm_length);
	stat.comm[comm_length] = '\0';

	p = close_paren + 1;
	if (*p != ' ' || !isalpha((unsigned char)p[1]))
		return -EINVAL;
	stat.state = p[1];
	p += 2;

	/* Fields 4..24 of proc(5); the ones we keep are named, the rest skipped in order. */
	uint64_t ignored;
	/* A process being reaped (state X) shows pgid and session as -1. */
	if (next_pid(&p, &stat.ppid) < 0 || next_signed_pid(&p, &stat.pgid) < 0 ||
	    skip_field(&p) < 0 ||	  /* session */
	    skip_field(&p) < 0 ||	  /* tty_nr */
	    skip_field(&p) < 0 ||	  /* tpgid, -1 without a terminal */
	    next_u64(&p, &ignored) < 0 || /* flags */
	    next_u64(&p, &stat.minor_faults) < 0 || next_u64(&p, &ignored) < 0 || /* cminflt */
	    next_u64(&p, &stat.major_faults) < 0 || next_u64(&p, &ignored) < 0 || /* cmajflt */
	    next_u64(&p, &stat.utime_ticks) < 0 || next_u64(&p, &stat.stime_ticks) < 0 ||
	    skip_field(&p) < 0 || skip_field(&p) < 0 ||			 /* cutime, cstime */
	    skip_field(&p) < 0 || skip_field(&p) < 0 ||			 /* priority, nice */
	    next_u64(&p, &stat.num_threads) < 0 || skip_field(&p) < 0 || /* itrealvalue */
	    next_u64(&p, &stat.start_ticks) < 0 || next_u64(&p, &stat.vsize_bytes) < 0 ||
	    next_u64(&p, &stat.rss_pages) < 0)
		return -EINVAL;
	/* Fields 25..28, where the kernel shows them (a fixture may stop at rss): they change
	 * with an exec, which keeps the pid and the start time (metrics_cache.c). Zero for a
	 * reader that may not trace the process. */
	if (skip_field(&p) < 0 ||					/* rsslim */
	    next_u64(&p, &stat.start_code) < 0 || skip_field(&p) < 0 || /* endcode */
	    next_u64(&p, &stat.start_stack) < 0)
		stat.start_code = stat.start_stack = 0;

	*ret_stat = stat;
	return 0;
}

int
metrics_parse_smaps_rollup(const char *text, struct metrics_memory *ret_memory)
{
#define MEMORY_KEY(text, field)                                                                    \
	{                                                                                          \
		text, sizeof(text) - 1, offsetof(struct metrics_memory, field)                     \
	}
	static const struct {
		const char *key;
		size_t length;
		size_t offset;
	} keys[] = {
	    MEMORY_KEY("Rss:", resident_size),
	    MEMORY_KEY("Pss:", proportional_size),
	    MEMORY_KEY("Shared_Clean:", shared_clean_size),
	    MEMORY_KEY("Shared_Dirty:", shared_dirty_size),
	    MEMORY_KEY("Private_Clean:", private_clean_size),
	    MEMORY_KEY("Private_Dirty:", private_dirty_size),
	    MEMORY_KEY("Referenced:", referenced_size),
	    MEMORY_KEY("Anonymous:", anonymous_size),
	    MEMORY_KEY("Swap:", swap_size),
	    MEMORY_KEY("SwapPss:", proportional_swap_size),
	};
#undef MEMORY_KEY
	struct metrics_memory memory = {0};
	unsigned found = 0;

	for (const char *line = text; *line;) {
		const char *end = strchr(line, '\n');
		size_t line_length = end ? (size_t)(end - line) : strlen(line);
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			size_t key_length = keys[i].length;
			if (line[0] != keys[i].key[0] || line_length < key_length ||
			    memcmp(line, keys[i].key, key_length) != 0)
				continue;
			const char *p = line + key_length;
			uint64_t kib;
			if (next_u64(&p, &kib) < 0 || kib > UINT64_MAX / 1024)
				return -EINVAL;
			*(uint64_t *)((char *)&memory + keys[i].offset) = kib * 1024;
			found |= 1u << i;
			break;
		}
		line += line_length + (end ? 1 : 0);
	}
	/* Rss and Pss are in every kernel's rollup since it exists (4.14). */
	if ((found & 3u) != 3u)
		return -EINVAL;
	memory.unique_size = memory.private_clean_size + memory.private_dirty_size;
	*ret_memory = memory;
	return 0;
}

int
metrics_parse_statm(const char *text, uint64_t *ret_resident_pages)
{
	const char *p = text;
	uint64_t size, resident;
	if (next_u64(&p, &size) < 0 || next_u64(&p, &resident) < 0)
		return -EINVAL;
	*ret_resident_pages = resident;
	return 0;
}

int
metrics_parse_children(const char *text, int (*add)(pid_t pid, void *data), void *data)
{
	const char *p = text;
	int count = 0;
	for (;;) {
		while (*p == ' ' || *p == '\n')
			p++;
		if (!*p)
			return count;
		pid_t pid;
		if (next_pid(&p, &pid) < 0 || pid <= 0)
			return -EINVAL;
		int r = add(pid, data);
		if (r < 0)
			return r;
		if (count < INT_MAX)
			count++;
	}
}

char *
metrics_command_from_cmdline(const char *cmdline, size_t length, const char *comm, char state)
{
	while (length > 0 && cmdline[length - 1] == '\0')
		length--;
	if (length == 0) {
		char *command;
		if (asprintf(&command, "[%s]%s", comm, state == 'Z' ? " <defunct>" : "") < 0)
			return NULL;
		return command;
	}
	char *command = malloc(length + 1);
	if (!command)
		return NULL;
	/* As ps does: separators become spaces, other control characters '?'. */
	for (size_t i = 0; i < length; i++) {
		unsigned char c = (unsigned char)cmdline[i];
		command[i] = c == '\0' ? ' ' : (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	command[length] = '\0';
	return command;
}
