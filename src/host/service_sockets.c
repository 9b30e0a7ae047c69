/* service_sockets: the listening sockets of a service, bound once and passed to every worker. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/listen.h"
#include "host/service.h"
#include "lib/log.h"

void
service_close_sockets(struct service *service)
{
	for (size_t i = 0; i < service->listen_count; i++) {
		/* A socket from the service manager is its to remove, not ours. */
		if (service->listen_adopted[i])
			close(service->listen_fds[i]);
		else
			listen_close(service->listen_specs[i], service->listen_directory,
				     service->listen_fds[i], &service->listen_files[i]);
		free(service->listen_specs[i]);
	}
	free(service->listen_fds);
	free(service->listen_adopted);
	service->listen_adopted = NULL;
	free(service->listen_specs);
	service->listen_specs = NULL;
	free(service->listen_files);
	service->listen_files = NULL;
	free(service->listen_names);
	free(service->listen_directory);
	service->listen_fds = NULL;
	service->listen_names = service->listen_directory = NULL;
	service->listen_count = 0;
}

int
service_open_sockets(struct service *service, const char *directory,
		     struct listen_inherited *inherited, char *error, size_t error_size)
{
	const struct config_service *config = service->config;
	if (config->listen_count == 0)
		return 0;
	size_t name_length = strlen(service->name) + 1;
	service->listen_count = 0; /* counts the sockets open, for closing on failure */
	service->listen_fds = calloc(config->listen_count, sizeof(int));
	service->listen_adopted = calloc(config->listen_count, sizeof(bool));
	service->listen_specs = calloc(config->listen_count, sizeof(char *));
	service->listen_files = calloc(config->listen_count, sizeof(struct unixsock_file));
	service->listen_names = calloc(config->listen_count, name_length);
	service->listen_directory = strdup(directory);
	if (!service->listen_fds || !service->listen_adopted || !service->listen_specs ||
	    !service->listen_files || !service->listen_names || !service->listen_directory) {
		service_close_sockets(service);
		snprintf(error, error_size, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < config->listen_count; i++) {
		char *spec = strdup(config->listen[i]);
		int adopted = spec ? listen_adopt(inherited, spec, directory) : -1;
		service->listen_adopted[i] = adopted >= 0;
		service->listen_fds[i] = adopted;
		int r = !spec	       ? -ENOMEM
			: adopted >= 0 ? 0
				       : listen_open(spec, directory, &service->listen_fds[i],
						     &service->listen_files[i], error, error_size);
		if (r < 0) {
			free(spec);
			service_close_sockets(service);
			return r;
		}
		service->listen_specs[service->listen_count++] = spec;
		/* systemd's FileDescriptorName: here, the service's name for each socket. */
		if (i > 0)
			strcat(service->listen_names, ":");
		strcat(service->listen_names, service->name);
		log_info("%s: listening on %s%s", service->name, config->listen[i],
			 service->listen_adopted[i] ? " (socket from the service manager)" : "");
	}
	return 0;
}
