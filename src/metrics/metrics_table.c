/* metrics_table: a captured tree as a ps/top-like table, indented as a tree, with totals. */
#include "metrics/metrics_table.h"

#include "lib/escape.h"
#include "lib/format.h"

/* A command as ps shows it: control characters, C1 controls included, and bytes that are not
 * UTF-8 as '?'. A capture replaces C0 controls already (metrics_command_from_cmdline), but not
 * the rest, and a tree parsed from another supervisor's JSON may carry any; this goes to a
 * terminal. */
static void
put_command(FILE *out, const char *command)
{
	escape_print(out, command);
	fputc('\n', out);
}

void
metrics_table_print(FILE *out, const struct metrics_tree *tree)
{
	uint64_t rss = 0, pss = 0, uss = 0;
	char vsz_text[16], rss_text[16], pss_text[16], uss_text[16], time_text[32],
	    elapsed_text[32];

	fprintf(out, "%7s %7s %7s %5s %10s %10s %10s %10s %9s %11s  %s\n", "PID", "PPID", "PGID",
		"%CPU", "VSZ", "RSS", "PSS", "USS", "TIME", "ELAPSED", "COMMAND");
	for (size_t i = 0; i < tree->count; i++) {
		const struct metrics_process *p = &tree->processes[i];
		rss += p->resident_size;
		if (p->has_memory) {
			pss += p->memory.proportional_size;
			uss += p->memory.unique_size;
		}
		fprintf(out, "%7d %7d %7d %5.1f %10s %10s %10s %10s %9s %11s  ", (int)p->pid,
			(int)p->ppid, (int)p->pgid, p->processor_utilization,
			format_size(p->virtual_size, vsz_text, sizeof(vsz_text)),
			format_size(p->resident_size, rss_text, sizeof(rss_text)),
			p->has_memory
			    ? format_size(p->memory.proportional_size, pss_text, sizeof(pss_text))
			    : "-",
			p->has_memory
			    ? format_size(p->memory.unique_size, uss_text, sizeof(uss_text))
			    : "-",
			format_duration(p->processor_time, time_text, sizeof(time_text)),
			format_duration(p->elapsed_time, elapsed_text, sizeof(elapsed_text)));
		/* Indented like `ps f`, so the tree reads top to bottom. */
		for (unsigned d = 1; d < p->depth; d++)
			fputs("    ", out);
		fputs(p->depth ? " \\_ " : "", out);
		put_command(out, p->command);
	}
	fprintf(out, "total: %zu process%s, RSS %s, PSS %s, USS %s\n", tree->count,
		tree->count == 1 ? "" : "es", format_size(rss, rss_text, sizeof(rss_text)),
		format_size(pss, pss_text, sizeof(pss_text)),
		format_size(uss, uss_text, sizeof(uss_text)));
}
