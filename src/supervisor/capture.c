/* capture: the host's tree for metrics requests, through one metrics reader kept across them
 * (metrics/metrics_pool.c): its threads and its kept /proc fds make a warm request cheaper
 * than a fresh capture. Both exist only while requests come: METRICS_IDLE_SECONDS after the
 * last one a timer ends the threads and closes the fds, and with them the timer is gone too,
 * so an idle supervisor process has no thread, no /proc fd and no deadline (0 wake-ups). The
 * threads start at a capture, always after sandbox_apply: they inherit its filter, its
 * capabilities and its file system ids, which Linux keeps per thread (see metrics_pool.c).
 *
 * Requests served in the same turn of the loop share one capture: all of them had reached the
 * socket when the turn's wait returned, before the capture began, so its tree is as fresh for
 * each as one of its own (those that asked together get the same answer), and clients asking
 * at once cost one capture, not one each. The tree is dropped before the loop waits again. */
#include <errno.h>
#include <sys/resource.h>

#include "lib/limits.h"
#include "lib/log.h"
#include "metrics/metrics.h"
#include "supervisor/private.h"

static void
on_idle(struct loop *loop, void *data)
{
	(void)loop;
	struct supervisor *supervisor = data;
	metrics_reader_idle(supervisor->metrics);
	log_debug("supervisor: no metrics request for %.0f s: capture threads ended, /proc fds "
		  "closed",
		  METRICS_IDLE_SECONDS);
}

/* Before the loop waits: the turn's tree is no one's any more. */
static void
on_before_wait(struct loop *loop, void *data)
{
	(void)loop;
	struct supervisor *supervisor = data;
	if (supervisor->metrics_shared) {
		metrics_tree_free(&supervisor->metrics_turn);
		supervisor->metrics_shared = false;
	}
}

void
capture_init(struct supervisor *supervisor)
{
	loop_timer_init(&supervisor->metrics_idle, on_idle, supervisor);
	loop_before_wait(supervisor->loop, on_before_wait, supervisor);
	/* Before the sandbox: getrlimit is not on its list. RLIM_INFINITY and a limit beyond
	 * an int's fds (no fd number is larger) come to the same. */
	struct rlimit limit;
	rlim_t fds = 1024;
	if (getrlimit(RLIMIT_NOFILE, &limit) == 0)
		fds = limit.rlim_cur > (rlim_t)INT32_MAX ? (rlim_t)INT32_MAX : limit.rlim_cur;
	supervisor->metrics_max_fds = (size_t)(fds / METRICS_CACHE_FD_SHARE);
}

int
capture_tree(struct supervisor *supervisor, const struct metrics_tree **ret_tree, bool *ret_fresh)
{
	*ret_tree = &supervisor->metrics_turn;
	*ret_fresh = !supervisor->metrics_shared;
	if (supervisor->metrics_shared)
		return 0;
	int r;
	if (!supervisor->metrics &&
	    metrics_reader_new(supervisor->metrics_max_fds, &supervisor->metrics) < 0)
		r = metrics_capture(supervisor->host_pid, METRICS_WALK_CHILDREN,
				    &supervisor->metrics_turn);
	else
		r = metrics_reader_capture(supervisor->metrics, supervisor->host_pid,
					   METRICS_WALK_CHILDREN, &supervisor->metrics_turn);
	/* Restarted at each request: it fires once they stop. */
	if (supervisor->metrics &&
	    loop_timer_start(supervisor->loop, &supervisor->metrics_idle, METRICS_IDLE_SECONDS) < 0)
		metrics_reader_idle(supervisor->metrics); /* no timer: keep nothing */
	if (r < 0)
		return r;
	supervisor->metrics_shared = true;
	return 0;
}

void
capture_close(struct supervisor *supervisor)
{
	loop_timer_stop(supervisor->loop, &supervisor->metrics_idle);
	on_before_wait(supervisor->loop, supervisor);
	metrics_reader_free(supervisor->metrics);
	supervisor->metrics = NULL;
}
