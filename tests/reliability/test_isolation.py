"""Isolation: a caller sees nothing of a department it may not read, whatever it asks for.

Three departments in three zones hold records of every type, ingested through the API as staff,
with some agent ids and channel names shared between them (agent `a-1` works in all three). A
property test draws a caller (any grants, any agent id) and requests to every endpoint, and checks
each answer against what the caller's grants allow, computed here from the ingested payloads (records)
and from tests/metrics/reference.py (KPIs): a 403/404/400, or a 200 holding exactly the readable part.
"""

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from cskpi.models import Department
from ingestion.fields import RECORD_SPECS
from ingestion.models import RecordChange
from metrics.periods import Compare
from tests.metrics.reference import empty_value, reference_kpi

pytestmark = pytest.mark.django_db

# slug, zone, short name (in the department's distinctive agent, channel and keys)
DEPARTMENTS = (("iso-hn", "Asia/Ho_Chi_Minh", "hn"), ("iso-in", "Asia/Kolkata", "in"),
               ("iso-ny", "America/New_York", "ny"))
SLUGS = tuple(d[0] for d in DEPARTMENTS)
SHARED_AGENT, SHARED_CHANNEL, SHARED_KEY = "a-1", "phone", "shared-1"
AGENTS = (SHARED_AGENT, *(f"a-{short}" for *_, short in DEPARTMENTS), "a-nobody")
CHANNELS = (SHARED_CHANNEL, *(f"ch-{short}" for *_, short in DEPARTMENTS), "email")
ROLES = ("ingest", "agent", "viewer", "manager")
LEVEL = {"ingest": 0, "agent": 1, "viewer": 2, "manager": 3}
PLURALS = tuple(RECORD_SPECS)
MODELS = {plural: spec.model for plural, spec in RECORD_SPECS.items()}
KPIS = ("interactions", "fcr_rate", "csat", "cashout_requests", "cashout_success_rate", "system_checks",
        "system_check_failure_rate", "system_check_interval")
# Record types an agent owns (an agent grant reads its own records of these), and their filters.
OWNED = {plural for plural, spec in RECORD_SPECS.items() if spec.owner}
FILTERS = {plural: {f.name for f in spec.filters} for plural, spec in RECORD_SPECS.items()}
RANGE_DAYS = ("2026-03-01", "2026-03-06")  # holds every record in every zone


def _local(zone: str, day: int, hour: float) -> str:
    moment = datetime(2026, 3, day, tzinfo=ZoneInfo(zone)) + timedelta(hours=hour)
    return moment.isoformat()


