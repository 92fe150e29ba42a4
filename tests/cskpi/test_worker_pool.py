"""cskpi.worker_pool: a SIGKILLed pool process is replaced at once, not at celery's 5-second pool
maintenance (the race of celery/celery#9588 lost 5 times in 6 on this machine)."""

import os
import signal
from time import monotonic

import pytest
from django.conf import settings

from tests.processes import service_env, start_worker, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.fault, pytest.mark.django_db(transaction=True)]

KILLS = 6


def test_a_killed_pool_process_is_replaced_within_a_second(tmp_path):
    worker = start_worker(tmp_path, service_env(redis_url=settings.REDIS_URL), pool="prefork", concurrency=1)
    try:
        delays = []
        for _ in range(KILLS):
            (child,) = wait_until(worker.children, timeout=10, interval=0.01, what="a pool process")
            os.kill(child, signal.SIGKILL)
            killed_at = monotonic()
            wait_until(lambda killed=child: [pid for pid in worker.children() if pid != killed], timeout=10,
                       interval=0.01, what="a replacement pool process")
            delays.append(monotonic() - killed_at)
        output = worker.output()
    finally:
        worker.stop()
    assert output.count("exited with 'signal 9 (SIGKILL)'") == KILLS
    assert max(delays) < 1.0, delays
