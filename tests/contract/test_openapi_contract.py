"""Contract fuzzing: every operation of the live OpenAPI schema, positive and negative data, all of
schemathesis' default checks (no server errors, documented status codes and content types,
response schema conformance, negative-data rejection, positive-data acceptance, ignored auth), called
in-process through the WSGI app with a valid staff token.

schemathesis' own pytest plugin does not run under pytest 9, so operations are parametrized here
and each runs as a plain hypothesis test over the operation's strategy.

The hooks below only bring what a schema cannot say into the generated data: which departments
and time zones exist, that a range's end is after its start, and the rules between a record's
fields (times not before the anchor, status agreeing with the timestamps, a survey score within its
kind's scale). They never touch a value the schema refuses, so a negative case stays negative.
"""

import re
from datetime import date, datetime, timedelta

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from cskpi.access import access_get
from cskpi.currencies import ISO_4217_CODES
from cskpi.services import token_issue, user_grants_upsert
from cskpi.wsgi import application
from ingestion.choices import SURVEY_SCALES
from ingestion.fields import RECORD_SPECS
from ingestion.services import record_batch_ingest
from ingestion.validation import batch_validator_get
from metrics.alerting.windows import DURATION_PATTERN
from metrics.catalog import KPIS
from metrics.planner import kpi_dimensions_missing
from metrics.schema import PARAMETER_PATTERNS as METRICS_PATTERNS
from tests.factories import DepartmentFactory
from tests.ingestion.factories import record_payload

MAX_EXAMPLES = 60
# The record POSTs have the largest input space (a batch of one of three record shapes).
MAX_EXAMPLES_BY_PATH = {f"/api/v1/{plural}": 100 for plural in RECORD_SPECS}

DEPARTMENTS = ("cskh-hn", "cskh-del")

SCHEMA = schemathesis.openapi.from_wsgi("/api/schema/", application)
# A record batch over maxItems (CSKPI_MAX_BATCH) is refused with 413 batch_too_large, by design
# (docs/ingestion.md) and documented on the operation. 413 is a rejection like 400: count it as one.
_REJECTION = SCHEMA.config.checks.negative_data_rejection
_REJECTION.expected_statuses = [*_REJECTION.expected_statuses, "413"]
# Every operation is under contract except those listed here (path prefixes), which are still being
# made to conform (see git log). The metrics endpoints are not merged on this branch yet.
NOT_YET_UNDER_CONTRACT: tuple[str, ...] = ()
OPERATIONS = [
    op for op in (r.ok() for r in SCHEMA.get_all_operations()) if not op.path.startswith(NOT_YET_UNDER_CONTRACT)
]
CASES = [
    pytest.param(op, mode, id=f"{op.label} [{mode.value}]")
    for op in OPERATIONS
    for mode in GenerationMode
    # Negative data needs something to break: operations without parameters or body have none.
    if mode is GenerationMode.POSITIVE or op.path_parameters or op.query or op.body
]

# Query parameters documented as arrays (repeated, style form): /metrics and the record-list filters.
# /metrics' list parameters and every declared record-list filter (each a list parameter).
LIST_PARAMETERS = frozenset({"kpi", "department", "group_by", "agent", "channel", "topic", "check", "customer_region"}
                            | {f.name for spec in RECORD_SPECS.values() for f in spec.filters})
_PLURALS = "|".join(RECORD_SPECS)
_RECORD_PATH = re.compile(rf"^/api/v1/(?P<plural>{_PLURALS})$")
_DETAIL_PATH = re.compile(rf"^/api/v1/(?P<plural>{_PLURALS})/\{{source\}}/\{{external_id\}}$")
_DEPARTMENT_SLUG = re.compile(r"[-a-zA-Z0-9_]{1,64}")  # what the schema allows and a department may be
_CHECK_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_DEPARTMENT_LIST = re.compile(r"[-a-zA-Z0-9_]+(,[-a-zA-Z0-9_]+)*")


