/* cmd_top: `aerie supervisor top`, a live full-screen view of a host's processes (or one
 * snapshot when the output is not a terminal), polled over one supervisor connection.
 *
 * Each interval it pipelines {"please":"status"} and {"please":"metrics"} on a connection it
 * keeps open; the replies come back in order. A rolling restart (key r) goes on a connection of
 * its own, since its reply waits for the new generation and would hold back the next polls.
 * ncurses draws (it sends only what changed); the epoll loop of the host (loop.c) waits on the
 * keyboard, the socket, a signalfd (INT, TERM, HUP, WINCH) and the refresh timer. */
#include "cli/cmd_top.h"

#include <curses.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/top_events.h"
#include "cli/top_link.h"
#include "cli/top_logs.h"
#include "cli/top_view.h"
#include "lib/escape.h"
#include "lib/limits.h"
#include "lib/loop.h"
#include "metrics/metrics_json.h"

struct top {
	const char *socket;
	uid_t owner; /* besides root and this user, the one trusted to serve socket */
	double interval;
	struct loop *loop;
	struct loop_timer tick;
	struct top_link link;
	unsigned due;		  /* replies of the round in progress still to come */
	json_t *round_status;	  /* the status reply of the round in progress */
	json_t *status;		  /* of the last complete round */
	struct metrics_tree tree; /* of the last complete round */
	struct top_link restart;  /* a rolling restart waiting for its reply */
	struct top_events events;
	enum top_sort sort;
	size_t scroll;
	size_t page; /* rows the body showed at the last draw */
	bool confirming;
	char message[512];    /* shown at the bottom: a lost connection, a restart's outcome */
	struct top_logs logs; /* key l: the selected worker's last lines */
};

static void draw(struct top *top);

/* The interactive parts need the keyboard and the screen to be a terminal. */
static bool
interactive(void)
{
	return isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
}

static double
retry_delay(const struct top *top)
{
	return top->interval < TOP_RETRY_MAX ? top->interval : TOP_RETRY_MAX;
}

static void
lose_connection(struct top *top, const char *why)
{
	if (top->link.fd >= 0)
		loop_remove(top->loop, top->link.fd);
	top_link_close(&top->link);
	top->due = 0;
	json_decref(top->round_status);
	top->round_status = NULL;
	snprintf(top->message, sizeof(top->message),
		 "connection to %s lost (%s); retrying every %g s", top->socket, why,
		 retry_delay(top));
	top_events_add(&top->events, time(NULL), "connection lost: %s", why);
	(void)loop_timer_start(top->loop, &top->tick, retry_delay(top));
	draw(top);
}

/* A round is complete: the metrics reply after the status reply. */
static void
take_round(struct top *top, json_t *metrics)
{
	struct metrics_tree tree;
	const char *message =
	    json_string_value(json_object_get(json_object_get(metrics, "error"), "message"));
	if (metrics_json_parse(metrics, &tree) == 0) {
		metrics_tree_free(&top->tree);
		top->tree = tree;
		if (strncmp(top->message, "no metrics", 10) == 0)
			top->message[0] = '\0'; /* they are back */
	} else {
		snprintf(top->message, sizeof(top->message), "no metrics from the host: %s",
			 message ? message : "not an object keyed by pid");
		escape_controls(top->message, false);
	}
	top_events_diff(&top->events, top->status, top->round_status, time(NULL));
	json_decref(top->status);
	top->status = top->round_status;
	top->round_status = NULL;
}

static void
on_link(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct top *top = data;
	(void)loop;
	(void)fd;
	(void)events;
	bool complete = false;
	for (;;) {
		json_t *reply;
		int r = top_link_receive(&top->link, &reply);
		if (r == 0)
			break;
		if (r < 0) {
			lose_connection(top, r == -ECONNRESET ? "the supervisor closed it"
					     : r == -EPROTO   ? "a reply that is not JSON"
							      : strerror(-r));
			return;
		}
		if (top->due == 2) {
			top->round_status = reply;
		} else if (top->due == 1) {
			take_round(top, reply);
			json_decref(reply);
			complete = true;
		} else {
			json_decref(reply); /* nothing asked for it */
			continue;
		}
		top->due--;
	}
	if (complete)
		draw(top);
}

