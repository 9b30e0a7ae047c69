/* logs: what the host keeps of its workers' output: each service's last log_lines lines in a
 * ring allocated once, its log_file (logs_file.c), and the `logs -f` clients.
 *
 * The ring is log_lines entries and a circular text arena of log_lines x LOGS_LINE_AVERAGE
 * bytes that the lines' text is laid out in one after the other (a line that does not fit
 * before the arena's end starts again at its start). Adding a line forgets the oldest ones
 * whose text it needs the room of: the last log_lines lines are kept while they average
 * LOGS_LINE_AVERAGE bytes or less, fewer when they are longer, and memory is fixed either way.
 * A line longer than LOGS_LINE_MAX is cut there and marked "cut".
 *
 * A following client is a position in each ring it follows and nothing more. The host sends it
 * what lies between that position and the ring's end in batches of at most one datagram, and
 * at most LOGS_FOLLOW_WINDOW batches before the supervisor process says it wrote one to the
 * client: so what the host holds for a client is bounded (the channel queue has at most the
 * window), it never waits for one, and a client that reads slower than the workers write finds
 * its position overrun by the ring. It then gets {"missed":N,"service":S} where the lines were
 * and goes on from the oldest line kept: every line in order, or a counted gap, never a silent
 * one. */
#include "host/logs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host/logs_file.h"
#include "host/service.h"
#include "lib/channel.h"
#include "lib/json_out.h"
#include "lib/limits.h"
#include "lib/log.h"
#include "lib/loop.h"

struct logs_entry {
	double time; /* CLOCK_REALTIME */
	int pid;
	unsigned worker;
	uint32_t offset; /* of its text in the arena */
	unsigned short length;
	unsigned char stream;
	bool cut;
};

struct logs {
	char *service;
	struct logs_entry *ring;
	size_t capacity;
	char *arena;
	size_t arena_size;
	size_t head;	/* where the newest line's text ends */
	uint64_t first; /* the oldest line kept; == next when none is */
	uint64_t next;	/* lines ever added; the newest is next - 1 */
	bool has_file;
	bool dirty; /* lines this turn: in the flush list */
	struct logs *dirty_next;
	struct logs_file file;
};

/* One `logs -f` client: its position in each ring it follows. */
struct follower {
	struct follower *next;
	struct control *control;
	struct control_ticket ticket;
	int worker; /* -1: all */
	unsigned in_flight;
	size_t count;
	struct {
		struct logs *logs; /* NULL: that service is gone */
		uint64_t cursor;
	} parts[];
};

/* The host's, one list for all services: followers are few (LOGS_MAX_FOLLOWERS). */
static struct follower *followers;
static size_t follower_count;
static struct logs *dirty_list;

int
logs_new(const struct config_service *config, struct logs **ret_logs)
{
	struct logs *logs = calloc(1, sizeof(*logs));
	if (!logs)
		return -ENOMEM;
	logs->service = strdup(config->name);
	logs->capacity = config->log_lines;
	logs->arena_size = logs->capacity * LOGS_LINE_AVERAGE;
	if (logs->capacity && logs->arena_size < 2 * LOGS_LINE_MAX)
		logs->arena_size = 2 * LOGS_LINE_MAX;
	logs->ring = logs->capacity ? calloc(logs->capacity, sizeof(*logs->ring)) : NULL;
	logs->arena = logs->capacity ? malloc(logs->arena_size) : NULL;
	if (!logs->service || (logs->capacity && (!logs->ring || !logs->arena))) {
		free(logs->service);
		free(logs->ring);
		free(logs->arena);
		free(logs);
		return -ENOMEM;
	}
	logs->file.fd = logs->file.directory = -1;
	if (config->log_file) {
		logs->has_file = true;
		int r = logs_file_open(&logs->file, config->log_file, config->log_max_size,
				       config->log_keep);
		if (r == -ENOMEM) {
			logs_free(logs);
			return r;
		}
	}
	*ret_logs = logs;
	return 0;
}

static void
forget_dirty(struct logs *logs)
{
	for (struct logs **p = &dirty_list; *p; p = &(*p)->dirty_next)
		if (*p == logs) {
			*p = logs->dirty_next;
			break;
		}
}

void
logs_free(struct logs *logs)
{
	if (!logs)
		return;
	if (logs->dirty)
		forget_dirty(logs);
	for (struct follower *f = followers; f; f = f->next)
		for (size_t i = 0; i < f->count; i++)
			if (f->parts[i].logs == logs)
				f->parts[i].logs = NULL;
	if (logs->has_file)
		logs_file_close(&logs->file);
	free(logs->ring);
	free(logs->arena);
	free(logs->service);
	free(logs);
}

