/* peer: the supervisor process's gate: who may use the control socket, from SO_PEERCRED and
 * the peer's supplementary groups; the reply a refused peer gets; and the log of refusals,
 * rate-limited per uid. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
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

/* The counts of the last interval, each as one line; a uid refused no more since its last line
 * is forgotten, so that its next refusal is logged in full again. */
static void
refused_summary(struct supervisor *supervisor)
{
	size_t kept = 0;
	for (size_t i = 0; i < supervisor->refused.count; i++) {
		if (supervisor->refused.uids[i].more == 0)
			continue;
		log_warn("%lu more refused connections from uid %d in the last %.0f s",
			 supervisor->refused.uids[i].more, (int)supervisor->refused.uids[i].uid,
			 SUPERVISOR_REFUSED_LOG_INTERVAL);
		supervisor->refused.uids[kept] = supervisor->refused.uids[i];
		supervisor->refused.uids[kept++].more = 0;
	}
	supervisor->refused.count = kept;
	if (supervisor->refused.others > 0)
		log_warn("%lu refused connections from other uids in the last %.0f s",
			 supervisor->refused.others, SUPERVISOR_REFUSED_LOG_INTERVAL);
	supervisor->refused.others = 0;
}

static void
on_refused_timer(struct loop *loop, void *data)
{
	struct supervisor *supervisor = data;
	refused_summary(supervisor);
	if (supervisor->refused.count > 0)
		(void)loop_timer_start(loop, &supervisor->refused.timer,
				       SUPERVISOR_REFUSED_LOG_INTERVAL);
}

void
peer_log_refused(struct supervisor *supervisor, uid_t uid)
{
	/* As journald's and OpenSSH's rate limits do: the first line tells what happens, a count
	 * per interval tells how much, and a loop of connections costs a line per interval. */
	if (!loop_timer_armed(&supervisor->refused.timer))
		(void)loop_timer_start(supervisor->loop, &supervisor->refused.timer,
				       SUPERVISOR_REFUSED_LOG_INTERVAL);
	for (size_t i = 0; i < supervisor->refused.count; i++)
		if (supervisor->refused.uids[i].uid == uid) {
			supervisor->refused.uids[i].more++;
			return;
		}
	if (supervisor->refused.count == SUPERVISOR_REFUSED_LOG_UIDS) {
		/* Many uids at once: one count for those that do not fit, so that the lines
		 * stay bounded however many accounts take part. */
		supervisor->refused.others++;
		return;
	}
	supervisor->refused.uids[supervisor->refused.count].uid = uid;
	supervisor->refused.uids[supervisor->refused.count++].more = 0;
	log_warn("client uid %d refused: not the host's user, root or in socket_group", (int)uid);
}

void
peer_log_init(struct supervisor *supervisor)
{
	loop_timer_init(&supervisor->refused.timer, on_refused_timer, supervisor);
}

void
peer_log_finish(struct supervisor *supervisor)
{
	refused_summary(supervisor);
	loop_timer_stop(supervisor->loop, &supervisor->refused.timer);
}