def _payloads(index: int, slug: str, zone: str, short: str) -> dict[str, list[dict]]:
    """Different counts and mixes per department, so a number from the wrong one shows."""
    own_agent, own_channel = f"a-{short}", f"ch-{short}"
    interactions = []
    for j in range(5 + 2 * index):
        status = ("resolved", "resolved", "abandoned", "open", "resolved")[j % 5]
        created = _local(zone, 2, 9 + 3.5 * j)  # the late ones cross local midnight
        item = {
            "external_id": f"T-{short}-{j}", "source": "crm", "department": slug,
            "channel": (SHARED_CHANNEL, own_channel)[j % 2],
            "created_at": created, "status": status, "wait_seconds": 10 * (j + 1),
            "contact_count": 1 + (j + index) % 2,
        }
        if status != "abandoned":
            item["first_response_at"] = _local(zone, 2, 9 + 3.5 * j + 0.05)
        agent = (SHARED_AGENT, own_agent, None)[j % 3]
        if agent:
            item["agent"] = agent
        if status == "resolved":
            item["resolved_at"] = _local(zone, 2, 9 + 3.5 * j + 0.5)
        interactions.append(item)
    # The same external_id in every department (another source each): detail lookups by key.
    interactions.append({
        "external_id": SHARED_KEY, "source": f"crm-{short}", "department": slug, "channel": SHARED_CHANNEL,
        "agent": SHARED_AGENT, "created_at": _local(zone, 3, 1), "status": "resolved",
        "resolved_at": _local(zone, 3, 2), "contact_count": 1,
    })
    surveys = []
    for j in range(3 + index):
        item = {
            "external_id": f"S-{short}-{j}", "source": "crm", "department": slug, "kind": "csat",
            "score": (5, 2, 4, 3, 5)[(j + index) % 5], "submitted_at": _local(zone, 2, 10 + 4 * j),
            "channel": (SHARED_CHANNEL, own_channel)[j % 2],
        }
        agent = (SHARED_AGENT, own_agent, None)[j % 3]
        if agent:
            item["agent"] = agent
        surveys.append(item)
    cashouts = []
    for j in range(2 + index):
        status = ("succeeded", "failed", "pending", "succeeded")[j % 4]
        item = {
            "external_id": f"C-{short}-{j}", "source": "bank", "department": slug, "customer": f"cust-{short}",
            "amount": f"98{index}{j}1.25", "currency": "VND", "channel": (SHARED_CHANNEL, own_channel)[j % 2],
            "requested_at": _local(zone, 2, 11 + 5 * j), "status": status,
        }
        if status in ("succeeded", "failed"):
            item["completed_at"] = _local(zone, 2, 11 + 5 * j + 0.1)
        if status == "failed":
            item["failure_reason"] = "rejected"
        cashouts.append(item)
    # Status events: the agent is required, so a viewer reads them with `agent` null.
    events = [
        {"external_id": f"E-{short}-{j}", "source": "pbx", "department": slug,
         "agent": (SHARED_AGENT, own_agent)[j % 2], "status": ("available", "busy", "away", "offline")[(j + index) % 4],
         "at": _local(zone, 2, 8 + 2.5 * j)}
        for j in range(4 + index)
    ]
    # System checks: no agent, no channel; two checks per department, one of them shared by name.
    checks = [
        {"external_id": f"K-{short}-{j}", "source": "uptime", "department": slug,
         "check": ("payout-gateway", f"probe-{short}")[j % 2], "at": _local(zone, 2, 9 + 2 * j),
         "outcome": ("ok", "failed", "ok")[j % 3], "duration_ms": 100 * (j + 1)}
        for j in range(4 + index)
    ]
    customers = [
        {"external_id": f"U-{short}-{j}", "source": "crm", "department": slug, "region": f"reg-{short}",
         "segment": ("gold", "basic")[j % 2], "started_at": _local(zone, 1, 8 + j),
         **({"ended_at": _local(zone, 3, 9 + j)} if j % 2 else {}), "mrr": f"77{index}{j}3.5"}
        for j in range(2 + index)
    ]
    return {"interactions": interactions, "surveys": surveys, "cashouts": cashouts, "agent-events": events,
            "system-checks": checks, "customers": customers}


@dataclass
class World:
    departments: dict[str, Department]
    records: dict[str, list[dict]]  # plural -> every ingested payload

    def record_keys(self) -> list[tuple[str, dict]]:
        return [(plural, r) for plural in PLURALS for r in self.records[plural]]