def _real_department(value: str) -> str:
    """A schema-valid slug becomes one of the fixture's departments (stable for the same input)."""
    return DEPARTMENTS[sum(map(ord, value)) % len(DEPARTMENTS)]


def _plural(context) -> str | None:
    found = _RECORD_PATH.match(context.operation.path) if context.operation else None
    return found["plural"] if found else None


# --- references: departments must exist ----------------------------------------------------------
def _real_departments(value):
    if isinstance(value, str) and _DEPARTMENT_LIST.fullmatch(value):
        return ",".join(_real_department(slug) for slug in value.split(","))
    return value


# A time zone is any string to the schema (a plain string, not an enum of the host's zone names): a
# drawn one becomes a real zone, stable for the same input.
ZONES = ("Asia/Ho_Chi_Minh", "Asia/Kolkata", "UTC", "America/New_York")


def _real_zone(value):
    """Only a value the schema allows (1-64 characters) is replaced, so a negative case stays negative."""
    if isinstance(value, str) and 1 <= len(value) <= 64:
        return ZONES[sum(map(ord, value)) % len(ZONES)]
    return value


@SCHEMA.hook
def map_query(context, query):
    """`department=` names departments; a random slug is a 404 (a documented, but dull, answer).
    It is a list (repeated parameter) whose values may each be a comma list."""
    if query and "department" in query:
        value = query["department"]
        query["department"] = ([_real_departments(v) for v in value] if isinstance(value, list)
                               else _real_departments(value))
    if query and context.operation and context.operation.path == "/api/v1/metrics":
        if "timezone" in query:
            query["timezone"] = _real_zone(query["timezone"])
        _metrics_range_aligned(query)
    return query


_MOMENT = re.compile(METRICS_PATTERNS["start"])


