/* cgroup: the services' cgroup v2 directories under the host's own (see cgroup.h). */
#include "host/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "lib/limits.h"
#include "lib/log.h"

struct service_cgroup {
	char name[CONFIG_MAX_NAME + 1];
	int dir_fd;
	int procs_fd;
	unsigned long long memory_max; /* as last written; 0: never */
	unsigned cpu_weight;
	bool memory_skip_logged, cpu_skip_logged;
};

static struct {
	bool ready;		      /* cgroup_setup found a place */
	char base[PATH_MAX * 2 + 32]; /* where the services' directories go */
	bool base_made;		      /* base is ours to remove (aerie-PID under the root) */
	char reason[PATH_MAX * 2 + 160];
	struct service_cgroup services[CONFIG_MAX_SERVICES];
	size_t count;
} state;

/* The mount point of the cgroup2 file system, from /proc/self/mountinfo. */
static int
find_mount(char *ret_path, size_t size)
{
	FILE *file = fopen("/proc/self/mountinfo", "re");
	if (!file)
		return -errno;
	char line[4096];
	int r = -ENOENT;
	while (r == -ENOENT && fgets(line, sizeof(line), file)) {
		/* id parent major:minor root mount-point options... - type source options */
		char root[PATH_MAX], point[PATH_MAX];
		const char *dash = strstr(line, " - ");
		if (!dash || strncmp(dash, " - cgroup2 ", 11) != 0)
			continue;
		if (sscanf(line, "%*s %*s %*s %4095s %4095s", root, point) == 2 &&
		    strcmp(root, "/") == 0 && strlen(point) < size) {
			strcpy(ret_path, point);
			r = 0;
		}
	}
	fclose(file);
	return r;
}

/* The host's path in the v2 hierarchy: the "0::PATH" line of /proc/self/cgroup. */
static int
find_own(char *ret_path, size_t size)
{
	FILE *file = fopen("/proc/self/cgroup", "re");
	if (!file)
		return -errno;
	char line[PATH_MAX + 8];
	int r = -ENOENT;
	while (r == -ENOENT && fgets(line, sizeof(line), file)) {
		if (strncmp(line, "0::", 3) != 0)
			continue;
		line[strcspn(line, "\n")] = '\0';
		if (strlen(line + 3) < size) {
			strcpy(ret_path, line + 3);
			r = 0;
		}
	}
	fclose(file);
	return r;
}

/* Writes text into name (relative to dir_fd, or AT_FDCWD): 0 or -errno. */
static int
write_at(int dir_fd, const char *name, const char *text)
{
	int fd = openat(dir_fd, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, text, strlen(text));
	int r = n < 0 ? -errno : 0;
	close(fd);
	return r;
}

/* "+memory +cpu" for those of the two that base's parent offers, into base's
 * cgroup.subtree_control, so that the services' directories have them. */
static void
enable_controllers(const char *base)
{
	char path[sizeof(state.base) + 32], offered[512] = "";
	snprintf(path, sizeof(path), "%s/cgroup.controllers", base);
	FILE *file = fopen(path, "re");
	if (file) {
		if (!fgets(offered, sizeof(offered), file))
			offered[0] = '\0';
		fclose(file);
	}
	char wanted[64] = "";
	for (char *word = strtok(offered, " \n"); word; word = strtok(NULL, " \n"))
		if (strcmp(word, "memory") == 0 || strcmp(word, "cpu") == 0)
			snprintf(wanted + strlen(wanted), sizeof(wanted) - strlen(wanted), "%s+%s",
				 wanted[0] ? " " : "", word);
	if (!wanted[0]) {
		log_info("cgroup %s offers neither the memory nor the cpu controller: "
			 "memory_max and cpu_weight are not applied",
			 base);
		return;
	}
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", base);
	int r = write_at(AT_FDCWD, path, wanted);
	if (r < 0)
		log_errno(LOG_WARN, r,
			  "cannot enable %s in %s: memory_max and cpu_weight are not "
			  "applied",
			  wanted, path);
}

/* A new aerie-PID directory in dir, as state.base. The pid alone may be taken: by a host in
 * another PID namespace (where each container's host is 1), or left by one that was killed. */
