"""dirty_buckets_recompute: exact, idempotent, safe twice and concurrently, failures parked."""

import io
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from pyroaring import BitMap

from cskpi.services import department_upsert
from ingestion.changes import quarter_floor, record_changes_mark
from ingestion.choices import ChangeScope, RecordType
from ingestion.models import Interaction, RecordChange
from metrics import services
from metrics.cubes import CUBES
from metrics.measures import _Additive, set_pack, set_unpack
from metrics.models import BUCKET_MODELS, CUBE_TABLES, InteractionBucket, RecomputeStamp
from metrics.planner import cubes_kept
from metrics.services import dirty_buckets_recompute, scope_tables
from tests.factories import DepartmentFactory
from tests.metrics.records import cashout_build, interaction_build, records_store, survey_build
from tests.reliability.aggregates import canonical

T0 = datetime(2026, 5, 4, 1, 7, tzinfo=UTC)


def _cube_rows():
    rows = set()
    for model in (m for models in BUCKET_MODELS.values() for m in models):
        for row in model.objects.values():
            row.pop("id", None)  # the customer stock table keeps a surrogate id
            rows.add(tuple(sorted((k, canonical(v, k)) for k, v in row.items())))
    return rows


def _some_traffic(department, n=40):
    records = []
    for i in range(n):
        at = T0 + timedelta(minutes=37 * i)
        records.append(interaction_build(department=department, created_at=at, agent=f"a-{i % 3}",
                                         status=["resolved", "abandoned", "open"][i % 3]))
        if i % 4 == 0:
            records.append(survey_build(department=department, submitted_at=at, kind="nps", score=i % 11))
            records.append(cashout_build(department=department, requested_at=at))
    return records


@pytest.mark.django_db
def test_recompute_is_idempotent_and_a_second_run_finds_nothing(department):
    records_store(_some_traffic(department))
    first = _cube_rows()
    assert first and not RecordChange.objects.exists()
    assert dirty_buckets_recompute().buckets == 0
    # Mark everything again: the same rows come out.
    record_changes_mark(record_type="interaction",
                       marks=[(department.id, r.created_at) for r in Interaction.objects.all()])
    assert dirty_buckets_recompute().buckets > 0
    assert _cube_rows() == first
    stamp = RecomputeStamp.objects.get(record_type="interaction", department=department)
    assert stamp.buckets > 0


@pytest.mark.django_db
def test_an_additive_state_of_zero_is_stored_as_null(department):
    """Counts and sums store a zero as NULL (metrics 0024: a NULL takes no byte in the row), on every table
    of additive measures and every cube, built from the raw records and merged from finer cubes alike."""
    records_store(_some_traffic(department))
    nulls = 0
    for table in (t for tables in CUBE_TABLES.values() for t in tables if isinstance(t.kind, _Additive)):
        for m in table.measures:
            assert not table.model.objects.filter(**{m.key: 0}).exists(), (table.model.__name__, m.key)
            nulls += table.model.objects.filter(**{f"{m.key}__isnull": True}).count()
    # e.g. no interaction is missed, and a bucket of abandoned interactions has no resolution.
    assert nulls and InteractionBucket.objects.filter(missed__isnull=True, interactions__gt=0).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("first", "second", "kept"), [
    (ChangeScope.SERVICE_LEVELS, ChangeScope.SERVICE_LEVELS, ChangeScope.SERVICE_LEVELS),
    (ChangeScope.SERVICE_LEVELS, ChangeScope.ALL, ChangeScope.ALL),
    (ChangeScope.ALL, ChangeScope.SERVICE_LEVELS, ChangeScope.ALL),
])
def test_two_marks_of_a_quarter_keep_a_scope_only_when_both_have_it(department, first, second, kept):
    record_changes_mark(record_type="interaction", marks=[(department.id, T0)], scope=first)
    record_changes_mark(record_type="interaction", marks=[(department.id, T0 + timedelta(minutes=1))], scope=second)
    [mark] = RecordChange.objects.values_list("scope", flat=True)
    assert mark == kept


def test_a_service_level_change_moves_only_the_tables_reading_service_level_columns():
    tables = CUBE_TABLES[RecordType.INTERACTION]
    moved = scope_tables(RecordType.INTERACTION, ChangeScope.SERVICE_LEVELS)
    assert [t.model.__name__ for t in tables if t in moved] == ["InteractionBucket"]
    assert scope_tables(RecordType.INTERACTION, ChangeScope.ALL) == frozenset(tables)
    assert scope_tables(RecordType.SURVEY, ChangeScope.SERVICE_LEVELS) == frozenset()


