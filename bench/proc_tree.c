/* proc_tree: builds a tree of N sleeping processes (this one included) for bench/metrics.
 *
 * Half of the descendants hang directly off this root as `sleep` leaves; the other half come in
 * groups of six, a `sleep` with three `sleep` children and one more `sleep` that has a child of
 * its own, so the tree is three levels deep below the root. The root becomes a session and
 * process-group leader, so that one killpg() ends the whole tree, and each process asks for
 * SIGKILL when its parent dies, so that the tree also goes away if the benchmark is killed.
 *
 * Readiness: one O_CLOEXEC pipe is inherited by every descendant and closes when each execs,
 * so EOF on its read end means every process of the tree runs `sleep`. The root then prints
 * its pid on stdout and waits for a signal. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

static const char *seconds = "600";

static void
die_with_parent(pid_t parent)
{
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1); /* the parent died before prctl */
}

/* Forks a process that first forks `leaves` sleeping children and, if `nested`, one more
 * group of one leaf, then becomes `sleep` itself. Returns the child's pid or -1. */
static pid_t
spawn(int leaves, int nested)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	die_with_parent(parent);
	for (int i = 0; i < leaves; i++)
		if (spawn(0, 0) < 0)
			_exit(1);
	if (nested && spawn(1, 0) < 0)
		_exit(1);
	execl("/bin/sleep", "sleep", seconds, (char *)NULL);
	_exit(127);
}

int
main(int argc, char **argv)
{
	if (argc < 2 || argc > 3 || atoi(argv[1]) < 1) {
		fprintf(stderr, "usage: proc_tree N [SECONDS]\n");
		return 2;
	}
	int total = atoi(argv[1]);
	if (argc == 3)
		seconds = argv[2];
	(void)setsid();
	die_with_parent(getppid());

	int ready[2];
	if (pipe2(ready, O_CLOEXEC) < 0) {
		perror("proc_tree: pipe2");
		return 1;
	}
	int descendants = total - 1;
	int groups = descendants / 2 / 6;
	int leaves = descendants - groups * 6;
	for (int i = 0; i < groups; i++)
		if (spawn(3, 1) < 0) {
			perror("proc_tree: fork");
			return 1;
		}
	for (int i = 0; i < leaves; i++)
		if (spawn(0, 0) < 0) {
			perror("proc_tree: fork");
			return 1;
		}
	close(ready[1]);
	char byte;
	while (read(ready[0], &byte, 1) < 0 && errno == EINTR)
		;
	close(ready[0]);

	printf("%d\n", (int)getpid());
	fflush(stdout);
	for (;;)
		pause();
}
