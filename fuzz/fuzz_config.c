/* libFuzzer target: the config loader, on any file content (through a memfd, since it reads a
 * path). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config/config.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz.ini", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		char path[64], error[512];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		struct config config;
		if (config_load(path, &config, error, sizeof(error)) == 0)
			config_free(&config);
	}
	close(fd);
	return 0;
}