static void
on_tick(struct loop *loop, void *data)
{
	struct top *top = data;
	if (top->link.fd < 0) {
		char error[400] = "cannot watch the socket";
		/* Not waiting for room: the screen and its keys must not freeze meanwhile. */
		if (top_link_connect(&top->link, top->socket, 0, top->owner, error, sizeof(error)) <
			0 ||
		    loop_add(loop, top->link.fd, EPOLLIN, on_link, top) < 0) {
			top_link_close(&top->link);
			snprintf(top->message, sizeof(top->message),
				 "cannot reach the host: %s; retrying every %g s", error,
				 retry_delay(top));
			(void)loop_timer_start(loop, &top->tick, retry_delay(top));
			draw(top);
			return;
		}
		top->message[0] = '\0';
		top_events_add(&top->events, time(NULL), "connected to %s", top->socket);
	}
	/* A round still under way (a host slow to answer) is not doubled. */
	if (top->due == 0) {
		int r = top_link_ask(&top->link, COMMAND_STATUS);
		if (r == 0)
			r = top_link_ask(&top->link, COMMAND_METRICS);
		if (r < 0) {
			lose_connection(top, strerror(-r));
			return;
		}
		top->due = 2;
	}
	top_logs_ask(&top->logs, loop, top->socket, top->owner, TOP_LOG_LINES);
	(void)loop_timer_start(loop, &top->tick, top->interval);
}

static void
on_restart(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct top *top = data;
	(void)events;
	json_t *reply = NULL;
	char text[400];
	int r = top_link_receive(&top->restart, &reply);
	if (r == 0)
		return;
	loop_remove(loop, fd);
	top_link_close(&top->restart);
	const json_t *error = json_object_get(reply, "error");
	if (r < 0)
		snprintf(top->message, sizeof(top->message),
			 "rolling restart: no answer (%s); see the host's log",
			 r == -ECONNRESET ? "the supervisor closed the connection" : strerror(-r));
	else if (error)
		snprintf(
		    top->message, sizeof(top->message), "rolling restart failed: %s",
		    escape_copy(json_string_value(json_object_get(error, "message")) ?: "error",
				text, sizeof(text)));
	else
		snprintf(top->message, sizeof(top->message),
			 "rolling restart done: generation %lld is serving",
			 (long long)json_integer_value(json_object_get(reply, "generation")));
	top_events_add(&top->events, time(NULL), "%s", top->message);
	json_decref(reply);
	draw(top);
}

static void
start_restart(struct top *top)
{
	char error[400];
	if (top_link_connect(&top->restart, top->socket, 0, top->owner, error, sizeof(error)) < 0) {
		snprintf(top->message, sizeof(top->message), "rolling restart: %s", error);
		return;
	}
	if (top_link_ask(&top->restart, COMMAND_RESTART) < 0 ||
	    loop_add(top->loop, top->restart.fd, EPOLLIN, on_restart, top) < 0) {
		top_link_close(&top->restart);
		snprintf(top->message, sizeof(top->message), "rolling restart: cannot ask for it");
		return;
	}
	snprintf(top->message, sizeof(top->message),
		 "rolling restart under way: new workers start, the old stop once they are ready");
	top_events_add(&top->events, time(NULL), "rolling restart asked for");
}

static void
scroll_by(struct top *top, long delta)
{
	if (delta < 0 && (size_t)-delta > top->scroll)
		top->scroll = 0;
	else
		top->scroll += (size_t)delta; /* clamped by draw */
}