@pytest.mark.django_db
def test_a_service_level_mark_recomputes_the_counts_and_carries_the_sets_over(department):
    records_store([interaction_build(department=department, created_at=T0 + timedelta(minutes=37 * i),
                                     customer=f"c-{i % 7}", agent=f"a-{i % 3}") for i in range(40)])
    day = InteractionBucket.objects.filter(department=department, cube="day")
    stale = set_pack(BitMap([999_999]))
    # Stale counts and stale sets: a service-level mark recomputes what it can move (counts, sketches) and
    # keeps the sets and first contacts as stored (they cannot move with a calendar).
    day.update(interactions=1, customers=stale, first_contact_customers=stale)
    record_changes_mark(record_type="interaction", scope=ChangeScope.SERVICE_LEVELS,
                        marks=[(department.id, r.created_at) for r in Interaction.objects.all()])
    dirty_buckets_recompute()
    by_day = Counter(r.created_at.astimezone(ZoneInfo(department.timezone)).date() for r in Interaction.objects.all())
    assert sorted(day.values_list("interactions", flat=True)) == sorted(by_day.values())
    assert {bytes(v) for v in day.values_list("customers", flat=True)} == {stale}
    assert {bytes(v) for v in day.values_list("first_contact_customers", flat=True)} == {stale}
    record_changes_mark(record_type="interaction",
                        marks=[(department.id, r.created_at) for r in Interaction.objects.all()])
    dirty_buckets_recompute()
    customers = {}
    for r in Interaction.objects.all():
        customers.setdefault(r.created_at.astimezone(ZoneInfo(department.timezone)).date(), set()).add(r.customer)
    assert sorted(len(set_unpack(v)) for v in day.values_list("customers", flat=True)) == sorted(
        len(c) for c in customers.values())
    assert sum(len(set_unpack(v)) for v in day.values_list("first_contact_customers", flat=True)) == 7


@pytest.mark.django_db
def test_record_moved_away_leaves_no_trace(department, other_department):
    record = interaction_build(department=department, created_at=T0)
    records_store([record])
    old = (record, record.department_id, record.created_at)
    record.department = other_department
    record.created_at = T0 + timedelta(days=3)
    records_store([record], old_places=[old])
    assert not InteractionBucket.objects.filter(department=department).exists()
    assert set(InteractionBucket.objects.values_list("cube", "interactions")) == {
        (c.key, 1) for c in cubes_kept(RecordType.INTERACTION) if CUBE_TABLES[RecordType.INTERACTION][0].keeps(c)}


@pytest.mark.django_db
def test_mark_arriving_during_a_recompute_survives_for_the_next_pass(department, monkeypatch):
    records_store([interaction_build(department=department, created_at=T0)], then=None)
    original = services.cube_buckets_rebuild

    def rebuild_with_a_concurrent_mark(**kwargs):
        original(**kwargs)
        record_changes_mark(record_type="interaction", marks=[(department.id, T0)])  # new version

    monkeypatch.setattr(services, "cube_buckets_rebuild", rebuild_with_a_concurrent_mark)
    dirty_buckets_recompute(time_budget=0)  # one batch
    assert RecordChange.objects.count() == 1
    monkeypatch.setattr(services, "cube_buckets_rebuild", original)
    dirty_buckets_recompute()
    assert not RecordChange.objects.exists()


@pytest.mark.django_db
def test_failures_are_retried_then_parked_and_shown_in_status(department, monkeypatch, settings, make_client):
    settings.CSKPI_RECOMPUTE_MAX_ATTEMPTS = 2
    records_store([interaction_build(department=department, created_at=T0)], then=None)

    def broken(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(services, "cube_buckets_rebuild", broken)
    outcome = dirty_buckets_recompute()
    assert outcome.failed == 1 and outcome.buckets == 0
    mark = RecordChange.objects.get()
    assert mark.attempts == 1 and mark.failed_at is None and "disk on fire" in mark.last_error
    assert mark.claimed_until > timezone.now()  # backing off: not retried in a tight loop
    RecordChange.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))
    dirty_buckets_recompute()
    mark.refresh_from_db()
    assert mark.attempts == 2 and mark.failed_at is not None
    RecordChange.objects.update(claimed_until=None)
    assert dirty_buckets_recompute().failed == 0  # parked: no endless loop

    status = make_client(grants=[(department.slug, "viewer")]).get("/api/v1/status").json()
    assert status["failed_buckets"] == 1 and status["pending_buckets"] == 0
    assert "disk on fire" in status["last_error"]
    assert make_client(grants=[]).get("/api/v1/status").json()["failed_buckets"] == 0

    # A new mark gives the bucket a fresh start.
    monkeypatch.undo()
    record_changes_mark(record_type="interaction", marks=[(department.id, T0)])
    assert dirty_buckets_recompute().buckets == 1
    assert not RecordChange.objects.exists()


@pytest.mark.django_db
def test_timezone_change_recuts_the_day_cubes(department):
    records_store(_some_traffic(department))
    department_upsert(slug=department.slug, timezone="America/New_York")
    assert not InteractionBucket.objects.filter(cube__in=[c.key for c in CUBES if c.local_day]).exists()
    assert RecordChange.objects.exists()
    dirty_buckets_recompute()
    after_invalidate = _cube_rows()
    call_command("rebuild_aggregates", "--no-progress")
    assert _cube_rows() == after_invalidate
    starts = set(InteractionBucket.objects.filter(cube="day_agent").values_list("bucket_start", flat=True))
    assert {s.hour for s in starts} == {4}  # New York midnight in May (EDT) is 04:00 UTC


