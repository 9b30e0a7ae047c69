/* top_logs: `top`'s log pane (key l): the last lines of the worker in the selected row (the
 * first row shown), asked for with a logs request on a connection of its own at each refresh,
 * so that the status and metrics rounds are never held back by it. */
#include "cli/top_logs.h"

#include <curses.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>

static void
forget(struct top_logs *logs)
{
	json_decref(logs->lines);
	logs->lines = NULL;
}

/* The service and index of the worker pid in status; -1 if it is none's. */
static int
find_worker(const json_t *status, int pid, const char **ret_service)
{
	const char *name;
	json_t *service;
	json_object_foreach(json_object_get(status, "services"), name, service)
	{
		size_t i;
		json_t *w;
		json_array_foreach(json_object_get(service, "workers"), i, w)
		{
			if (pid > 0 && json_integer_value(json_object_get(w, "pid")) == pid) {
				*ret_service = name;
				return (int)json_integer_value(json_object_get(w, "index"));
			}
		}
	}
	return -1;
}

size_t
top_logs_select(struct top_logs *logs, const json_t *status, const struct top_lines *rows,
		size_t from)
{
	const char *found = NULL;
	int worker = -1, pid = 0;
	size_t row = from;
	for (; row < rows->count && worker < 0; row++)
		if ((worker = find_worker(status, rows->lines[row].pid, &found)) >= 0)
			pid = rows->lines[row].pid;
	if (pid != logs->pid || worker != logs->worker ||
	    (found && strcmp(found, logs->service) != 0))
		forget(logs);
	logs->pid = pid;
	logs->worker = worker;
	snprintf(logs->service, sizeof(logs->service), "%s", worker >= 0 ? found : "");
	return worker >= 0 ? row - 1 : SIZE_MAX;
}

static void
on_reply(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct top_logs *logs = data;
	(void)events;
	json_t *reply;
	int r = top_link_receive(&logs->link, &reply);
	if (r == 0)
		return;
	if (r < 0) {
		loop_remove(loop, fd);
		top_link_close(&logs->link);
		logs->asked = false;
		snprintf(logs->note, sizeof(logs->note), "no logs: the connection was lost");
		logs->changed(logs->top);
		return;
	}
	logs->asked = false;
	const char *message =
	    json_string_value(json_object_get(json_object_get(reply, "error"), "message"));
	forget(logs);
	if (message) {
		snprintf(logs->note, sizeof(logs->note), "no logs: %.200s", message);
	} else {
		logs->lines = json_incref(json_object_get(reply, "lines"));
		logs->note[0] = '\0';
	}
	json_decref(reply);
	logs->changed(logs->top);
}

void
top_logs_ask(struct top_logs *logs, struct loop *loop, const char *socket, uid_t owner,
	     unsigned count)
{
	if (!logs->shown || logs->worker < 0 || logs->asked)
		return;
	if (logs->link.fd < 0) {
		char error[400];
		if (top_link_connect(&logs->link, socket, 0, owner, error, sizeof(error)) < 0) {
			snprintf(logs->note, sizeof(logs->note), "no logs: %.200s", error);
			return;
		}
		if (loop_add(loop, logs->link.fd, EPOLLIN, on_reply, logs) < 0) {
			top_link_close(&logs->link);
			return;
		}
	}
	json_t *request = json_pack("{s:s,s:s,s:i,s:i}", "please", "logs", "service", logs->service,
				    "worker", logs->worker, "lines", (int)count);
	char *text = request ? json_dumps(request, JSON_COMPACT) : NULL;
	json_decref(request);
	if (text && top_link_send(&logs->link, text) == 0)
		logs->asked = true;
	free(text);
}

/* What a terminal cell shows as one character and acts on as nothing: printable ASCII. */
static void
printable(char *text)
{
	for (char *p = text; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
}

void
top_logs_draw(const struct top_logs *logs, int y, int height, int width)
{
	if (height <= 0)
		return;
	char text[1200];
	if (logs->worker < 0)
		snprintf(text, sizeof(text),
			 "logs (l to hide): the first row shown is not a "
			 "worker; scroll to one");
	else
		snprintf(text, sizeof(text), "logs of %s.%d[%d] (l to hide)%s%s", logs->service,
			 logs->worker, logs->pid, logs->note[0] ? ": " : "", logs->note);
	printable(text);
	attrset(A_BOLD);
	mvaddnstr(y, 0, text, width);
	attrset(A_NORMAL);
	size_t count = json_array_size(logs->lines);
	/* The newest lines that fit, oldest first. */
	size_t first = count > (size_t)(height - 1) ? count - (size_t)(height - 1) : 0;
	for (size_t i = first; i < count; i++) {
		const json_t *line = json_array_get(logs->lines, i);
		const char *time = json_string_value(json_object_get(line, "time"));
		const char *stream = json_string_value(json_object_get(line, "stream"));
		bool error = stream && strcmp(stream, "stderr") == 0;
		snprintf(text, sizeof(text), "%.12s %s%s",
			 time && strlen(time) > 11 ? time + 11 : "", error ? "stderr: " : "",
			 json_string_value(json_object_get(line, "line")) ?: "");
		printable(text);
		mvaddnstr(y + 1 + (int)(i - first), 0, text, width);
	}
}

void
top_logs_close(struct top_logs *logs, struct loop *loop)
{
	if (logs->link.fd >= 0)
		loop_remove(loop, logs->link.fd);
	top_link_close(&logs->link);
	forget(logs);
}