/* "2026-12-02T00:20:10.123456Z", the second's part formatted once per second. */
static void
format_time(double time, char buffer[32])
{
	static time_t cached_second = -1;
	static char cached[24];
	time_t second = (time_t)time;
	if (second != cached_second) {
		struct tm tm;
		(void)gmtime_r(&second, &tm);
		(void)strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S", &tm);
		cached_second = second;
	}
	double fraction = (time - (double)second) * 1e6;
	unsigned micros = fraction < 0 ? 0 : fraction > 999999 ? 999999 : (unsigned)fraction;
	/* By hand, as the rest of a line's hot path: printf was most of its cost. */
	// NOLINTNEXTLINE(bugprone-not-null-terminated-result): counted, not a C string
	memcpy(buffer, cached, 19);
	buffer[19] = '.';
	for (int i = 25; i >= 20; i--, micros /= 10)
		buffer[i] = (char)('0' + micros % 10);
	buffer[26] = 'Z';
	buffer[27] = '\0';
}

static char *
append(char *p, const char *text)
{
	size_t n = strlen(text);
	// NOLINTNEXTLINE(bugprone-not-null-terminated-result): counted, not a C string
	memcpy(p, text, n);
	return p + n;
}

static char *
append_unsigned(char *p, unsigned long value)
{
	char digits[24];
	size_t n = 0;
	do
		digits[n++] = (char)('0' + value % 10);
	while ((value /= 10) > 0);
	while (n > 0)
		*p++ = digits[--n];
	return p;
}

/* Whether the text of the entry at offset is in the room [head, end) that a new line takes,
 * which wrapped to the arena's start when wrapped. The oldest lines' text follows head, in
 * order, so forgetting the oldest until this is false frees exactly that room. */
static bool
in_room(const struct logs *logs, uint32_t offset, size_t end, bool wrapped)
{
	if (wrapped)
		return offset >= logs->head || offset < end;
	return offset >= logs->head && offset < end;
}

static void
ring_add(struct logs *logs, const struct worker *worker, enum worker_stream stream, double now,
	 const char *text, size_t length)
{
	size_t kept = length < LOGS_LINE_MAX ? length : LOGS_LINE_MAX;
	/* An empty line takes a byte all the same: every entry has room of its own, so that the
	 * oldest entry's text is always the one right after head. */
	size_t room = kept ? kept : 1;
	bool wrapped = logs->head + room > logs->arena_size;
	size_t start = wrapped ? 0 : logs->head;
	if (logs->next - logs->first == logs->capacity)
		logs->first++;
	while (
	    logs->first < logs->next &&
	    in_room(logs, logs->ring[logs->first % logs->capacity].offset, start + room, wrapped))
		logs->first++;
	struct logs_entry *entry = &logs->ring[logs->next % logs->capacity];
	*entry = (struct logs_entry){now,
				     (int)worker->output_pid,
				     worker->index,
				     (uint32_t)start,
				     (unsigned short)kept,
				     (unsigned char)stream,
				     kept < length};
	memcpy(logs->arena + start, text, kept);
	logs->head = start + room;
}

/* output.c's sink: a worker's line to its service's logs (none for the supervisor process). */
static void
sink_line(const struct worker *worker, enum worker_stream stream, const char *text, size_t length)
{
	logs_line(worker->service ? worker->service->logs : NULL, worker, stream, text, length);
}

const struct worker_output_sink logs_sink = {sink_line, logs_pump, logs_flush};

void
logs_line(struct logs *logs, const struct worker *worker, enum worker_stream stream,
	  const char *text, size_t length)
{
	bool error = stream == WORKER_STDERR;
	struct log_worker who = {worker->label, logs ? logs->service : NULL, worker->index,
				 (int)worker->output_pid, error};
	log_worker_line(error ? LOG_WARN : LOG_INFO, &who, text, length);
	if (!logs)
		return;
	double now = loop_realtime_seconds();
	if (logs->capacity)
		ring_add(logs, worker, stream, now, text, length);
	else
		logs->first = logs->next + 1;
	logs->next++;
	if (logs->has_file) {
		/* TIME web.2[PID] text, as `logs` prints it; the bytes as the worker wrote them. */
		char line[WORKER_OUTPUT_LINE_MAX + 128];
		char time[32];
		format_time(now, time);
		char *p = append(line, time);
		*p++ = ' ';
		p = append(p, worker->label);
		*p++ = '[';
		p = append_unsigned(p, (unsigned long)worker->output_pid);
		p = append(p, error ? "] stderr: " : "] ");
		size_t prefix = (size_t)(p - line);
		if (length > sizeof(line) - prefix - 1)
			length = sizeof(line) - prefix - 1;
		memcpy(line + prefix, text, length);
		line[prefix + length] = '\n';
		logs_file_append(&logs->file, line, prefix + length + 1);
	}
	if (!logs->dirty) {
		logs->dirty = true;
		logs->dirty_next = dirty_list;
		dirty_list = logs;
	}
}

