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

    The columns (`_bucket_columns`): `department`, `bucket_start` (the UTC instant where the bucket
    starts), `cube`, and `agent`/`channel`/`topic`/`check_name`/`customer_region`/`segment`, which are ''
    when the cube does not keep that dimension or the record had none (`metrics.cubes.DIMENSION_COLUMNS`).
    The measure columns come from `metrics.catalog.MEASURES` through each measure's kind, so the
    catalog is the only place they are declared (the migration is checked against it by a test).
    """

    class Meta:
        abstract = True


# A column's size in the row when it is fixed (PostgreSQL aligns a fixed-width column to its size; a
# varlena column — text, numeric, arrays, bytea — to at most 4 bytes, its short form to none).
_FIXED_WIDTH = {models.ForeignKey: 8, models.DateTimeField: 8, models.FloatField: 8, models.BigIntegerField: 8,
                models.IntegerField: 4}


def _bucket_columns(measures: tuple[Measure, ...], *, stock: bool) -> dict[str, models.Field]:
    """A cube table's columns, in the order its rows lay them out: fixed-width columns from the widest
    (no padding between them), then the variable-width ones (the cube's name and dimensions, sketches,
    bitmaps, decimals). With the surrogate id and 64-bit counts an interaction bucket row took about 270 bytes
    on average at 1M records, 178 now."""
    makers = {
        # Served by the key's index, which leads with the department (a separate FK index tempted the
        # PostgreSQL planner into scanning every cube of the department).
        "department": lambda: models.ForeignKey(Department, on_delete=models.CASCADE, related_name="+",
                                                db_index=False),
        "bucket_start": lambda: models.DateTimeField(help_text="UTC instant where the bucket starts."),
        "cube": lambda: models.CharField(max_length=32, choices=CUBE_CHOICES),
        **{column: (lambda length=length: models.CharField(max_length=length, blank=True, default=""))
           for column, length in (("agent", 128), ("channel", 32), ("topic", 128), ("check_name", 64),
                                  ("customer_region", 128), ("segment", 128))},
    }
    if stock:
        makers["since"] = lambda: models.DateTimeField(
            null=True, blank=True, help_text="Pair rows: the bucket (same grain) where the outs came in.")
    for measure in measures:
        makers.update({name: (lambda measure=measure, name=name: measure.columns[name]) for name in measure.columns})
    widths = {name: _FIXED_WIDTH.get(type(make()), 0) for name, make in makers.items()}
    # Django lays columns out in the order their fields are made: make each again, in that order.
    return {name: makers[name]() for name in sorted(makers, key=lambda name: -widths[name])}


@dataclass(frozen=True)
class CubeTable:
    """One store of a record type's cubes: the measures whose kind stores its states alike (`MeasureKind.store`).
    The stores of a record type share one table, one row per key (`ROW_TABLES`), but a stock's, whose key
    holds a `since`: each store has its columns there and its own cubes (`keeps`)."""

    model: type[BucketBase]
    measures: tuple[Measure, ...]

    @property
    def key(self) -> tuple[str, ...]:
        """The key's fields (department, cube, bucket start, dimensions[, since]), in its index's order."""
        pk = self.model._meta.pk
        if isinstance(pk, models.CompositePrimaryKey):
            return tuple(pk.field_names)
        (constraint,) = self.model._meta.constraints
        return tuple(constraint.fields)

    @property
    def key_index(self) -> str:
        """The name of the key's unique index: the primary key's (PostgreSQL names it `<table>_pkey`), or
        the key constraint's where the key holds a nullable column."""
        if isinstance(self.model._meta.pk, models.CompositePrimaryKey):
            return f"{self.model._meta.db_table}_pkey"
        (constraint,) = self.model._meta.constraints
        return constraint.name

    @property
    def kind(self) -> MeasureKind:
        """The kind whose states the store holds (one store: one way to build, merge and read)."""
        return self.measures[0].kind

    @property
    def reads(self) -> frozenset[str]:
        """The raw columns its measures depend on."""
        return frozenset().union(*(m.reads for m in self.measures))

    @property
    def exact_stored(self) -> bool:
        """Whether the store keeps the exact layer: False when every measure is an aggregate of each raw
        record on its own (`MeasureKind.raw_readable`), whose raw records are the exact layer."""
        return not all(m.kind.raw_readable for m in self.measures)

    def keeps(self, cube: Cube) -> bool:
        """Whether the store keeps states of `cube` (in a shared table, its columns are NULL in the rows
        of the cubes it does not keep)."""
        if cube is EXACT_CUBE:
            return self.exact_stored
        return self.kind.cubes is None or cube.key in self.kind.cubes

    @property
    def cubes(self) -> frozenset[str] | None:
        """The cubes a read of the store may be served from (None: every one): those it keeps, and the
        exact layer, read from the raw records when not stored."""
        return self.kind.cubes