static void
on_key(struct top *top, int key)
{
	long page = top->page > 1 ? (long)top->page - 1 : 1;
	if (top->link.fd >= 0)
		top->message[0] = '\0'; /* read: the help comes back (a lost connection stays) */
	if (top->confirming) {
		top->confirming = false;
		if (key == 'y' || key == 'Y')
			start_restart(top);
		else
			snprintf(top->message, sizeof(top->message), "rolling restart cancelled");
		return;
	}
	switch (key) {
	case 'q':
	case 'Q':
		loop_quit(top->loop);
		break;
	case 's':
	case 'S':
		top->sort = (top->sort + 1) % TOP_SORT_COUNT;
		break;
	case 'l':
		top->logs.shown = !top->logs.shown;
		break;
	case 'r':
	case 'R':
		if (top->restart.fd >= 0)
			snprintf(top->message, sizeof(top->message),
				 "a rolling restart is under way already");
		else
			top->confirming = true;
		break;
	case KEY_UP:
	case 'k':
		scroll_by(top, -1);
		break;
	case KEY_DOWN:
	case 'j':
		scroll_by(top, 1);
		break;
	case KEY_PPAGE:
		scroll_by(top, -page);
		break;
	case KEY_NPAGE:
	case ' ':
		scroll_by(top, page);
		break;
	case KEY_HOME:
	case 'g':
		top->scroll = 0;
		break;
	case KEY_END:
	case 'G':
		top->scroll = SIZE_MAX / 2;
		break;
	case 12: /* Ctrl-L */
		clearok(curscr, TRUE);
		break;
	default:
		break;
	}
}

static void
on_stdin(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct top *top = data;
	(void)fd;
	if (events & (EPOLLHUP | EPOLLERR)) {
		loop_quit(loop); /* the terminal is gone */
		return;
	}
	for (int key; (key = getch()) != ERR;)
		on_key(top, key);
	draw(top);
	top_logs_ask(&top->logs, loop, top->socket, top->owner, TOP_LOG_LINES);
}

static void
resize(struct top *top)
{
	struct winsize size;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_row > 0 && size.ws_col > 0)
		resizeterm(size.ws_row, size.ws_col);
	draw(top);
}

static void
on_signal(struct loop *loop, int signal, void *data)
{
	if (signal == SIGWINCH)
		resize(data);
	else
		loop_quit(loop); /* INT, TERM, HUP: leave, restoring the terminal */
}

static int
style_attributes(enum top_style style)
{
	switch (style) {
	case TOP_STYLE_TITLE:
	case TOP_STYLE_GROUP:
		return A_BOLD;
	case TOP_STYLE_COLUMNS:
		return A_REVERSE;
	default:
		return A_NORMAL;
	}
}

/* One line at y, cut to the width; reverse video spans the whole line. */
static void
draw_line(int y, int width, const char *text, int attributes)
{
	attrset(attributes);
	mvaddnstr(y, 0, text, width);
	if (attributes & A_REVERSE)
		for (int x = (int)strlen(text); x < width; x++)
			mvaddch(y, x, ' ');
	attrset(A_NORMAL);
}

/* What a terminal cell shows as one character and acts on as nothing: printable ASCII. The
 * rows are made so by top_view; these are the lines drawn besides them. */