@pytest.fixture
def world(make_client, settings, django_capture_on_commit_callbacks) -> World:
    """The data, through the real paths: departments and records POSTed by staff, the recompute run
    by the commit of each ingest (in-process; eager also when REDIS_URL names a broker)."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    staff = make_client(staff=True, username="iso-staff")
    records: dict[str, list[dict]] = {p: [] for p in PLURALS}
    for index, (slug, zone, short) in enumerate(DEPARTMENTS):
        response = staff.post("/api/v1/departments", {"slug": slug, "name": slug.upper(), "timezone": zone},
                              format="json")
        assert response.status_code == 201, response.content
        for plural, items in _payloads(index, slug, zone, short).items():
            with django_capture_on_commit_callbacks(execute=True):
                response = staff.post(f"/api/v1/{plural}", items, format="json")
            assert response.status_code == 200, response.content
            assert response.json()["created"] == len(items)
            records[plural].extend(items)
    status = staff.get("/api/v1/status").json()
    assert status["pending_buckets"] == 0 and status["last_recompute"] is not None, status
    departments = {d.slug: d for d in Department.objects.filter(slug__in=SLUGS)}
    # A backlog that identifies its departments: department i has 2**i pending buckets and one
    # failed bucket whose error names it. Far in the past, so no KPI of the test range moves.
    now = timezone.now()
    for index, slug in enumerate(SLUGS):
        for k in range(2**index + 1):
            RecordChange.objects.create(
                record_type="interaction", department=departments[slug],
                quarter_start=datetime(2020, 1, 1 + index, tzinfo=UTC) + timedelta(minutes=15 * k), version=1,
                first_marked_at=now - timedelta(minutes=10 * index + k), marked_at=now,
                failed_at=now - timedelta(minutes=index) if k == 0 else None,
                last_error=f"boom-{slug}" if k == 0 else "",
            )
    return World(departments=departments, records=records)


# --- the caller's rights, as the spec states them (not as the code computes them) -------------


@dataclass(frozen=True)
class Caller:
    staff: bool
    grants: tuple[tuple[str, str], ...]
    agent: str

    def level(self, slug: str) -> int:
        if self.staff:
            return 3
        return max((LEVEL[role] for s, role in self.grants if s == slug), default=0)

    def granted(self, slug: str) -> bool:
        return self.staff or any(s == slug for s, _ in self.grants)

    def can_ingest(self, slug: str) -> bool:
        return self.staff or (slug, "ingest") in self.grants

    def readable(self) -> list[str]:
        return [s for s in SLUGS if self.level(s) > 0]

    def sees(self, plural: str, record: dict) -> bool:
        level = self.level(record["department"])
        if level >= 2:
            return True
        return level == 1 and RECORD_SPECS[plural].owner is not None and record.get("agent") == self.agent

    def sees_agents(self, slug: str) -> bool:
        return self.level(slug) == 3 or self.level(slug) == 1


callers = st.builds(
    Caller,
    staff=st.sampled_from([False] * 9 + [True]),
    grants=st.lists(st.tuples(st.sampled_from(SLUGS), st.sampled_from(ROLES)), min_size=1, max_size=6,
                    unique=True).map(tuple) | st.just(()),
    agent=st.sampled_from(AGENTS),
)


def _department_param(caller: Caller, draw) -> str | None:
    """Nothing (every readable department), readable ones only, or any: Y alone, X,Y, X,X, ..."""
    pool = draw(st.sampled_from([SLUGS, tuple(caller.readable()) or SLUGS]))
    chosen = draw(st.lists(st.sampled_from(pool), max_size=3))
    return ",".join(chosen) if chosen else None


# --- what no 200 may hold ------------------------------------------------------------------


def _strings(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def forbidden_tokens(world: World, caller: Caller) -> set[str]:
    """Strings that only records (or departments) the caller may not see could have put in a body."""
    tokens: set[str] = set()
    for slug, _zone, short in DEPARTMENTS:
        if not caller.granted(slug):
            tokens |= {slug, f"boom-{slug}", f"crm-{short}", f"cust-{short}", f"reg-{short}"}
        if not (caller.level(slug) == 3 or (caller.level(slug) == 1 and caller.agent == f"a-{short}")):
            tokens.add(f"a-{short}")
    visible_channels = {r.get("channel") for p, r in world.record_keys() if caller.sees(p, r)}
    tokens |= {f"ch-{short}" for *_, short in DEPARTMENTS} - visible_channels
    for plural, record in world.record_keys():
        if not caller.sees(plural, record) and record["external_id"] != SHARED_KEY:
            tokens.add(record["external_id"])
    return tokens


def hidden_amounts(world: World, caller: Caller) -> set[Decimal]:
    """Cashout amounts and customers' MRR: for managers and staff of their department only."""
    return ({Decimal(r["amount"]) for r in world.records["cashouts"] if caller.level(r["department"]) < 3}
            | {Decimal(r["mrr"]) for r in world.records["customers"] if caller.level(r["department"]) < 3})


