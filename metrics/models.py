from dataclasses import dataclass

from django.db import models

from cskpi.models import Department
from ingestion.choices import RecordType
from metrics.catalog import MEASURES
from metrics.cubes import CUBE_CHOICES, DIMENSION_COLUMNS, DIMENSIONS, EXACT_CUBE, Cube
from metrics.customer_models import CustomerFirstContact, CustomerKey  # noqa: F401 - the app's models
from metrics.measures import Measure, MeasureKind


class BucketBase(models.Model):
    """One cube row: the state of every measure of one bucket × department × dimension values.

    `agent`/`channel`/`topic`/`check_name`/`customer_region` are '' when the cube does not keep that
    dimension or the record had none (`metrics.cubes.DIMENSION_COLUMNS`).
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
    check_name = models.CharField(max_length=64, blank=True, default="")
    customer_region = models.CharField(max_length=128, blank=True, default="")
    segment = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        abstract = True


@dataclass(frozen=True)
class CubeTable:
    """One table of a record type's cubes: the measures whose kind stores its states there."""

    model: type[BucketBase]
    measures: tuple[Measure, ...]

    @property
    def kind(self) -> MeasureKind:
        """The kind whose states the table holds (one store: one way to build, merge and read)."""
        return self.measures[0].kind

    @property
    def reads(self) -> frozenset[str]:
        """The raw columns its measures depend on."""
        return frozenset().union(*(m.reads for m in self.measures))

    @property
    def exact_stored(self) -> bool:
        """Whether the table stores the exact layer: False when every measure is an aggregate of each raw
        record on its own (`MeasureKind.raw_readable`), whose raw records are the exact layer."""
        return not all(m.kind.raw_readable for m in self.measures)

    def keeps(self, cube: Cube) -> bool:
        """Whether the table stores rows of `cube`."""
        if cube is EXACT_CUBE:
            return self.exact_stored
        return self.kind.cubes is None or cube.key in self.kind.cubes

    @property
    def cubes(self) -> frozenset[str] | None:
        """The cubes a read of the table may be served from (None: every one): those it stores, and the
        exact layer, read from the raw records when not stored."""
        return self.kind.cubes


def _cube_tables(record_type: str, name: str) -> tuple[CubeTable, ...]:
    tables = []
    stores = dict.fromkeys(m.kind.store for m in MEASURES[record_type])
    for store in stores:
        measures = tuple(m for m in MEASURES[record_type] if m.kind.store == store)
        kinds = {(m.kind.sql_merge, m.kind.cubes, m.kind.department_wide) for m in measures}
        assert len(kinds) == 1, f"the measures of store {store!r} are stored, merged and read alike"
        model_name = f"{name}{''.join(part.capitalize() for part in store.split('_'))}Bucket"
        key = ["department", "cube", "bucket_start", *(DIMENSION_COLUMNS[d] for d in DIMENSIONS)]
        attrs = {"__module__": __name__, "__doc__": f"{name} measures ({', '.join(m.key for m in measures)}) per bucket."}
        if any(m.kind.opening() for m in measures):
            # Stocks: level rows (since null) and pair rows (the bucket where the outs came in).
            attrs["since"] = models.DateTimeField(
                null=True, blank=True, help_text="Pair rows: the bucket (same grain) where the outs came in.")
            key.append("since")
        attrs["Meta"] = type("Meta", (), {
            "constraints": [models.UniqueConstraint(fields=key, name=f"{model_name.lower()}_key")],
        })
        for measure in measures:
            attrs.update(measure.columns)
        tables.append(CubeTable(type(model_name, (BucketBase,), attrs), measures))
    return tuple(tables)


# Per record type, its cube tables: counts and sums in one (narrow rows: most dashboards read only
# these), quantile sketches in another (`<Type>SketchBucket`), distinct sets in another
# (`<Type>SetBucket`, fewer cubes) and department-wide first contacts in another
# (`<Type>FirstContactBucket`: no dimension, two cubes, only buckets holding a first contact). Every
# table but the department-wide one holds the same keys in the cubes it keeps (a bucket with no
# duration has NULL sketches), so a grouped read finds the same groups whichever KPIs it reads.
CUBE_TABLES: dict[str, tuple[CubeTable, ...]] = {
    RecordType.INTERACTION: _cube_tables(RecordType.INTERACTION, "Interaction"),
    RecordType.SURVEY: _cube_tables(RecordType.SURVEY, "Survey"),
    RecordType.CASHOUT: _cube_tables(RecordType.CASHOUT, "Cashout"),
    RecordType.AGENT_EVENT: _cube_tables(RecordType.AGENT_EVENT, "AgentEvent"),
    RecordType.SYSTEM_CHECK: _cube_tables(RecordType.SYSTEM_CHECK, "SystemCheck"),
    RecordType.CUSTOMER: _cube_tables(RecordType.CUSTOMER, "Customer"),
}
MEASURE_TABLES: dict[str, CubeTable] = {m.key: t for tables in CUBE_TABLES.values() for t in tables
                                        for m in t.measures}
InteractionBucket = CUBE_TABLES[RecordType.INTERACTION][0].model
BUCKET_MODELS: dict[str, tuple[type[BucketBase], ...]] = {
    record_type: tuple(t.model for t in tables) for record_type, tables in CUBE_TABLES.items()
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


from metrics.alerting.models import AlertEvent, AlertRule, WebhookAttempt, WebhookDelivery  # noqa: E402,F401
