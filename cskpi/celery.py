import os

from celery import Celery
from celery.signals import worker_init

from cskpi.runtime import gc_tune

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cskpi.settings")

app = Celery("cskpi")


@worker_init.connect
def _gc_tune(**kwargs):
    """The worker's main process, before its pool forks: the cyclic collector tuned as in the web workers
    (cskpi.runtime); every pool process, one started again after a kill too, inherits it without a
    collection of its own on the way to its first task."""
    gc_tune()


app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["metrics.alerting"])

# Periodic work lives here, in code. Each entry expires so a backlog of beats never piles up.
app.conf.beat_schedule = {
    "metrics-sweep-dirty-buckets": {
        "task": "metrics.tasks.sweep_dirty_buckets",
        # Every 2 s: after a worker dies mid-recompute its claims are free within a second or two
        # (its connection is gone), and this sweep is what picks them up again. Idle, it is one
        # indexed query.
        "schedule": float(os.environ.get("CSKPI_SWEEP_SECONDS", "2")),
        "options": {"expires": 10},
    },
    "ingestion-service-levels-sweep": {
        "task": "ingestion.tasks.service_levels_sweep",
        "schedule": float(os.environ.get("CSKPI_SLA_SWEEP_SECONDS", "30")),
        "options": {"expires": float(os.environ.get("CSKPI_SLA_SWEEP_SECONDS", "30"))},
    },
    "metrics-evaluate-alerts": {
        "task": "metrics.alerting.evaluate_all_alerts",
        "schedule": float(os.environ.get("CSKPI_ALERT_EVAL_SECONDS", "60")),
        "options": {"expires": float(os.environ.get("CSKPI_ALERT_EVAL_SECONDS", "60"))},
    },
}