def assert_nothing_hidden(world: World, caller: Caller, body) -> None:
    strings = set(_strings(body))
    leaked = strings & forbidden_tokens(world, caller)
    assert not leaked, f"{caller}: leaked {sorted(leaked)} in {json.dumps(body)[:2000]}"
    amounts = hidden_amounts(world, caller)
    for text in strings:
        try:
            number = Decimal(text)
        except (InvalidOperation, ValueError):
            continue
        assert number not in amounts, f"{caller}: leaked the cashout amount {text}"


# --- requests and their expected answers ---------------------------------------------------


@dataclass
class Probe:
    caller: Caller
    world: World
    client: object

    @staticmethod
    def note(kind: str) -> None:
        event(kind)  # a 200 with content: pytest --hypothesis-show-statistics counts them


def probe_list(probe: Probe, draw) -> None:
    caller, world = probe.caller, probe.world
    plural = draw(st.sampled_from(PLURALS))
    params = {"page_size": draw(st.sampled_from([1000, 3]))}  # small pages: the cursor path too
    department = _department_param(caller, draw)
    if department:
        params["department"] = department
    if "agent" in FILTERS[plural] and draw(st.booleans()):
        params["agent"] = draw(st.sampled_from(AGENTS))
    if "channel" in FILTERS[plural] and draw(st.booleans()):
        params["channel"] = draw(st.sampled_from(CHANNELS))
    response = probe.client.get(f"/api/v1/{plural}", params)
    named = list(dict.fromkeys(department.split(","))) if department else caller.readable()
    # One read-scope policy (cskpi/access.py), as on /metrics: reading no department is a 403 too,
    # and so is an agent grant filtering by another agent.
    if not named or any(caller.level(s) == 0 for s in named):
        assert response.status_code == 403, (caller, params, response.content)
        return
    agent_refused = any(caller.level(s) == 1 for s in named) and params.get("agent", caller.agent) != caller.agent
    if "agent" in params and (any(caller.level(s) == 2 for s in named) or agent_refused):
        assert response.status_code == 403, (caller, params, response.content)
        return
    assert response.status_code == 200, (caller, params, response.content)
    body = response.json()
    assert_nothing_hidden(world, caller, body)
    rows = body["results"]
    while body["next"]:
        response = probe.client.get(body["next"])
        assert response.status_code == 200, (caller, params, response.content)
        body = response.json()
        assert_nothing_hidden(world, caller, body)
        rows += body["results"]
    expected = {
        (r["source"], r["external_id"]) for r in world.records[plural]
        if r["department"] in named and caller.sees(plural, r)
        and all(r.get(k) == params[k] for k in ("agent", "channel") if k in params)
    }
    got = [(r["source"], r["external_id"]) for r in rows]
    assert len(got) == len(set(got)) and set(got) == expected, (caller, params, got, expected)
    for row in rows:
        assert_row(caller, plural, row)
    if got:
        probe.note(f"list {plural}")


def assert_row(caller: Caller, plural: str, row: dict) -> None:
    level = caller.level(row["department"])
    assert level > 0
    assert ("amount" in row) == (plural == "cashouts" and level == 3), (caller, row)
    assert ("mrr" in row) == (plural == "customers" and level == 3), (caller, row)
    if RECORD_SPECS[plural].owner is not None:
        if level == 2:
            assert row["agent"] is None, (caller, row)
        if level == 1:
            assert row["agent"] == caller.agent, (caller, row)


def probe_detail(probe: Probe, draw) -> None:
    caller = probe.caller
    plural, record = draw(st.sampled_from(probe.world.record_keys()))
    response = probe.client.get(f"/api/v1/{plural}/{record['source']}/{record['external_id']}")
    if not caller.sees(plural, record):
        assert response.status_code == 404, (caller, record, response.content)
        return
    assert response.status_code == 200, (caller, record, response.content)
    row = response.json()
    assert (row["department"], row["source"], row["external_id"]) == (
        record["department"], record["source"], record["external_id"])
    assert_row(caller, plural, row)
    assert_nothing_hidden(probe.world, caller, row)
    probe.note(f"detail {plural}")