static void
printable_ascii(char *text)
{
	for (char *p = text; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
}

/* The event feed: the latest events, newest first, on one line. */
static void
events_text(const struct top *top, char *buffer, size_t size)
{
	size_t length = 0;
	buffer[0] = '\0';
	for (size_t i = 0; i < top->events.count && length + 1 < size; i++) {
		int n = snprintf(buffer + length, size - length, "%s%s", i ? "  |  " : "",
				 top->events.lines[i]);
		if (n < 0)
			break;
		length += (size_t)n;
	}
	printable_ascii(buffer);
}

static void
draw(struct top *top)
{
	int height, width;
	getmaxyx(stdscr, height, width);
	if (height <= 0 || width <= 0)
		return;
	struct top_lines header, rows;
	if (top_view_render(top->status, top->tree.count ? &top->tree : NULL, top->sort,
			    (size_t)width, &header, &rows) < 0)
		return;
	erase();
	int y = 0;
	for (size_t i = 0; i < header.count && y < height; i++, y++)
		draw_line(y, width, header.lines[i].text, style_attributes(header.lines[i].style));
	/* The body: what is left above the event feed, the bottom line and the log pane. */
	size_t page = height - y > 2 ? (size_t)(height - y - 2) : 0;
	int pane = top->logs.shown ? (int)(page / 2 < TOP_LOG_LINES ? page / 2 : TOP_LOG_LINES) : 0;
	page -= (size_t)pane;
	/* With the log pane, any row can be scrolled to the top: its worker is the one shown. */
	size_t keep = pane ? 1 : page;
	size_t last = rows.count > keep ? rows.count - keep : 0;
	if (top->scroll > last)
		top->scroll = last;
	top->page = page;
	size_t selected =
	    pane ? top_logs_select(&top->logs, top->status, &rows, top->scroll) : SIZE_MAX;
	for (size_t i = 0; i < page && top->scroll + i < rows.count; i++, y++) {
		const struct top_line *line = &rows.lines[top->scroll + i];
		draw_line(y, width, line->text,
			  style_attributes(line->style) |
			      (top->scroll + i == selected ? A_BOLD : 0));
	}
	if (pane)
		top_logs_draw(&top->logs, height - 2 - pane, pane, width);
	char text[2048];
	if (height >= 2) {
		events_text(top, text, sizeof(text));
		draw_line(height - 2, width, text, A_NORMAL);
	}
	if (top->confirming)
		snprintf(text, sizeof(text),
			 "Rolling restart of every service: new workers first, the old ones stop "
			 "once the new are ready. Go ahead? (y/n)");
	else if (top->message[0])
		printable_ascii(strcpy(text, top->message));
	else
		snprintf(
		    text, sizeof(text),
		    "q quit  s sort (%s)  r rolling restart  l logs  Up/Down PgUp/PgDn scroll  "
		    "rows %zu-%zu of %zu",
		    top_sort_name(top->sort), rows.count ? top->scroll + 1 : 0,
		    top->scroll + page < rows.count ? top->scroll + page : rows.count, rows.count);
	draw_line(height - 1, width, text, A_REVERSE);
	top_lines_free(&header);
	top_lines_free(&rows);
	refresh();
}

/* Waits for one reply on link until deadline (monotonic seconds). */
static int
receive_blocking(struct top_link *link, double deadline, json_t **ret_reply)
{
	for (;;) {
		int r = top_link_receive(link, ret_reply);
		if (r != 0)
			return r;
		double left = deadline - loop_now_seconds();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = link->fd, .events = POLLIN};
		if (poll(&p, 1, (int)(left * 1000) + 1) < 0 && errno != EINTR)
			return -errno;
	}
}

/* Not a terminal: one snapshot in the same table, for scripts and tests, by deadline (monotonic
 * seconds, timeout after the start). */
static int
snapshot(struct top_link *link, const char *socket, double timeout, double deadline)
{
	json_t *status = NULL, *metrics = NULL;
	int r = top_link_ask(link, COMMAND_STATUS);
	if (r == 0)
		r = top_link_ask(link, COMMAND_METRICS);
	if (r == 0)
		r = receive_blocking(link, deadline, &status);
	if (r >= 0)
		r = receive_blocking(link, deadline, &metrics);
	if (r == -ETIMEDOUT)
		fprintf(stderr, "aerie supervisor: no answer from %s within %g s\n", socket,
			timeout);
	else if (r < 0)
		fprintf(stderr, "aerie supervisor: %s: %s\n", socket,
			r == -ECONNRESET ? "connection closed before a reply" : strerror(-r));
	if (r < 0) {
		json_decref(status);
		return r == -ETIMEDOUT ? EXIT_FAILED : EXIT_UNREACHABLE;
	}
	struct metrics_tree tree = {0};
	int code = EXIT_OK;
	if (metrics_json_parse(metrics, &tree) < 0) {
		const char *message = json_string_value(
		    json_object_get(json_object_get(metrics, "error"), "message"));
		char text[400];
		fprintf(stderr, "aerie supervisor: no metrics: %s\n",
			message ? escape_copy(message, text, sizeof(text))
				: "not an object keyed by pid");
		code = EXIT_FAILED;
	}
	struct top_lines header, rows;
	if (code == EXIT_OK &&
	    top_view_render(status, &tree, TOP_SORT_CPU, 0, &header, &rows) == 0) {
		for (size_t i = 0; i < header.count; i++)
			puts(header.lines[i].text);
		for (size_t i = 0; i < rows.count; i++)
			puts(rows.lines[i].text);
		top_lines_free(&header);
		top_lines_free(&rows);
		if (fflush(stdout) != 0)
			code = EXIT_FAILED;
	}
	metrics_tree_free(&tree);
	json_decref(status);
	json_decref(metrics);
	return code;
}