@pytest.mark.django_db
def test_rebuild_aggregates_restores_the_cubes(department, other_department):
    records_store(_some_traffic(department) + _some_traffic(other_department, n=10))
    good = _cube_rows()
    InteractionBucket.objects.filter(cube="day_channel").delete()
    InteractionBucket.objects.filter(cube="hour_30").update(interactions=999)
    InteractionBucket.objects.create(cube="day_agent", department=department, bucket_start=T0 - timedelta(days=90), interactions=5)
    call_command("rebuild_aggregates", "--department", department.slug, "--no-progress")
    call_command("rebuild_aggregates", "--department", other_department.slug, "--since", "2026-05-01",
                 "--no-progress")
    assert _cube_rows() == good


def _in_key_order(model) -> bool:
    """Whether the table's rows lie in the order of its key (heap position by heap position)."""
    table = next(t for tables in CUBE_TABLES.values() for t in tables if t.model is model)
    key = ", ".join(connection.ops.quote_name(model._meta.get_field(f).column) for f in table.key)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT ctid::text FROM {model._meta.db_table} ORDER BY {key}")
        positions = [tuple(map(int, text.strip("()").split(","))) for (text,) in cursor.fetchall()]
    return positions == sorted(positions)


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_full_rebuild_leaves_the_cube_tables_in_key_order(department, other_department):
    records_store(_some_traffic(department, n=120) + _some_traffic(other_department, n=120))
    good = _cube_rows()
    call_command("rebuild_aggregates", "--no-progress", "--no-cluster")
    assert not _in_key_order(InteractionBucket)  # written week by week, every cube interleaved
    call_command("rebuild_aggregates", "--no-progress")
    assert _cube_rows() == good
    assert all(_in_key_order(table.model) for tables in CUBE_TABLES.values() for table in tables)


@pytest.mark.django_db
def test_cluster_aggregates_puts_the_cube_tables_in_key_order(department, other_department):
    records_store(_some_traffic(department, n=120) + _some_traffic(other_department, n=120))
    good = _cube_rows()
    out = io.StringIO()
    call_command("cluster_aggregates", stdout=out)
    assert _cube_rows() == good
    if connection.vendor == "postgresql":
        assert "clustered metrics_interactionbucket in" in out.getvalue()
        assert all(_in_key_order(table.model) for tables in CUBE_TABLES.values() for table in tables)
    else:
        assert "nothing to do" in out.getvalue()


@pytest.mark.postgres
@pytest.mark.django_db
def test_cluster_aggregates_skips_a_table_whose_lock_it_does_not_get(department, monkeypatch):
    """A long transaction reading a cube table: the rewrite of that table gives up after the lock timeout
    (rather than queueing every later reader behind it) and the command says so; the others are done."""
    import psycopg

    records_store(_some_traffic(department, n=40))
    monkeypatch.setattr(services, "CLUSTER_LOCK_TIMEOUT_MS", 200)
    db = connection.settings_dict
    reader = psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"],
                             dbname=db["NAME"])
    try:
        reader.execute(f"LOCK TABLE {InteractionBucket._meta.db_table} IN ACCESS SHARE MODE")
        out, err = io.StringIO(), io.StringIO()
        call_command("cluster_aggregates", stdout=out, stderr=err)
    finally:
        reader.close()
    assert f"skipped {InteractionBucket._meta.db_table}: its lock was not granted within 0.2 s" in err.getvalue()
    assert "clustered metrics_surveybucket in" in out.getvalue()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_recomputes_and_ingestion_converge(on_postgres):
    departments = [DepartmentFactory(slug=f"conc-{i}") for i in range(2)]
    errors = []

    def ingest(worker: int):
        try:
            for batch in range(10):
                records = [interaction_build(department=departments[(worker + j) % 2],
                                             created_at=T0 + timedelta(minutes=7 * (batch * 5 + j + worker)),
                                             agent=f"a-{j}") for j in range(5)]
                records_store(records, then=None)
                dirty_buckets_recompute(time_budget=0.5, batch=7)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    def recompute():
        try:
            for _ in range(20):
                dirty_buckets_recompute(time_budget=0.2, batch=5)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ingest, args=(w,)) for w in range(3)]
    threads += [threading.Thread(target=recompute) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    dirty_buckets_recompute()
    assert not RecordChange.objects.exists()
    concurrent = _cube_rows()
    call_command("rebuild_aggregates", "--no-progress")
    assert _cube_rows() == concurrent
    hours = InteractionBucket.objects.filter(cube="hour_30")
    assert sum(hours.values_list("interactions", flat=True)) == 150


def test_quarter_floor():
    assert quarter_floor(datetime(2026, 5, 4, 1, 29, 59, tzinfo=UTC)) == datetime(2026, 5, 4, 1, 15, tzinfo=UTC)
