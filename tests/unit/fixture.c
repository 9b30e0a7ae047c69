/* fixture: the unit tests' files under $FIXTURES, read whole (see fixture.h). */
#include "fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

void
fixture_path(const char *folder, const char *name, char *path, size_t size)
{
	const char *directory = getenv("FIXTURES");
	assert_non_null(directory);
	snprintf(path, size, "%s/%s/%s", directory, folder, name);
}

char *
fixture_read(const char *path, size_t *ret_length)
{
	FILE *file = fopen(path, "rb");
	if (!file)
		return NULL;
	size_t capacity = 4096, length = 0;
	char *text = malloc(capacity);
	assert_non_null(text);
	for (size_t n; (n = fread(text + length, 1, capacity - length - 1, file)) > 0;) {
		length += n;
		if (length + 1 == capacity) {
			capacity *= 2;
			text = realloc(text, capacity);
			assert_non_null(text);
		}
	}
	assert_int_equal(ferror(file), 0);
	fclose(file);
	text[length] = '\0';
	if (ret_length)
		*ret_length = length;
	return text;
}
