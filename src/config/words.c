/* words: a command line split into words as a shell would, and NULL-terminated string vectors. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/parser.h"

int
words_append(char ***vector, size_t *count, const char *value)
{
	char *copy = strdup(value);
	char **grown = copy ? realloc(*vector, (*count + 2) * sizeof(**vector)) : NULL;
	if (!grown) {
		free(copy);
		return -ENOMEM;
	}
	grown[(*count)++] = copy;
	grown[*count] = NULL;
	*vector = grown;
	return 0;
}

void
config_free_argv(char **argv)
{
	if (!argv)
		return;
	for (char **arg = argv; *arg; arg++)
		free(*arg);
	free(argv);
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

/* Reads one word starting at *text into word (large enough for all of text), advancing *text
 * past it. Returns its length, or -EINVAL with *ret_error set. */
static int
split_word(const char **text, char *word, const char **ret_error)
{
	const char *in = *text;
	char *out = word;
	while (*in && !is_blank(*in)) {
		if (*in == '\'') {
			const char *close = strchr(in + 1, '\'');
			if (!close)
				goto unterminated;
			memcpy(out, in + 1, (size_t)(close - in - 1));
			out += close - in - 1;
			in = close + 1;
		} else if (*in == '"') {
			for (in++; *in != '"'; in++) {
				if (*in == '\0')
					goto unterminated;
				if (*in == '\\' && in[1] && strchr("\"\\$`", in[1]))
					in++;
				*out++ = *in;
			}
			in++;
		} else if (*in == '\\') {
			if (in[1] == '\0') {
				*ret_error = "trailing backslash";
				return -EINVAL;
			}
			*out++ = in[1];
			in += 2;
		} else {
			*out++ = *in++;
		}
	}
	*text = in;
	return (int)(out - word);
unterminated:
	*ret_error = "unterminated quote";
	return -EINVAL;
}

int
config_split_command(const char *text, char ***ret_argv, const char **ret_error)
{
	char **argv = NULL;
	size_t count = 0;
	int r = 0;
	char *word = malloc(strlen(text) + 1);
	if (!word)
		return -ENOMEM;
	for (;;) {
		while (is_blank(*text))
			text++;
		if (*text == '\0')
			break;
		int length = split_word(&text, word, ret_error);
		if (length < 0) {
			r = length;
			goto out;
		}
		word[length] = '\0';
		if ((r = words_append(&argv, &count, word)) < 0)
			goto out;
	}
	if (count == 0) {
		*ret_error = "empty command";
		r = -EINVAL;
	} else if (argv[0][0] == '\0') {
		*ret_error = "empty program name";
		r = -EINVAL;
	}
out:
	free(word);
	if (r < 0) {
		config_free_argv(argv);
		return r;
	}
	*ret_argv = argv;
	return 0;
}