def probe_metrics(probe: Probe, draw) -> None:
    caller, world = probe.caller, probe.world
    kpis = draw(st.lists(st.sampled_from(KPIS), min_size=1, max_size=3, unique=True))
    granularity = draw(st.sampled_from(["total", "day"]))
    params = {"kpi": ",".join(kpis), "granularity": granularity}
    zone_param = draw(st.sampled_from([None, "UTC", *(z for _, z, _ in DEPARTMENTS)]))
    if zone_param:
        params["timezone"] = zone_param
    if granularity == "day":
        params["start"], params["end"] = RANGE_DAYS
    else:
        params["start"], params["end"] = (f"{d}T00:00:00+00:00" for d in RANGE_DAYS)
    department = _department_param(caller, draw)
    if department:
        params["department"] = department
    group_by = draw(st.lists(st.sampled_from(["department", "channel", "department", "channel", "agent"]),
                             max_size=3, unique=True))
    if group_by:
        params["group_by"] = ",".join(group_by)
    # Mostly no agent filter or the caller's own agent: other filters are refused, and the 200s
    # are where numbers can leak.
    agents = draw(st.sampled_from([[], [], [caller.agent]]) | st.lists(st.sampled_from(AGENTS), max_size=2,
                                                                        unique=True))
    if agents:
        params["agent"] = ",".join(agents)
    channels = draw(st.lists(st.sampled_from(CHANNELS), max_size=2, unique=True))
    if channels:
        params["channel"] = ",".join(channels)
    compare = draw(st.sampled_from([None, *Compare.ALL]))
    if compare:
        params["compare"] = compare
    response = probe.client.get("/api/v1/metrics", params)

    named = list(dict.fromkeys(department.split(","))) if department else caller.readable()
    if not named or any(caller.level(s) == 0 for s in named):
        assert response.status_code == 403, (caller, params, response.content)
        return
    viewer_refused = any(caller.level(s) == 2 for s in named) and ("agent" in group_by or agents)
    agent_refused = any(caller.level(s) == 1 for s in named) and agents and set(agents) != {caller.agent}
    if viewer_refused or agent_refused:
        assert response.status_code == 403, (caller, params, response.content)
        return
    assert response.status_code == 200, (caller, params, response.content)
    body = response.json()
    assert_nothing_hidden(world, caller, body)
    zone = ZoneInfo(body["timezone"])
    start, end = datetime.fromisoformat(body["start"]), datetime.fromisoformat(body["end"])
    departments = {world.departments[s].id: s for s in named}
    agent_scope = {world.departments[s].id: caller.agent for s in named if caller.level(s) == 1}
    for kpi in kpis:
        results = [r for r in body["results"] if r["kpi"] == kpi]
        reference = reference_kpi(kpi=kpi, departments=departments, start=start, end=end, zone=zone,
                                  granularity=granularity, group_by=tuple(group_by), agents=tuple(agents),
                                  channels=tuple(channels), agent_scope=agent_scope)
        got = {tuple(r["group"][g] for g in group_by): r for r in results}
        assert len(got) == len(results)
        if not group_by:
            reference.setdefault((), {"value": empty_value(kpi)[0], "sample_size": 0, "periods": {}})
        assert set(got) == set(reference), (caller, params, kpi, sorted(got, key=str), sorted(reference, key=str))
        for key, result in got.items():
            if "department" in group_by:
                assert key[group_by.index("department")] in named
            expected = reference[key]
            assert _same(result["value"], expected["value"]), (caller, params, kpi, key, result, expected)
            assert result["sample_size"] == expected["sample_size"], (caller, params, kpi, key, result, expected)
            for point in result.get("series", []):
                moment = datetime.fromisoformat(point["start"]).astimezone(UTC)
                value, sample = expected["periods"].get(moment, empty_value(kpi))
                assert _same(point["value"], value) and point["sample_size"] == sample, (
                    caller, params, kpi, key, point, expected["periods"])
            if compare:
                previous = result["previous"]
                p_reference = reference_kpi(
                    kpi=kpi, departments=departments, start=datetime.fromisoformat(previous["start"]),
                    end=datetime.fromisoformat(previous["end"]), zone=zone, granularity="total",
                    group_by=tuple(group_by), agents=tuple(agents), channels=tuple(channels),
                    agent_scope=agent_scope)
                p_value, p_sample = (p_reference[key]["value"], p_reference[key]["sample_size"]) \
                    if key in p_reference else empty_value(kpi)
                assert _same(previous["value"], p_value) and previous["sample_size"] == p_sample
        if any(r["sample_size"] for r in results):
            probe.note(f"metrics {kpi}")


