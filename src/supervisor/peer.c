/* peer: the supervisor process's gate: who may use the control socket, from SO_PEERCRED and
 * the peer's supplementary groups; and the reply a refused peer gets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "supervisor/private.h"

/* Whether pid is in group gid, from the Groups: line of /proc/PID/status (SO_PEERCRED carries
 * only the primary group). */
static bool
in_supplementary_group(pid_t pid, gid_t gid)
{
	char path[64], line[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *file = fopen(path, "re");
	if (!file)
		return false;
	bool found = false;
	while (!found && fgets(line, sizeof(line), file)) {
		if (strncmp(line, "Groups:", 7) != 0)
			continue;
		for (char *p = line + 7, *end;; p = end) {
			unsigned long value = strtoul(p, &end, 10);
			if (end == p)
				break;
			if ((gid_t)value == gid)
				found = true;
		}
		break;
	}
	fclose(file);
	return found;
}

/* The socket file's mode and group are the gate; this is the second lock: the host's user,
 * root, or a member of socket_group. */
bool
peer_allowed(const struct supervisor *supervisor, int fd, uid_t *ret_uid)
{
	struct ucred credentials;
	socklen_t length = sizeof(credentials);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) < 0)
		return false;
	*ret_uid = credentials.uid;
	if (peer_is_operator(credentials.uid))
		return true;
	if (supervisor->socket_gid == (gid_t)-1)
		return false;
	return credentials.gid == supervisor->socket_gid ||
	       in_supplementary_group(credentials.pid, supervisor->socket_gid);
}

bool
peer_is_operator(uid_t uid)
{
	return uid == 0 || uid == getuid();
}

void
peer_refuse(int fd, enum protocol_code code, const char *message)
{
	char *text = NULL;
	json_t *reply = protocol_error(code, message);
	ssize_t length = reply ? protocol_encode(reply, &text) : -1;
	json_decref(reply);
	if (length > 0)
		(void)send(fd, text, (size_t)length, MSG_DONTWAIT | MSG_NOSIGNAL);
	free(text);
	close(fd);
}
