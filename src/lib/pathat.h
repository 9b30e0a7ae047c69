/* pathat: a path as its directory, opened once, and its last name, so that what is done to the
 * name is done in that directory whatever is renamed or replaced along the path meanwhile. */
#pragma once

#include <stddef.h>

/* Opens the directory that holds path (O_PATH; links on the way are followed as any path's
 * are) and points *ret_name into path at its last component. -EINVAL if path has no last name
 * ("/", "a/", "a/.."), -ENAMETOOLONG, or -errno of the open. */
int pathat_open_parent(const char *path, int *ret_fd, const char **ret_name);
/* Whether the directory fd, which holds path's last name, is one that nobody but this process's
 * user and root can change, as OpenSSH's StrictModes wants: owned by root or by the effective
 * user, and not writable by group or others unless sticky. Returns 0 if nobody else may write
 * it, 1 if others may but the sticky bit keeps them to their own entries; else -EPERM (or
 * -errno) with error saying what is wrong and what to do. */
int pathat_check_directory(int fd, const char *path, char *error, size_t error_size);
