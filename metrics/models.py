from django.db import models

from cskpi.models import Department
from ingestion.choices import RecordType


class DirtyBucket(models.Model):
    """A quarter-hour of one department's records that changed since its aggregates were computed.

    Written by ingestion in the same transaction as the records (so a lost broker message loses
    nothing), consumed by the recompute workers. `version` changes on every new mark: a worker that
    recomputed version v deletes the row only if it is still v.
    """

    record_type = models.CharField(max_length=16, choices=RecordType.choices)
    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="+")
    quarter_start = models.DateTimeField(help_text="UTC start of the 15-minute bucket.")
    version = models.BigIntegerField()
    first_marked_at = models.DateTimeField()
    marked_at = models.DateTimeField()
    claimed_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    failed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["record_type", "department", "quarter_start"], name="dirty_bucket_key")
        ]
        indexes = [models.Index(fields=["first_marked_at"], name="dirty_bucket_age")]
