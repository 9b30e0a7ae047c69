/* respawn_worker.c: the worker bench/respawn runs under each supervisor; it reports its start. */

/*
 * First thing in main() it reads CLOCK_MONOTONIC and sends "PID SECONDS.NANOSECONDS NAME" as one
 * datagram to the bench's unix socket, so that the bench can subtract the time at which it sent
 * the SIGKILL that made the supervisor start this one. Then, if NOTIFY_SOCKET is set, it sends
 * READY=1 there (sd_notify), and waits without using CPU until a signal ends it.
 *
 * The bench's socket is argv[1] ("@name" for the abstract namespace, or an absolute path). Without
 * such an argument (runit runs ./run with none, s6-supervise with the service's name) it is read
 * from the file respawn.addr in the working directory.
 *
 * `respawn_worker --floor COUNT PROGRAM [ARG]...` is instead the least a supervisor can do: it
 * runs COUNT copies of PROGRAM and, woken by SIGCHLD, reaps and vfork+execs a dead one's successor
 * at once. No logging, no pipes, no bookkeeping: the kernel's share of a respawn.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static socklen_t
unix_address(const char *path, struct sockaddr_un *ret_address)
{
	size_t length = strlen(path);
	if (length == 0 || length >= sizeof(ret_address->sun_path))
		return 0;
	memset(ret_address, 0, sizeof(*ret_address));
	ret_address->sun_family = AF_UNIX;
	memcpy(ret_address->sun_path, path, length);
	if (path[0] == '@')
		ret_address->sun_path[0] = '\0'; /* abstract: no trailing NUL counted */
	else
		length++;
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + length);
}

static void
send_to(const char *path, const char *message, size_t length)
{
	struct sockaddr_un address;
	socklen_t size = unix_address(path, &address);
	if (size == 0)
		return;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void)sendto(fd, message, length, 0, (struct sockaddr *)&address, size);
	(void)close(fd);
}

static pid_t
spawn(char **argv, const sigset_t *mask)
{
	/* vfork: no copy of the page tables, and the child runs at once (aerie does the same). */
	pid_t pid = vfork();
	if (pid == 0) {
		(void)sigprocmask(SIG_SETMASK, mask, NULL);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static int
floor_supervisor(int count, char **argv)
{
	sigset_t chld, old;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigaddset(&chld, SIGTERM);
	sigaddset(&chld, SIGINT);
	(void)sigprocmask(SIG_BLOCK, &chld, &old);
	for (int i = 0; i < count; i++)
		(void)spawn(argv, &old);
	for (;;) {
		int signal = sigwaitinfo(&chld, NULL);
		if (signal == SIGTERM || signal == SIGINT) {
			(void)kill(0, SIGKILL); /* our process group: the workers and us */
			return 0;
		}
		int status;
		while (waitpid(-1, &status, WNOHANG) > 0)
			(void)spawn(argv, &old);
	}
}

int
main(int argc, char **argv)
{
	struct timespec now;
	(void)clock_gettime(CLOCK_MONOTONIC, &now);

	if (argc > 3 && strcmp(argv[1], "--floor") == 0)
		return floor_supervisor(atoi(argv[2]), argv + 3);

	char path[108] = "";
	if (argc > 1 && (argv[1][0] == '@' || argv[1][0] == '/')) {
		snprintf(path, sizeof(path), "%s", argv[1]);
	} else {
		int fd = open("respawn.addr", O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			ssize_t n = read(fd, path, sizeof(path) - 1);
			path[n > 0 ? n : 0] = '\0';
			path[strcspn(path, "\n")] = '\0';
			(void)close(fd);
		}
	}

	const char *name = getenv("AERIE_WORKER");
	if (!name)
		name = getenv("SUPERVISOR_PROCESS_NAME");
	if (!name)
		name = "-";
	char message[160];
	int length = snprintf(message, sizeof(message), "%d %lld.%09ld %s", (int)getpid(),
			      (long long)now.tv_sec, now.tv_nsec, name);
	send_to(path, message, (size_t)length);

	const char *notify = getenv("NOTIFY_SOCKET");
	if (notify)
		send_to(notify, "READY=1", 7);

	for (;;)
		pause();
}