def _metrics_range_aligned(query: dict) -> None:
    """/metrics: `start`/`end` must be period boundaries of `granularity`, `end` after `start`, the
    range within its cap and 1900-2999: rules between parameters, and calendar rules, that a pattern
    cannot state. Well-formed values are replaced by dates that keep them (derived from the drawn
    values, so shrinking still works); a value the pattern refuses stays, so negative cases stay."""
    given = [name for name in ("start", "end") if isinstance(query.get(name), str) and _MOMENT.match(query[name])]
    if not given:
        return
    granularity = query.get("granularity") if query.get("granularity") in ("hour", "week", "month", "total") \
        else "day"
    seed = sum(map(ord, "".join(query[name] for name in given)))
    year = 2000 + seed % 30
    if granularity == "month":
        start = date(year, 1 + seed % 12, 1)
        months = start.month - 1 + 1 + seed % 12
        end = date(year + months // 12, months % 12 + 1, 1)
    elif granularity == "week":
        first = date(year, 1, 1) + timedelta(days=seed % 300)
        start = first - timedelta(days=first.weekday())
        end = start + timedelta(weeks=1 + seed % 20)
    else:
        start = date(year, 1, 1) + timedelta(days=seed % 300)
        end = start + timedelta(days=1 + seed % 28)
    if "start" in given:
        query["start"] = start.isoformat()
    if "end" in given:
        query["end"] = end.isoformat()


def _dimension_not_shared(query: dict) -> bool:
    """A KPI across record types grouped or filtered by a dimension one side lacks, any KPI by check
    that is not a system-check KPI, or a registry level grouped by weekday or hour (400, rules between
    two parameters that OpenAPI cannot state)."""
    from metrics.catalog import KPIS
    from metrics.planner import kpi_dimensions_missing

    def values(name) -> list[str]:  # a list parameter (repeated), each value possibly a comma list
        given = query.get(name, [])
        given = given if isinstance(given, list) else [given]
        return [part for value in given if isinstance(value, str) for part in value.split(",")]

    if not values("kpi"):
        return False
    dimensions = set(values("group_by")) | {d for d in ("agent", "channel", "topic", "check", "customer_region")
                                            if query.get(d)}
    if any(KPIS[key].stock for key in values("kpi") if key in KPIS) and dimensions & {"weekday", "hour_of_day"}:
        return True  # a level over time (the customer registry) has no weekday or hour of day
    return any(kpi_dimensions_missing(kpi=KPIS[key], dimensions=dimensions)
               for key in values("kpi") if key in KPIS)


@pytest.fixture
def django_settings_override(settings):
    """The cost caps of /metrics (400 result_too_large) depend on the KPIs, range, grouping and the
    stored data together, which OpenAPI cannot state: lifted here, tested in
    tests/metrics/test_result_cells_limit.py."""
    settings.CSKPI_MAX_RESULT_CELLS = settings.CSKPI_MAX_READ_ROWS = 10**9


@SCHEMA.hook
def filter_query(context, query):
    """Drop `end <= start`: a range must not be empty (400), a rule between two parameters that
    OpenAPI 3.0 cannot state. Only drops well-formed pairs, so negative cases are unaffected.

    Also drop queries holding a None or [] value: nothing of such a parameter goes on the wire, so
    a negative case whose only violation it is reaches the API as a valid request. (No parameter of
    ours is nullable; an empty list parameter is the same as none, so no positive case is lost.)"""
    if not query:
        return True
    if any(value is None or value == [] for value in query.values()):
        return False
    # A list parameter drawn as a lone value (a string, a number): on the wire `agent=0.0` is the
    # one-element list ["0.0"], so such a negative case is a valid request. Drop it.
    if any(name in LIST_PARAMETERS and not isinstance(value, list) for name, value in query.items()):
        return False
    if _dimension_not_shared(query):
        return False
    # At most 200 values per /metrics filter, counted after splitting each repeated value at commas
    # (400 too_many): OpenAPI's maxItems counts the repeated values only.
    for name in ("agent", "channel", "topic", "check", "customer_region"):
        given = query.get(name)
        if isinstance(given, list) and sum(len(str(v).split(",")) for v in given) > 200:
            return False
    if not isinstance(query.get("start"), str) or not isinstance(query.get("end"), str):
        return True
    try:
        start, end = datetime.fromisoformat(query["start"]), datetime.fromisoformat(query["end"])
        return start.tzinfo is None or end.tzinfo is None or end > start
    except (ValueError, OverflowError, TypeError):
        return True


@SCHEMA.hook
def map_body(context, body):
    """Record batches: real departments, and the rules between fields kept (see below).
    Departments: a real time zone."""
    if context.operation and context.operation.path == "/api/v1/departments" and isinstance(body, dict) \
            and "timezone" in body:
        body["timezone"] = _real_zone(body["timezone"])
    if context.operation and context.operation.path.startswith("/api/v1/alert-rules") and isinstance(body, dict):
        return _alert_rule_body(body)
    if context.operation and context.operation.path.endswith("/calendar") and isinstance(body, dict):
        return _calendar_body(body)
    if context.operation and context.operation.path.endswith("/sla") and isinstance(body, dict) \
            and isinstance(body.get("channels"), dict):
        # Channels are slugs (a rule OpenAPI 3.0 cannot put on an object's keys).
        body["channels"] = {f"ch-{sum(map(ord, k)) % 50}": v for k, v in body["channels"].items()}
    plural = _plural(context)
    if plural is None or context.operation.method.upper() != "POST":
        return body
    items = body if isinstance(body, list) else [body]
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("department"), str) \
                and _DEPARTMENT_SLUG.fullmatch(item["department"]):
            item["department"] = _real_department(item["department"])
    _record_rules_kept(plural, items)
    return body


_WINDOW = re.compile(DURATION_PATTERN)


