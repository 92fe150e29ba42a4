from metrics.models import DirtyBucket


def department_buckets_invalidate(*, department_id: int) -> None:
    """Placeholder until the KPI engine lands: nothing is aggregated yet."""
    DirtyBucket.objects.filter(department_id=department_id)
