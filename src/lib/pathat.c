/* pathat: a path as its directory, opened once, and its last name, so that what is done to the
 * name is done in that directory whatever is renamed or replaced along the path meanwhile. */
#include "lib/pathat.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
pathat_open_parent(const char *path, int *ret_fd, const char **ret_name)
{
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	char directory[PATH_MAX];
	size_t length = slash ? (size_t)(slash - path) : 0;
	if (length >= sizeof(directory))
		return -ENAMETOOLONG;
	if (!slash)
		strcpy(directory, ".");
	else if (length == 0)
		strcpy(directory, "/");
	else {
		memcpy(directory, path, length);
		directory[length] = '\0';
	}
	int fd = open(directory, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	*ret_fd = fd;
	*ret_name = name;
	return 0;
}

int
pathat_check_directory(int fd, const char *path, char *error, size_t error_size)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int r = -errno;
		snprintf(error, error_size, "%s: its directory: %s", path, strerror(errno));
		return r;
	}
	const char *slash = strrchr(path, '/');
	int length = slash == path ? 1 : slash ? (int)(slash - path) : 1;
	const char *directory = slash ? path : ".";
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		snprintf(error, error_size,
			 "%s: its directory %.*s belongs to uid %u, who could put another file in "
			 "its place; use a directory owned by root or by the host's user",
			 path, length, directory, (unsigned)st.st_uid);
		return -EPERM;
	}
	if (!(st.st_mode & (S_IWGRP | S_IWOTH)))
		return 0;
	if (st.st_mode & S_ISVTX)
		return 1;
	snprintf(error, error_size,
		 "%s: its directory %.*s is writable by other users (mode %04o) and not sticky, so "
		 "any of them could put another file in its place; make it writable by its owner "
		 "only (chmod go-w) or sticky (chmod +t)",
		 path, length, directory, (unsigned)(st.st_mode & 07777));
	return -EPERM;
}