def _cube_tables(record_type: str, name: str) -> tuple[CubeTable, ...]:
    """The record type's stores, in the order of its measures' kinds; all but a stock in one table."""
    by_store: dict[str, tuple[Measure, ...]] = {}
    for store in dict.fromkeys(m.kind.store for m in MEASURES[record_type]):
        measures = tuple(m for m in MEASURES[record_type] if m.kind.store == store)
        kinds = {(m.kind.sql_merge, m.kind.cubes, m.kind.department_wide) for m in measures}
        assert len(kinds) == 1, f"the measures of store {store!r} are stored, merged and read alike"
        by_store[store] = measures
    # Stocks: level rows (since null) and pair rows (the bucket where the outs came in): a key of their own.
    groups = [[s for s in by_store if not any(m.kind.opening() for m in by_store[s])],
              [s for s in by_store if any(m.kind.opening() for m in by_store[s])]]
    tables = {}
    for stores in (g for g in groups if g):
        measures = tuple(m for store in stores for m in by_store[store])
        first = stores[0]
        model_name = f"{name}{''.join(part.capitalize() for part in first.split('_'))}Bucket"
        key = ["department", "cube", "bucket_start", *(DIMENSION_COLUMNS[d] for d in DIMENSIONS)]
        attrs = {"__module__": __name__,
                 "__doc__": f"{name} measures ({', '.join(m.key for m in measures)}) per bucket."}
        stock = any(m.kind.opening() for m in measures)
        attrs.update(_bucket_columns(measures, stock=stock))
        if stock:
            # A key with a nullable column cannot be the primary key: a surrogate id and a unique key.
            key.append("since")
            attrs["Meta"] = type("Meta", (), {
                "constraints": [models.UniqueConstraint(fields=key, name=f"{model_name.lower()}_key")],
            })
        else:
            # The key is the primary key: no surrogate id and no second index (8 bytes a row and an
            # index as many rows as the table, 14 MB for the interaction counts at 1M records).
            attrs["pk"] = models.CompositePrimaryKey(*key)
        model = type(model_name, (BucketBase,), attrs)
        tables.update({store: CubeTable(model, by_store[store]) for store in stores})
    return tuple(tables[store] for store in by_store)


# Per record type, its stores (`CubeTable`): counts and sums (most dashboards read only these), quantile
# sketches, distinct sets and department-wide first contacts — each kind keeping its own cubes — in one
# table, one row per bucket × department × dimension values (`<Type>Bucket`), a stock in its own
# (`<Type>StockBucket`). Until migration 0027 each store had its own table, so a bucket's key, tuple
# header and index entry were paid once per store: at 1M interactions 307 MB of cubes, one table 204 MB
# (0.43x the raw rows'). The counts keep every cube the others keep, so every row a sketch, a set or a
# first contact needs is a counts row (a bucket with no duration has a NULL sketch, one with no first
# contact a NULL set), and a grouped read finds the same groups whichever KPIs it reads.
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
# Per record type, its tables: the stores sharing each, in order.
ROW_TABLES: dict[str, tuple[tuple[CubeTable, ...], ...]] = {
    record_type: tuple(tuple(t for t in tables if t.model is model) for model in dict.fromkeys(t.model for t in tables))
    for record_type, tables in CUBE_TABLES.items()
}
InteractionBucket = CUBE_TABLES[RecordType.INTERACTION][0].model
BUCKET_MODELS: dict[str, tuple[type[BucketBase], ...]] = {
    record_type: tuple(group[0].model for group in groups) for record_type, groups in ROW_TABLES.items()
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
