/* commands: the requests of the supervisor protocol, named once for every process: the
 * protocol parser, the supervisor process, the host and the client. */
#pragma once

enum command {
	COMMAND_METRICS, /* answered by the supervisor process, from /proc */
	COMMAND_RESTART, /* a rolling restart, by the host (or, with a signal, a signal to it) */
	COMMAND_STATUS,	 /* the host's services and workers */
};