def _alert_rule_body(body: dict) -> dict:
    """Alert rules: a real department; a well-formed window moved into PT5M..P7D; a webhook URL on
    the allowed loopback host (the SSRF rule needs DNS and an allow-list, which a schema cannot
    state) with the secret it then requires. Values the schema refuses are left alone."""
    if isinstance(body.get("department"), str) and _DEPARTMENT_SLUG.fullmatch(body["department"]):
        body["department"] = _real_department(body["department"])
    if isinstance(body.get("window"), str) and _WINDOW.match(body["window"]):
        body["window"] = f"PT{5 + sum(map(ord, body['window'])) % 600}M"
    if isinstance(body.get("webhook_url"), str) and 0 < len(body["webhook_url"]) <= 2000:
        body["webhook_url"] = "http://127.0.0.1/hooks/cskpi"
        body.setdefault("secret", "contract-secret-0123456789")
    if isinstance(body.get("check"), str) and _CHECK_SLUG.fullmatch(body["check"]):
        # A check filter needs a system-check KPI (a rule between two fields); a PATCH without the
        # kpi may apply to a rule on another KPI, so it drops the filter.
        if "kpi" not in body:
            body["check"] = ""
        elif isinstance(body["kpi"], str) and body["kpi"] in KPIS and kpi_dimensions_missing(kpi=KPIS[body["kpi"]], dimensions={"check"}):
            body["kpi"] = "system_checks"
    return body


