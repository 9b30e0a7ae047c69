/* fixture: the unit tests' files under $FIXTURES (tests/unit/fixtures), read whole. */
#pragma once

#include <stddef.h>

/* $FIXTURES/FOLDER/NAME into path (fails the test if FIXTURES is unset). */
void fixture_path(const char *folder, const char *name, char *path, size_t size);

/* The whole file at path, NUL-terminated, in a malloc'd buffer, its length in *ret_length (if
 * not NULL). NULL if it can't be opened; a read error fails the test. */
char *fixture_read(const char *path, size_t *ret_length);
