/* path: where the paths a config file names are, made lexically from the file's own path. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/parser.h"

/* Removes "." components and repeated or trailing slashes of an absolute path, in place. ".." is
 * left alone: with symbolic links, "a/b/.." is not always "a". */
static void
path_clean(char *path)
{
	char *out = path;
	const char *in = path;
	while (*in) {
		if (*in != '/') {
			*out++ = *in++;
			continue;
		}
		while (*in == '/')
			in++;
		if (in[0] == '.' && (in[1] == '/' || in[1] == '\0')) {
			in++;
			continue;
		}
		if (*in)
			*out++ = '/';
	}
	if (out == path)
		*out++ = '/';
	*out = '\0';
}

char *
path_join(const char *directory, const char *path)
{
	char *joined;
	if (path[0] == '/')
		joined = strdup(path);
	else if (asprintf(&joined, "%s/%s", directory, path) < 0)
		joined = NULL;
	if (joined)
		path_clean(joined);
	return joined;
}

/* The file's absolute path and directory, made lexically (no symbolic links resolved) so that
 * relative paths in the file mean what they say next to the path the user gave. */
int
path_locate(const char *path, char **ret_path, char **ret_directory)
{
	char *cwd = NULL, *absolute, *directory;
	if (path[0] != '/' && !(cwd = get_current_dir_name()))
		return -errno;
	absolute = path_join(cwd ? cwd : "/", path);
	free(cwd);
	if (!absolute)
		return -ENOMEM;
	char *slash = strrchr(absolute, '/');
	directory = slash == absolute ? strdup("/") : strndup(absolute, (size_t)(slash - absolute));
	if (!directory) {
		free(absolute);
		return -ENOMEM;
	}
	*ret_path = absolute;
	*ret_directory = directory;
	return 0;
}