static int
make_base(const char *dir)
{
	for (unsigned attempt = 0; attempt < CGROUP_BASE_ATTEMPTS; attempt++) {
		int n = attempt == 0 ? snprintf(state.base, sizeof(state.base), "%s/aerie-%d", dir,
						(int)getpid())
				     : snprintf(state.base, sizeof(state.base), "%s/aerie-%d.%u",
						dir, (int)getpid(), attempt);
		if (n < 0 || (size_t)n >= sizeof(state.base))
			return -ENAMETOOLONG;
		if (mkdir(state.base, 0755) == 0)
			return 0;
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

static int
unavailable(int error, const char *format, const char *path)
{
	snprintf(state.reason, sizeof(state.reason), format, path);
	log_info("%s: services run without a cgroup of their own", state.reason);
	return error;
}

int
cgroup_setup(void)
{
	char mount[PATH_MAX], own[PATH_MAX], dir[PATH_MAX * 2], path[PATH_MAX * 2 + 32];
	if (find_mount(mount, sizeof(mount)) < 0)
		return unavailable(-ENOENT, "no cgroup v2 file system is mounted%s", "");
	if (find_own(own, sizeof(own)) < 0)
		return unavailable(-ENOENT, "the host is in no cgroup v2 (%s)",
				   "/proc/self/cgroup");
	snprintf(dir, sizeof(dir), "%s%s", mount, strcmp(own, "/") == 0 ? "" : own);
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	if (access(dir, W_OK) < 0 || access(path, W_OK) < 0)
		return unavailable(-EACCES, "the host's cgroup %s is not writable", dir);
	snprintf(path, sizeof(path), "%s/cgroup.type", dir);
	if (access(path, F_OK) < 0) {
		/* The root of the hierarchy (no cgroup.type there), which may hold processes and
		 * has children: a directory of this host's own keeps its services apart from
		 * another host's. */
		int r = make_base(dir);
		if (r < 0)
			return unavailable(r, "cannot make a cgroup in %s", dir);
		state.base_made = true;
	} else {
		/* The no-internal-processes rule: a cgroup that holds processes can't give its
		 * children controllers, so the host moves to a leaf of its own first. Anything
		 * else in its cgroup (what its service manager started beside it) stays. */
		snprintf(path, sizeof(path), "%s/host", dir);
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return unavailable(-errno, "cannot make a cgroup in %s", dir);
		snprintf(path, sizeof(path), "%s/host/cgroup.procs", dir);
		int r = write_at(AT_FDCWD, path, "0");
		if (r < 0)
			return unavailable(r, "cannot move the host into %s", path);
		snprintf(state.base, sizeof(state.base), "%s", dir);
	}
	enable_controllers(state.base);
	state.ready = true;
	log_info("cgroup: each service gets its own under %s", state.base);
	return 0;
}

const char *
cgroup_unavailable_reason(void)
{
	return state.reason[0] ? state.reason : "no cgroup was set up";
}

static struct service_cgroup *
find_service(const char *service)
{
	for (size_t i = 0; i < state.count; i++)
		if (strcmp(state.services[i].name, service) == 0)
			return &state.services[i];
	return NULL;
}

/* Writes value into a controller's file of cgroup, or says once why it can't. */
static void
set_controller(struct service_cgroup *cgroup, const char *file, const char *value,
	       bool *skip_logged)
{
	int r = write_at(cgroup->dir_fd, file, value);
	if (r == -ENOENT && !*skip_logged) {
		*skip_logged = true;
		log_info("%s: %s not set: that controller is not enabled in its cgroup",
			 cgroup->name, file);
	} else if (r < 0 && r != -ENOENT) {
		log_errno(LOG_WARN, r, "%s: cannot write %s of its cgroup", cgroup->name, file);
	}
}

static void
apply_controllers(struct service_cgroup *cgroup, const struct config_exec *exec)
{
	char value[32];
	if (exec->memory_max != cgroup->memory_max) {
		if (exec->memory_max)
			snprintf(value, sizeof(value), "%llu", exec->memory_max);
		else
			snprintf(value, sizeof(value), "max");
		set_controller(cgroup, "memory.max", value, &cgroup->memory_skip_logged);
		cgroup->memory_max = exec->memory_max;
	}
	if (exec->cpu_weight != cgroup->cpu_weight) {
		snprintf(value, sizeof(value), "%u", exec->cpu_weight ? exec->cpu_weight : 100);
		set_controller(cgroup, "cpu.weight", value, &cgroup->cpu_skip_logged);
		cgroup->cpu_weight = exec->cpu_weight;
	}
}

/* The procs fd of service's cgroup, 0 for none, or -errno. */
static int
service_procs_fd(const char *service, const struct config_exec *exec)
{
	if (exec->cgroup == CONFIG_CGROUP_NO)
		return 0;
	if (!state.ready)
		return exec->cgroup == CONFIG_CGROUP_YES ? -EOPNOTSUPP : 0;
	struct service_cgroup *cgroup = find_service(service);
	if (!cgroup) {
		if (state.count == CONFIG_MAX_SERVICES || strlen(service) > CONFIG_MAX_NAME)
			return exec->cgroup == CONFIG_CGROUP_YES ? -E2BIG : 0;
		char path[sizeof(state.base) + CONFIG_MAX_NAME + 16];
		snprintf(path, sizeof(path), "%s/service.%s", state.base, service);
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			int r = -errno;
			log_errno(LOG_WARN, r, "%s: cannot make its cgroup %s", service, path);
			return exec->cgroup == CONFIG_CGROUP_YES ? r : 0;
		}
		int dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int procs_fd =
		    dir_fd < 0 ? -1 : openat(dir_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
		if (procs_fd < 0) {
			int r = -errno;
			if (dir_fd >= 0)
				close(dir_fd);
			log_errno(LOG_WARN, r, "%s: cannot open its cgroup %s", service, path);
			return exec->cgroup == CONFIG_CGROUP_YES ? r : 0;
		}
		cgroup = &state.services[state.count++];
		*cgroup = (struct service_cgroup){.dir_fd = dir_fd, .procs_fd = procs_fd};
		snprintf(cgroup->name, sizeof(cgroup->name), "%s", service);
		log_info("%s: cgroup %s", service, path);
	}
	apply_controllers(cgroup, exec);
	return cgroup->procs_fd;
}

int
cgroup_service_fds(const char *service, const struct config_exec *exec, int *ret_dir_fd,
		   int *ret_procs_fd)
{
	int fd = service_procs_fd(service, exec);
	if (fd < 0)
		return fd;
	*ret_procs_fd = fd;
	*ret_dir_fd = fd > 0 ? find_service(service)->dir_fd : 0;
	return 0;
}

void
cgroup_service_kill(const char *service)
{
	struct service_cgroup *cgroup = find_service(service);
	if (!cgroup)
		return;
	int fd = openat(cgroup->dir_fd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char pids[64];
	ssize_t n = read(fd, pids, sizeof(pids));
	close(fd);
	if (n <= 0)
		return; /* nothing left: the usual case */
	int r = write_at(cgroup->dir_fd, "cgroup.kill", "1");
	if (r < 0)
		log_errno(LOG_WARN, r,
			  "%s: processes are left in its cgroup, and cgroup.kill failed", service);
	else
		log_info("%s: killed what was left in its cgroup (cgroup.kill)", service);
}

bool
cgroup_service_memory(const char *service, uint64_t *ret_bytes)
{
	struct service_cgroup *cgroup = find_service(service);
	if (!cgroup)
		return false;
	int fd = openat(cgroup->dir_fd, "memory.current", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	char text[32];
	ssize_t n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return false;
	text[n] = '\0';
	char *end;
	unsigned long long bytes = strtoull(text, &end, 10);
	if (end == text)
		return false;
	*ret_bytes = bytes;
	return true;
}

void
cgroup_done(void)
{
	for (size_t i = 0; i < state.count; i++) {
		struct service_cgroup *cgroup = &state.services[i];
		close(cgroup->procs_fd);
		close(cgroup->dir_fd);
		char path[sizeof(state.base) + CONFIG_MAX_NAME + 16];
		snprintf(path, sizeof(path), "%s/service.%s", state.base, cgroup->name);
		if (rmdir(path) < 0 && errno != ENOENT)
			log_errno(LOG_WARN, -errno, "cannot remove the cgroup %s", path);
	}
	state.count = 0;
	if (state.base_made && rmdir(state.base) < 0 && errno != ENOENT)
		log_errno(LOG_WARN, -errno, "cannot remove the cgroup %s", state.base);
	state.ready = false;
}

/* Calls fn on every service's cgroup in dir, the base (by name), round after round until fn
 * has returned true for all of them, at most rounds rounds CGROUP_SWEEP_PAUSE_NS apart.
 * Returns how many were left. */
static size_t
each_service_cgroup(DIR *dir, bool (*fn)(int base_fd, const char *name), unsigned rounds)
{
	size_t left = 0;
	for (unsigned round = 0; round < rounds; round++) {
		if (round > 0)
			(void)nanosleep(&(struct timespec){0, CGROUP_SWEEP_PAUSE_NS}, NULL);
		rewinddir(dir);
		left = 0;
		for (struct dirent *entry; (entry = readdir(dir));)
			if (strncmp(entry->d_name, "service.", 8) == 0 &&
			    !fn(dirfd(dir), entry->d_name))
				left++;
		if (left == 0)
			break;
	}
	return left;
}

static bool
kill_cgroup(int base_fd, const char *name)
{
	int fd = openat(base_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		(void)write_at(fd, "cgroup.kill", "1"); /* no cgroup.kill: nothing to do better */
		close(fd);
	}
	return true;
}

static bool
remove_cgroup(int base_fd, const char *name)
{
	return unlinkat(base_fd, name, AT_REMOVEDIR) == 0 || errno == ENOENT;
}

size_t
cgroup_sweep_orphaned(void)
{
	if (!state.ready)
		return 0;
	int base_fd = open(state.base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *dir = base_fd >= 0 ? fdopendir(base_fd) : NULL;
	if (!dir) {
		if (base_fd >= 0)
			close(base_fd);
		return 0;
	}
	(void)each_service_cgroup(dir, kill_cgroup, 1);
	/* The killed take a moment to exit; a cgroup with a process in it can't be removed. */
	size_t left = each_service_cgroup(dir, remove_cgroup, CGROUP_SWEEP_ROUNDS);
	closedir(dir);
	if (left == 0 && state.base_made)
		(void)rmdir(state.base);
	return left;
}