def _same(got, expected) -> bool:
    if got is None or expected is None:
        return got is None and expected is None
    return math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-9)


def probe_status(probe: Probe, draw) -> None:
    """The backlog counts only departments the caller holds a grant on (as documented)."""
    caller = probe.caller
    response = probe.client.get("/api/v1/status")
    assert response.status_code == 200, response.content
    body = response.json()
    granted = [i for i, s in enumerate(SLUGS) if caller.granted(s)]
    assert body["pending_buckets"] == sum(2**i for i in granted), (caller, body)
    assert body["failed_buckets"] == len(granted), (caller, body)
    if granted:
        assert body["last_error"] == f"boom-{SLUGS[min(granted)]}", (caller, body)
    else:
        assert body["last_error"] is None and body["last_recompute"] is None, (caller, body)
    if body["last_recompute"] is not None:
        assert caller.granted(body["last_recompute"]["department"]), (caller, body)
    assert_nothing_hidden(probe.world, caller, body)


def probe_departments(probe: Probe, draw) -> None:
    caller = probe.caller
    response = probe.client.get("/api/v1/departments")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [d["slug"] for d in body if d["slug"] in SLUGS] == [s for s in SLUGS if caller.granted(s)]
    if not caller.staff:
        names = {0: "ingest", 1: "agent", 2: "viewer", 3: "manager"}
        for row in body:
            expected = (["ingest"] if caller.can_ingest(row["slug"]) else []) + (
                [names[caller.level(row["slug"])]] if caller.level(row["slug"]) else [])
            assert row["roles"] == expected, (caller, row)
    assert_nothing_hidden(probe.world, caller, body)


def _table_state() -> dict:
    return {plural: sorted(MODELS[plural].objects.values_list("department_id", "source", "external_id",
                                                             "content_hash"))
            for plural in PLURALS} | {"marks": RecordChange.objects.count()}


def probe_post(probe: Probe, draw) -> None:
    """A batch naming departments (and maybe reusing another department's key): 403 and nothing
    written unless the caller may ingest into every department it touches. Whatever it writes is
    rolled back, so the data stay the same for the next request."""
    caller, world = probe.caller, probe.world
    plural = draw(st.sampled_from(PLURALS))
    targets = draw(st.lists(st.sampled_from(SLUGS), min_size=1, max_size=2))
    template = world.records[plural][0]
    items, touched = [], set(targets)
    for n, slug in enumerate(targets):
        item = {**template, "department": slug, "external_id": f"new-{n}", "source": "probe"}
        items.append(item)
    if draw(st.booleans()):  # move another department's record by its key
        victim = draw(st.sampled_from(world.records[plural]))
        items.append({**template, "department": targets[0], "source": victim["source"],
                      "external_id": victim["external_id"], "updated_at": "2027-01-01T00:00:00Z"})
        touched.add(victim["department"])
    before = _table_state()
    with transaction.atomic():
        response = probe.client.post(f"/api/v1/{plural}", items, format="json")
        after = _table_state()
        transaction.set_rollback(True)
    assert "amount" not in response.content.decode()
    if all(caller.can_ingest(s) for s in touched):
        assert response.status_code == 200, (caller, targets, response.content)
    else:
        assert response.status_code == 403, (caller, targets, response.content)
        assert after == before, "a refused batch wrote something"
    assert _table_state() == before