/* One line as its frame's JSON (NUL-terminated); returns its length. buffer holds
 * LOGS_FRAME_MAX bytes. */
#define LOGS_FRAME_MAX (LOGS_LINE_MAX * 6 + 512)
static size_t
encode_entry(char *buffer, const struct logs *logs, const struct logs_entry *entry)
{
	const char *service = logs->service;
	char time[32];
	format_time(entry->time, time);
	/* The service's name is a config name: letters, digits and -_. only. */
	char *p = append(buffer, "{\"service\":\"");
	p = append(p, service);
	p = append(p, "\",\"worker\":");
	p = append_unsigned(p, entry->worker);
	p = append(p, ",\"pid\":");
	p = append_unsigned(p, (unsigned long)entry->pid);
	p = append(p, entry->stream == WORKER_STDERR ? ",\"stream\":\"stderr\",\"time\":\""
						     : ",\"stream\":\"stdout\",\"time\":\"");
	p = append(p, time);
	p = append(p, "\",\"line\":\"");
	size_t length = log_json_string(buffer, (size_t)(p - buffer), LOGS_FRAME_MAX - 32,
					logs->arena + entry->offset, entry->length);
	const char *end = entry->cut ? "\",\"cut\":true}" : "\"}";
	memcpy(buffer + length, end, strlen(end) + 1);
	return length + strlen(end);
}

static uint64_t
oldest(const struct logs *logs)
{
	return logs->first;
}

static const struct logs_entry *
entry_at(const struct logs *logs, uint64_t seq)
{
	return &logs->ring[seq % logs->capacity];
}

static void
follower_remove(struct follower *follower)
{
	for (struct follower **p = &followers; *p; p = &(*p)->next)
		if (*p == follower) {
			*p = follower->next;
			follower_count--;
			break;
		}
	free(follower);
}

/* Sends the follower what it has not had yet, while its window allows. */
static void
pump(struct follower *f)
{
	/* Half a datagram's bound: a batch always goes inline, never as a memfd. */
	static char batch[CHANNEL_MAX_DATAGRAM / 2];
	static char frame[LOGS_FRAME_MAX];
	if (!control_ticket_live(f->control, f->ticket)) {
		follower_remove(f); /* its supervisor process, and the client with it, are gone */
		return;
	}
	while (f->in_flight < LOGS_FOLLOW_WINDOW) {
		size_t length = 0;
		for (size_t i = 0; i < f->count; i++) {
			struct logs *logs = f->parts[i].logs;
			uint64_t *cursor = &f->parts[i].cursor;
			if (!logs)
				continue;
			if (*cursor < oldest(logs) && length + 128 < sizeof(batch)) {
				int n = snprintf(batch + length, sizeof(batch) - length,
						 "{\"missed\":%llu,\"service\":\"%s\"}",
						 (unsigned long long)(oldest(logs) - *cursor),
						 logs->service);
				length += (size_t)n + 1; /* with its NUL */
				*cursor = oldest(logs);
			}
			while (*cursor < logs->next && *cursor >= oldest(logs)) {
				const struct logs_entry *entry = entry_at(logs, *cursor);
				if (f->worker >= 0 && entry->worker != (unsigned)f->worker) {
					++*cursor;
					continue;
				}
				size_t n = encode_entry(frame, logs, entry);
				if (length + n + 1 > sizeof(batch))
					break;
				memcpy(batch + length, frame, n + 1);
				length += n + 1;
				++*cursor;
			}
		}
		if (length == 0)
			return;
		int r = control_send_logs(f->control, f->ticket, batch, length);
		if (r < 0) {
			/* Its supervisor process (and the client with it) is gone. */
			follower_remove(f);
			return;
		}
		f->in_flight++;
	}
}

void
logs_pump(void)
{
	for (struct follower *f = followers, *next; f; f = next) {
		next = f->next;
		pump(f);
	}
}

void
logs_flush(void)
{
	log_flush();
	bool any = dirty_list != NULL;
	while (dirty_list) {
		struct logs *logs = dirty_list;
		dirty_list = logs->dirty_next;
		logs->dirty = false;
		if (logs->has_file)
			logs_file_flush(&logs->file);
	}
	if (any)
		logs_pump();
}

void
logs_reopen(struct logs *logs)
{
	if (logs && logs->has_file)
		logs_file_reopen(&logs->file);
}

