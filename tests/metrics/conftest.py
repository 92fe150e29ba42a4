import pytest
from django.conf import settings
from django.core.cache import cache

from metrics.services import KICK_FLAG
from tests.processes import service_env, start_worker


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path):
    """A real `celery -A cskpi worker` on the pytest database and the configured Redis; stopped after."""
    from cskpi.celery import app

    app.control.purge()  # no message an earlier run left in the broker reaches this worker
    cache.delete(KICK_FLAG)
    process = start_worker(tmp_path, service_env(redis_url=settings.REDIS_URL), pool="solo")
    yield process
    process.stop()
