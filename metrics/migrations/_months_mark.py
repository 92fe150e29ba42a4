"""Marking one quarter per local month holding records, for migrations whose new cube rows the worker
builds (0014: the month cubes; 0021: the month × agent × channel sketches). A quarter's recompute
rebuilds its month in every month cube. Shared by those migrations and frozen with them: what it
marks must not change with the code after them."""

import secrets


def months_mark(apps, *, tables: dict[str, str], cube: str) -> None:
    """Mark, per record type of `tables` ({record type: its cube table's model name}), the first `cube`
    row of each local month of each department: a local midnight, a UTC quarter-hour in every zone."""
    from datetime import UTC
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    now = timezone.now()
    version = secrets.randbits(62)
    zones = {d: ZoneInfo(z) for d, z in apps.get_model("cskpi", "Department").objects.values_list("id", "timezone")}
    RecordChange = apps.get_model("ingestion", "RecordChange")
    marks = []
    for record_type, name in tables.items():
        first: dict[tuple, object] = {}
        rows = apps.get_model("metrics", name).objects.filter(cube=cube).values_list("department_id", "bucket_start")
        for department_id, start in rows.iterator(chunk_size=10_000):
            local = start.astimezone(zones[department_id])
            key = (department_id, local.year, local.month)
            if key not in first or start < first[key]:
                first[key] = start
        marks += [RecordChange(record_type=record_type, department_id=d, quarter_start=start.astimezone(UTC),
                               version=version, first_marked_at=now, marked_at=now)
                  for (d, _, _), start in sorted(first.items())]
    RecordChange.objects.bulk_create(marks, batch_size=5000, ignore_conflicts=True)
