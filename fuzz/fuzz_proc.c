/* libFuzzer target: the /proc parsers and the notify datagram parser, on arbitrary text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/notify.h"
#include "metrics/metrics_json.h"
#include "metrics/proc_parse.h"

static int
count_pid(pid_t pid, void *data)
{
	(void)pid;
	(*(size_t *)data)++;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	struct metrics_stat stat;
	struct metrics_memory memory;
	size_t children = 0;
	(void)metrics_parse_stat(text, &stat);
	(void)metrics_parse_smaps_rollup(text, &memory);
	(void)metrics_parse_children(text, count_pid, &children);

	/* The command encoder: any argv bytes must come out as valid JSON. */
	char *command = metrics_command_from_cmdline((const char *)data, size, "comm", 'S');
	if (command) {
		struct metrics_process process = {.pid = 1, .command = command};
		struct metrics_tree tree = {.processes = &process, .count = 1, .capacity = 1};
		char *json;
		ssize_t length = metrics_json_encode(&tree, &json);
		if (length >= 0) {
			json_error_t error;
			json_t *parsed = json_loadb(json, (size_t)length, 0, &error);
			if (!parsed)
				abort(); /* the encoder wrote something that is not JSON */
			json_decref(parsed);
			free(json);
		}
		free(command);
	}

	struct notify_message message = {0};
	notify_parse(text, &message);
	free(text);
	return 0;
}