unsigned long long
logs_dropped(const struct logs *logs)
{
	return logs && logs->has_file ? logs->file.dropped : 0;
}

ssize_t
logs_encode(struct logs *const *services, size_t count, int worker, unsigned lines, char **ret_text)
{
	uint64_t *cursors = calloc(count ? count : 1, sizeof(*cursors));
	if (!cursors)
		return -ENOMEM;
	/* Each service's start: its last `lines` matching lines. */
	size_t total = 0;
	for (size_t i = 0; i < count; i++) {
		const struct logs *logs = services[i];
		uint64_t seq = logs->next;
		size_t found = 0;
		while (seq > oldest(logs) && found < lines) {
			seq--;
			if (worker < 0 || entry_at(logs, seq)->worker == (unsigned)worker)
				found++;
		}
		cursors[i] = seq;
		total += found;
	}
	size_t skip = total > lines ? total - lines : 0;
	struct json_out out = {0};
	static char frame[LOGS_FRAME_MAX];
	json_out_raw(&out, "{\"lines\":[");
	bool first = true;
	for (;;) {
		/* The oldest next line of all services. */
		size_t pick = count;
		for (size_t i = 0; i < count; i++) {
			const struct logs *logs = services[i];
			while (cursors[i] < logs->next && worker >= 0 &&
			       entry_at(logs, cursors[i])->worker != (unsigned)worker)
				cursors[i]++;
			if (cursors[i] < logs->next &&
			    (pick == count || entry_at(logs, cursors[i])->time <
						  entry_at(services[pick], cursors[pick])->time))
				pick = i;
		}
		if (pick == count)
			break;
		const struct logs_entry *entry = entry_at(services[pick], cursors[pick]++);
		if (skip > 0) {
			skip--;
			continue;
		}
		(void)encode_entry(frame, services[pick], entry);
		if (!first)
			json_out_raw(&out, ",");
		json_out_raw(&out, frame);
		first = false;
	}
	json_out_raw(&out, "]}");
	free(cursors);
	return json_out_finish(&out, ret_text);
}

void
logs_request(struct control *control, struct control_ticket ticket, struct logs *const *services,
	     size_t count, const char *service, const struct channel_arguments *arguments)
{
	struct logs *const *chosen = services;
	size_t chosen_count = count;
	if (service) {
		chosen_count = 0;
		for (size_t i = 0; i < count; i++)
			if (strcmp(services[i]->service, service) == 0) {
				chosen = &services[i];
				chosen_count = 1;
				break;
			}
		if (chosen_count == 0) {
			char message[PROTOCOL_MAX_SERVICE + 64];
			snprintf(message, sizeof(message), "no service named \"%s\"", service);
			control_reply_error(control, ticket, PROTOCOL_CODE_INVALID_REQUEST,
					    message);
			return;
		}
	}
	int worker = service ? arguments->worker : -1;
	char *text;
	ssize_t length = logs_encode(chosen, chosen_count, worker, arguments->lines, &text);
	if (length < 0) {
		control_reply_error(control, ticket, PROTOCOL_CODE_INTERNAL, "out of memory");
		return;
	}
	control_reply(control, ticket, text, (size_t)length);
	free(text);
	if (!(arguments->flags & CHANNEL_FOLLOW))
		return;
	struct follower *f = malloc(sizeof(*f) + chosen_count * sizeof(f->parts[0]));
	if (!f) {
		log_error("logs: out of memory for a following client");
		return;
	}
	*f = (struct follower){
	    .control = control, .ticket = ticket, .worker = worker, .count = chosen_count};
	for (size_t i = 0; i < chosen_count; i++) {
		f->parts[i].logs = chosen[i];
		f->parts[i].cursor = chosen[i]->next; /* the reply had everything before */
	}
	/* The supervisor process has at most as many clients; one more means an older follower
	 * whose cancel was lost with its supervisor process: the oldest goes. */
	if (follower_count == LOGS_MAX_FOLLOWERS) {
		struct follower *last = followers;
		while (last->next)
			last = last->next;
		follower_remove(last);
	}
	f->next = followers;
	followers = f;
	follower_count++;
}

static struct follower *
find(struct control_ticket ticket)
{
	for (struct follower *f = followers; f; f = f->next)
		if (f->ticket.id == ticket.id && f->ticket.epoch == ticket.epoch)
			return f;
	return NULL;
}

void
logs_acked(struct control_ticket ticket)
{
	struct follower *f = find(ticket);
	if (!f)
		return;
	if (f->in_flight > 0)
		f->in_flight--;
	pump(f);
}

void
logs_cancelled(struct control_ticket ticket)
{
	struct follower *f = find(ticket);
	if (f)
		follower_remove(f);
}
