"""gunicorn settings shared by `make run` (bin/serve), the Dockerfile and docker-compose.

`gunicorn -c python:cskpi.gunicorn_conf cskpi.wsgi:application --bind HOST:PORT`.
"""

import os

from cskpi.runtime import gc_tune

worker_class = "cskpi.gunicorn_worker.HardenedThreadWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# A slow client holds one thread (until CSKPI_CLIENT_READ_SECONDS), never a whole worker.
threads = int(os.environ.get("WEB_THREADS", "16"))
worker_connections = 1000
timeout = 60  # a worker silent this long is restarted (the statement timeout ends queries at 30 s)
graceful_timeout = 30
keepalive = 5
# Request-line and header limits (gunicorn answers 414/431 as JSON, see cskpi.gunicorn_worker).
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
# X-Forwarded-Proto and friends count only from these addresses (none unless CSKPI_TRUSTED_PROXY).
forwarded_allow_ips = os.environ.get("CSKPI_TRUSTED_PROXY", "").strip()
# Never the debug pages when gunicorn serves, whatever the environment says (settings enforce it too).
raw_env = ["DJANGO_DEBUG=false"]
accesslog = "-"
# No control socket: its default path is per user, shared by every gunicorn the user starts.
control_socket_disable = True


def post_worker_init(worker):
    """Each worker, once the application is loaded: what it loaded is frozen out of the cyclic
    collector's walks (cskpi.runtime)."""
    gc_tune()
