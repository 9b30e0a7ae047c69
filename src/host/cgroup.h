/* cgroup: a cgroup v2 directory of its own for each service, where the host may write one
 * (systemd's Delegate=yes, a container, root on a unified hierarchy): stop and kill reach
 * every process of a service through cgroup.kill, memory_max and cpu_weight go to the
 * controllers, and memory.current is the service's memory. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config_exec;

/* Finds the host's own cgroup and makes the place for the services' (moving the host into a
 * leaf "host" first where its cgroup is not the root: a cgroup with processes can't give its
 * children controllers). Logs once, either way. Before the host starts any other process. 0,
 * or -errno when no cgroup is writable: then every service runs without one. */
int cgroup_setup(void);
/* Why cgroup_setup found none, for an error of cgroup = yes. */
const char *cgroup_unavailable_reason(void);
/* The fds of service's cgroup directory and its cgroup.procs, for the child to start in,
 * made at its first spawn; memory_max and cpu_weight of exec written when they changed. 0 with
 * both 0: no cgroup for it (none writable, or cgroup = no); -errno: cgroup = yes but none
 * could be made. */
int cgroup_service_fds(const char *service, const struct config_exec *exec, int *ret_dir_fd,
		       int *ret_procs_fd);
/* SIGKILL to every process left in service's cgroup (cgroup.kill), once its workers are
 * gone: what they started in a session of its own goes too. */
void cgroup_service_kill(const char *service);
/* memory.current of service's cgroup; false if unknown. */
bool cgroup_service_memory(const char *service, uint64_t *ret_bytes);
/* Removes the cgroups made (those still holding a process stay). */
void cgroup_done(void);
/* For the guard, once the host died without stopping (it has the host's cgroup state, from the
 * fork): cgroup.kill in every service's cgroup under the host's, which reaches what left the
 * workers' process groups too, then each removed once empty, and the host's own directory if
 * it made one. Returns how many could not be removed (still busy after the wait). */
size_t cgroup_sweep_orphaned(void);