def probe_catalog(probe: Probe, draw) -> None:
    response = probe.client.get("/api/v1/kpis")
    assert response.status_code == 200
    assert_nothing_hidden(probe.world, probe.caller, response.json())


PROBES = (probe_list, probe_list, probe_detail, probe_metrics, probe_metrics, probe_metrics, probe_status,
          probe_departments, probe_post, probe_catalog)


# No shrinking: each example makes several requests, and a failure already names the caller and
# the parameters; shrinking one took minutes.
@settings(max_examples=100, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          report_multiple_bugs=False,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(caller=callers, data=st.data())
def test_a_caller_gets_nothing_of_departments_it_may_not_read(world, make_client, caller, data):
    client = make_client(staff=caller.staff, grants=list(caller.grants),
                         agent=caller.agent if any(r == "agent" for _, r in caller.grants) else "")
    probe = Probe(caller=caller, world=world, client=client)
    for _ in range(8):
        data.draw(st.sampled_from(PROBES))(probe, data.draw)


# --- the nasty cases, spelled out ---------------------------------------------------------


def test_the_same_agent_id_in_another_department_stays_hidden(world, make_client):
    caller = Caller(staff=False, grants=(("iso-hn", "agent"),), agent=SHARED_AGENT)
    client = make_client(grants=caller.grants, agent=SHARED_AGENT)
    rows = client.get("/api/v1/interactions", {"agent": SHARED_AGENT, "page_size": 1000}).json()["results"]
    assert rows and {r["department"] for r in rows} == {"iso-hn"}
    assert client.get(f"/api/v1/interactions/crm-in/{SHARED_KEY}").status_code == 404
    assert client.get(f"/api/v1/interactions/crm-hn/{SHARED_KEY}").status_code == 200
    response = client.get("/api/v1/metrics", {"kpi": "interactions", "granularity": "total", "group_by": "department",
                                              "start": "2026-03-01T00:00:00Z", "end": "2026-03-06T00:00:00Z"})
    assert response.status_code == 200
    expected = sum(1 for r in world.records["interactions"]
                   if r["department"] == "iso-hn" and r.get("agent") == SHARED_AGENT)
    assert [(r["group"], r["value"]) for r in response.json()["results"]] == [({"department": "iso-hn"}, expected)]
    assert client.get("/api/v1/metrics", {"kpi": "interactions", "department": "iso-in"}).status_code == 403
    assert client.get("/api/v1/cashouts", {"page_size": 1000}).json()["results"] == []  # cashouts have no agent


def test_cashout_amounts_reach_only_managers_and_staff(world, make_client):
    manager = make_client(grants=[("iso-in", "manager"), ("iso-hn", "viewer")])
    rows = manager.get("/api/v1/cashouts", {"page_size": 1000}).json()["results"]
    assert {r["department"] for r in rows} == {"iso-hn", "iso-in"}
    assert all(("amount" in r) == (r["department"] == "iso-in") for r in rows)
    viewer = make_client(grants=[("iso-ny", "viewer")])
    detail = viewer.get("/api/v1/cashouts/bank/C-ny-0").json()
    assert detail["external_id"] == "C-ny-0" and "amount" not in detail
    assert viewer.get("/api/v1/cashouts/bank/C-in-0").status_code == 404


def test_an_ingest_only_caller_reads_nothing(world, make_client):
    client = make_client(grants=[(s, "ingest") for s in SLUGS])
    for plural in PLURALS:
        response = client.get(f"/api/v1/{plural}", {"page_size": 1000})
        assert (response.status_code, response.json()["code"]) == (403, "no_read_grant")
        assert client.get(f"/api/v1/{plural}", {"department": "iso-hn"}).status_code == 403
        record = world.records[plural][0]
        assert client.get(f"/api/v1/{plural}/{record['source']}/{record['external_id']}").status_code == 404
    assert client.get("/api/v1/metrics", {"kpi": "interactions"}).status_code == 403
    assert client.get("/api/v1/metrics", {"kpi": "interactions", "department": "iso-hn"}).status_code == 403