_HHMM = re.compile(r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")
_COUNTRIES = ("VN", "US", "IN", "JP")


def _real_date(text) -> bool:
    """A string the schema's `format: date` accepts (2024-13-01 matches the digits but is no date)."""
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _calendar_body(body: dict) -> dict:
    """Calendars: the rules a schema cannot state kept — intervals of a day do not overlap (nor cross
    into the next day's) and do not end where they start, `effective_from` is unique, dates are within
    1900-2999, the country has known holidays. Well-formed values are replaced by ones derived from
    them; a value the schema refuses stays, so negative cases stay negative."""
    versions = body.get("versions")
    if not isinstance(versions, list):
        return body
    used: set[str] = set()
    for version in versions:
        if not isinstance(version, dict):
            continue
        if _real_date(version.get("effective_from")):
            day = date(2000, 1, 1) + timedelta(days=sum(map(ord, version["effective_from"])) % 3000)
            while day.isoformat() in used:
                day += timedelta(days=1)
            version["effective_from"] = day.isoformat()
            used.add(day.isoformat())
        if isinstance(version.get("holidays"), list):
            version["holidays"] = [
                (date(2000, 1, 1) + timedelta(days=sum(map(ord, h)) % 3000)).isoformat()
                if _real_date(h) else h for h in version["holidays"]]
        if isinstance(version.get("holiday_country"), str) and re.fullmatch(r"[A-Z]{2}", version["holiday_country"]):
            version["holiday_country"] = _COUNTRIES[sum(map(ord, version["holiday_country"])) % len(_COUNTRIES)]
        weekly = version.get("weekly")
        if isinstance(weekly, dict):
            for name, intervals in weekly.items():
                well_formed = isinstance(intervals, list) and all(
                    isinstance(i, list) and len(i) == 2 and all(isinstance(t, str) and _HHMM.match(t) for t in i)
                    for i in intervals)
                if well_formed:  # one interval per drawn one, in its own hour, never across midnight
                    weekly[name] = [[f"{h:02d}:00", f"{h:02d}:30"] for h in range(len(intervals))]
    return body


# --- references: a detail read names a stored record half of the time ------------------------------
# The fixture stores one record of each type per department, so reads answer 200 with data (and
# their response schema is checked). Keys: (source, "fuzz-<department>").
def _stored_items(plural: str) -> list[dict]:
    return [record_payload(plural, department, external_id=f"fuzz-{department}") for department in DEPARTMENTS]


@SCHEMA.hook
def map_path_parameters(context, path_parameters):
    """A random key is a 404 (documented, but dull): every other drawn key becomes a stored one; a
    department setting's slug becomes a real department."""
    if context.operation.path.startswith("/api/v1/departments/{slug}") and path_parameters \
            and isinstance(path_parameters.get("slug"), str) and _DEPARTMENT_SLUG.fullmatch(path_parameters["slug"]):
        return {**path_parameters, "slug": _real_department(path_parameters["slug"])}
    found = _DETAIL_PATH.match(context.operation.path)
    if found and path_parameters and isinstance(path_parameters.get("external_id"), str) \
            and len(path_parameters["external_id"]) % 2:
        stored = _stored_items(found["plural"])[0]
        path_parameters = {**path_parameters, "source": stored["source"], "external_id": stored["external_id"]}
    return path_parameters


# --- the rules between a record's fields, which a flat schema states in descriptions only -----------
_RULE_CODES = frozenset({"before_anchor", "status_contradiction", "out_of_scale"})
_ANCHORED = {
    "interactions": ("created_at", ("first_response_at", "resolved_at")),
    "cashouts": ("requested_at", ("first_response_at", "completed_at")),
    "customers": ("started_at", ("ended_at",)),
}


def _interaction_status(item: dict) -> None:
    if item.get("resolved_at") is not None:
        item["status"] = "resolved"
    elif item["status"] == "resolved" or (item["status"] in ("abandoned", "missed")
                                          and item.get("first_response_at") is not None):
        item["status"] = "open"


def _cashout_status(item: dict) -> None:
    if item.get("completed_at") is None:
        item["failure_reason"] = None
        if item["status"] not in ("pending", "processing"):
            item["status"] = "pending"
    elif item.get("failure_reason") is not None:
        item["status"] = "failed"
    elif item["status"] not in ("succeeded", "failed"):
        item["status"] = "succeeded"


def _survey_scale(item: dict) -> None:
    low, high, whole = SURVEY_SCALES[item["kind"]]
    score = min(max(item["score"], low), high)
    item["score"] = int(score) if whole else score


_REPAIRS = {"interactions": _interaction_status, "cashouts": _cashout_status, "surveys": _survey_scale,
            "customers": lambda item: None}


def _record_rules_kept(plural: str, items: list) -> None:
    """Repair an item that breaks only rules between fields: a later time moves onto the anchor, the
    status follows the timestamps, a score is clamped into its kind's scale.

    An item with any other error (a value the schema refuses: a negative case) is left alone; the
    fast validator stands in for the schema here, tests/ingestion/test_record_input_schema.py checks
    that the two agree."""
    validator = batch_validator_get(RECORD_SPECS[plural])
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("currency"), str) and item["currency"] in ISO_4217_CODES:
            for name, _ in validator.currency_fields:  # the department's currency (every one here: VND)
                item[name] = "VND"
        _, errors = validator.validate([item], departments=dict.fromkeys(DEPARTMENTS, 1))
        if not errors or any(e["code"] not in _RULE_CODES for e in errors):
            continue
        if plural in _ANCHORED:
            anchor, fields = _ANCHORED[plural]
            start = datetime.fromisoformat(item[anchor])
            for name in fields:
                if item.get(name) is not None and datetime.fromisoformat(item[name]) < start:
                    item[name] = item[anchor]
        _REPAIRS[plural](item)


@pytest.fixture(autouse=True)
def keep_test_connection():
    """Django closes connections at the end of each WSGI request; inside a test that would end the
    test's transaction. Django's test client disconnects the same handlers."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def staff_token(db, settings):
    settings.CSKPI_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]  # where _alert_rule_body points webhooks
    DepartmentFactory(slug="cskh-hn", timezone="Asia/Ho_Chi_Minh")
    DepartmentFactory(slug="cskh-del", timezone="Asia/Kolkata")
    user = user_grants_upsert(username="fuzz-staff", staff=True)
    for plural in RECORD_SPECS:
        record_batch_ingest(spec=RECORD_SPECS[plural], items=_stored_items(plural), access=access_get(user=user))
    return token_issue(user=user)


@pytest.mark.parametrize(("operation", "mode"), CASES)
def test_api_contract(operation, mode, staff_token, django_settings_override):
    headers = {"Authorization": f"Bearer {staff_token}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES_BY_PATH.get(operation.path, MAX_EXAMPLES), deadline=None,
              database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    def check(case):
        case.call_and_validate(headers=headers)

    check()
