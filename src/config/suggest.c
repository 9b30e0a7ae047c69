/* suggest: "did you mean" for unknown keys and sections, from the edit distance to known ones. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/parser.h"

/* Optimal string alignment distance (Levenshtein plus transpositions), for suggestions. Long
 * strings are never close to a key, so they are not compared. */
unsigned
suggest_distance(const char *a, const char *b)
{
	enum { MAX = 32 };
	size_t la = strlen(a), lb = strlen(b);
	if (la >= MAX || lb >= MAX)
		return MAX;
	unsigned d[MAX + 1][MAX + 1];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (unsigned)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			unsigned cost = a[i - 1] != b[j - 1];
			unsigned best = d[i - 1][j - 1] + cost;
			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

int
suggest_unknown_key(struct parser *p, const char *name)
{
	const struct key_info *best = NULL;
	unsigned best_distance = 3;
	for (size_t i = 0; i < KEY__MAX; i++) {
		unsigned distance = suggest_distance(name, keys_table[i].name);
		if (keys_table[i].section == p->section && distance < best_distance) {
			best = &keys_table[i];
			best_distance = distance;
		}
	}
	if (best)
		return parser_fail(p, "unknown key \"%s\" in [%s] (did you mean \"%s\"?)", name,
				   p->section_name, best->name);
	const struct key_info *elsewhere =
	    keys_find(p->section == SECTION_HOST ? SECTION_SERVICE : SECTION_HOST, name);
	if (elsewhere)
		return parser_fail(
		    p, "unknown key \"%s\" in [%s] (it belongs in %s)", name, p->section_name,
		    elsewhere->section == SECTION_HOST ? "[host]" : "a [service:NAME] section");
	return parser_fail(p, "unknown key \"%s\" in [%s]", name, p->section_name);
}

int
suggest_unknown_section(struct parser *p, const char *name)
{
	const char *colon = strchr(name, ':');
	if (colon && parser_service_name_valid(colon + 1)) {
		char *prefix = strndup(name, (size_t)(colon - name));
		if (!prefix)
			return parser_fail_errno(p, -ENOMEM);
		unsigned distance = suggest_distance(prefix, "service");
		free(prefix);
		if (distance <= 2)
			return parser_fail(p, "unknown section [%s] (did you mean [service:%s]?)",
					   name, colon + 1);
	}
	if (suggest_distance(name, "host") <= 2)
		return parser_fail(p, "unknown section [%s] (did you mean [host]?)", name);
	if (parser_service_name_valid(name))
		return parser_fail(p, "unknown section [%s] (did you mean [service:%s]?)", name,
				   name);
	return parser_fail(p, "unknown section [%s] (expected [host] or [service:NAME])", name);
}
