/* format: human renderings of sizes and durations for tables. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* "512 B", "4.0 KiB", "12.3 MiB", "1.50 GiB". Returns buffer. */
char *format_size(uint64_t bytes, char *buffer, size_t size);
/* As ps prints etime/time: [[DD-]HH:]MM:SS. Returns buffer. */
char *format_duration(double seconds, char *buffer, size_t size);
