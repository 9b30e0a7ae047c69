/* logs_file: a service's log_file, written by the host and rotated by size (logs.c's). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct logs_file {
	char *path;	  /* as configured, absolute */
	int directory;	  /* its directory, held open: rotations rename inside it */
	const char *name; /* the file's name in it (points into path) */
	int fd;		  /* -1: not open (it could not be); its lines are dropped */
	unsigned long long size, max_size;
	unsigned keep;
	unsigned long long dropped; /* lines not written */
	bool failing;		    /* dropping: warned once, until a write works again */
	/* Lines of this turn of the loop, written at once by logs_file_flush. */
	char buffer[64 * 1024];
	size_t length;
	unsigned buffered_lines;
};

/* Opens path; a failure is logged and leaves the file closed (its lines counted as dropped)
 * and returns -errno; the host runs on. */
int logs_file_open(struct logs_file *file, const char *path, unsigned long long max_size,
		   unsigned keep);
/* Appends one line (with its newline) to the buffer, rotating first if it would pass
 * max_size. */
void logs_file_append(struct logs_file *file, const char *line, size_t length);
/* Writes the buffer. */
void logs_file_flush(struct logs_file *file);
/* Closes and opens the file again under its name (SIGUSR1). */
void logs_file_reopen(struct logs_file *file);
void logs_file_close(struct logs_file *file);
