from django.db import models

from cskpi.models import Department
from ingestion.choices import RecordType
from metrics.catalog import MEASURES
from metrics.cubes import CUBE_CHOICES


class BucketBase(models.Model):
    """One cube row: the state of every measure of one bucket × department × agent × channel.

    `agent`/`channel`/`topic` are '' when the cube does not keep that dimension or the record had none.
    The measure columns come from `metrics.catalog.MEASURES` through each measure's kind, so the
    catalog is the only place they are declared (the migration is checked against it by a test).
    """

    cube = models.CharField(max_length=32, choices=CUBE_CHOICES)
    # Served by the key's index, which leads with the department (a separate FK index tempted the
    # PostgreSQL planner into scanning every cube of the department).
    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="+", db_index=False)
    bucket_start = models.DateTimeField(help_text="UTC instant where the bucket starts.")
    agent = models.CharField(max_length=128, blank=True, default="")
    channel = models.CharField(max_length=32, blank=True, default="")
    topic = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        abstract = True


def _bucket_model(name: str, record_type: str, doc: str) -> type[BucketBase]:
    attrs = {
        "__module__": __name__,
        "__doc__": doc,
        "Meta": type("Meta", (), {
            "constraints": [models.UniqueConstraint(
                fields=["department", "cube", "bucket_start", "agent", "channel", "topic"], name=f"{name.lower()}_key",
            )],
        }),
    }
    for measure in MEASURES[record_type]:
        attrs.update(measure.columns)
    return type(name, (BucketBase,), attrs)


InteractionBucket = _bucket_model("InteractionBucket", RecordType.INTERACTION, "Interaction measures per bucket.")
SurveyBucket = _bucket_model("SurveyBucket", RecordType.SURVEY, "Survey measures per bucket.")
CashoutBucket = _bucket_model("CashoutBucket", RecordType.CASHOUT, "Cashout measures per bucket.")

BUCKET_MODELS: dict[str, type[BucketBase]] = {
    RecordType.INTERACTION: InteractionBucket,
    RecordType.SURVEY: SurveyBucket,
    RecordType.CASHOUT: CashoutBucket,
}


class RecomputeStamp(models.Model):
    """The last completed recompute of one department's record type (for /status and as_of)."""

    record_type = models.CharField(max_length=16, choices=RecordType.choices)
    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="+")
    completed_at = models.DateTimeField()
    buckets = models.PositiveIntegerField()
    duration_ms = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["record_type", "department"], name="recompute_stamp_key")]
