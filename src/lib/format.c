/* format: human renderings of sizes and durations for tables. */
#include "lib/format.h"

#include <stdio.h>

char *
format_size(uint64_t bytes, char *buffer, size_t size)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
	if (bytes < 1024) {
		snprintf(buffer, size, "%u B", (unsigned)bytes);
		return buffer;
	}
	double value = (double)bytes / 1024.0;
	size_t unit = 0;
	while (value >= 1024.0 && unit + 1 < sizeof(units) / sizeof(units[0])) {
		value /= 1024.0;
		unit++;
	}
	snprintf(buffer, size,
		 value < 10    ? "%.2f %s"
		 : value < 100 ? "%.1f %s"
			       : "%.0f %s",
		 value, units[unit]);
	return buffer;
}

char *
format_duration(double seconds, char *buffer, size_t size)
{
	unsigned long long total = seconds > 0 ? (unsigned long long)seconds : 0;
	unsigned long long days = total / 86400, hours = total / 3600 % 24;
	unsigned long long minutes = total / 60 % 60, secs = total % 60;
	if (days)
		snprintf(buffer, size, "%llu-%02llu:%02llu:%02llu", days, hours, minutes, secs);
	else if (hours)
		snprintf(buffer, size, "%02llu:%02llu:%02llu", hours, minutes, secs);
	else
		snprintf(buffer, size, "%02llu:%02llu", minutes, secs);
	return buffer;
}
