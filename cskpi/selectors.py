from django.db import connection

from cskpi.access import Access
from cskpi.models import Department


def department_list(*, access: Access) -> list[Department]:
    """The departments the caller holds any grant on (all of them for staff)."""
    return sorted((a.department for a in access.by_slug.values()), key=lambda d: d.slug)


def health_get() -> dict:
    """Reachability of the database and the broker, and the recompute backlog."""
    from django.conf import settings

    result = {"database": "ok", "broker": "in-process", "pending_buckets": None}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure is "down" for a health check
        result["database"] = f"error: {type(exc).__name__}"
    if settings.REDIS_URL:
        result["broker"] = _redis_ping(settings.REDIS_URL)
    if result["database"] == "ok":
        from metrics.models import DirtyBucket

        try:
            result["pending_buckets"] = DirtyBucket.objects.count()
        except Exception as exc:  # noqa: BLE001
            result["database"] = f"error: {type(exc).__name__}"
    result["status"] = "ok" if result["database"] == "ok" and result["broker"] in ("ok", "in-process") else "degraded"
    return result


def _redis_ping(url: str) -> str:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
        client.close()
        return "ok"
    except redis.RedisError as exc:
        return f"error: {type(exc).__name__}"
