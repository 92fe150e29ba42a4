"""Celery's prefork pool, replacing a pool process that died at once instead of up to 5 s later.

The pool's main process learns a child died when the child's sentinel pipe closes, then reaps it
(`waitpid`) and forks a replacement. The pipe closes while the kernel is still tearing the child
down, before `waitpid` can see it exit; when the main process is that quick the child is not
reaped, its sentinel is no longer watched, and only the pool's 5-second maintenance timer finds it
(celery/celery#9588). Measured here: 5 of 6 SIGKILLs of a busy pool process were noticed 2.9 s
late, with the recompute stalled meanwhile. After a sentinel fires this pool tries again every
10 ms, for at most a second, until the child is reaped; the timer stays as the last resort.

Selected by `CELERY_WORKER_POOL` (settings); `--pool prefork` on the command line picks it too.
"""

from celery.concurrency import asynpool, prefork

REAP_RETRY_SECONDS = 0.01
REAP_RETRIES = 100


class AsynPool(asynpool.AsynPool):
    def _event_process_exit(self, hub, proc):
        super()._event_process_exit(hub, proc)
        self._reap_until_gone(hub, proc, REAP_RETRIES)

    def _reap_until_gone(self, hub, proc, retries: int) -> None:
        """Maintain the pool again shortly while `proc` has exited but is not reaped yet."""
        if proc not in self._pool or not retries:
            return
        if proc.exitcode is not None:  # reapable now: reap it and fork its replacement
            self.maintain_pool()
            return
        hub.call_later(REAP_RETRY_SECONDS, self._reap_until_gone, hub, proc, retries - 1)


class TaskPool(prefork.TaskPool):
    Pool = AsynPool