static int
run_screen(struct top *top)
{
	/* Blocked before ncurses starts: its own WINCH handler then never runs, and these
	 * arrive on the loop, where leaving restores the terminal on the normal path. */
	static const int signals[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH};
	int r = loop_new(&top->loop);
	if (r == 0) {
		r = loop_signals(top->loop, signals, sizeof(signals) / sizeof(signals[0]),
				 on_signal, top);
		if (r < 0)
			loop_free(top->loop);
	}
	if (r < 0) {
		fprintf(stderr, "aerie supervisor: top: %s\n", strerror(-r));
		return EXIT_FAILED;
	}
	SCREEN *screen = newterm(NULL, stdout, stdin);
	if (!screen) {
		fprintf(stderr, "aerie supervisor: top: cannot drive terminal type '%s'\n",
			getenv("TERM") ?: "(TERM unset)");
		loop_free(top->loop);
		return EXIT_FAILED;
	}
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	set_escdelay(25);
	(void)curs_set(0);
	loop_timer_init(&top->tick, on_tick, top);
	r = loop_add(top->loop, STDIN_FILENO, EPOLLIN, on_stdin, top);
	if (r == 0)
		r = loop_add(top->loop, top->link.fd, EPOLLIN, on_link, top);
	if (r == 0) {
		top_events_add(&top->events, time(NULL), "watching %s every %g s", top->socket,
			       top->interval);
		on_tick(top->loop, top);
		r = loop_run(top->loop);
	}
	endwin();
	delscreen(screen);
	loop_timer_stop(top->loop, &top->tick);
	top_logs_close(&top->logs, top->loop);
	loop_free(top->loop);
	if (r < 0)
		fprintf(stderr, "aerie supervisor: top: %s\n", strerror(-r));
	return r < 0 ? EXIT_FAILED : EXIT_OK;
}

int
cmd_top(const char *socket, double interval, double timeout, uid_t owner)
{
	struct top top = {.socket = socket,
			  .owner = owner,
			  .interval = interval,
			  .link = TOP_LINK_INIT,
			  .restart = TOP_LINK_INIT,
			  .logs = {.link = TOP_LINK_INIT, .worker = -1}};
	top.logs.changed = draw;
	top.logs.top = &top;
	char error[400];
	double deadline = loop_now_seconds() + timeout;
	/* The first connection must work: a wrong path or a socket not to be trusted is better
	 * told at once than retried on a blank screen. Later losses are shown and retried. */
	if (top_link_connect(&top.link, socket, timeout, owner, error, sizeof(error)) < 0) {
		fprintf(stderr, "aerie supervisor: %s\n", error);
		return EXIT_UNREACHABLE;
	}
	int code =
	    interactive() ? run_screen(&top) : snapshot(&top.link, socket, timeout, deadline);
	top_link_close(&top.link);
	top_link_close(&top.restart);
	json_decref(top.status);
	json_decref(top.round_status);
	metrics_tree_free(&top.tree);
	top_events_free(&top.events);
	return code;
}
