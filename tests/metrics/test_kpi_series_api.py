"""GET /api/v1/metrics: parameters, response shape, and who may see which numbers."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.metrics.records import interaction_build, records_store

pytestmark = pytest.mark.django_db

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DAY = datetime(2026, 5, 4, tzinfo=TZ)


@pytest.fixture
def traffic(department, other_department):
    """cskh-hn: a-1 ×3 (2 resolved first contact), a-2 ×2; cskh-hcm: a-9 ×4. All on 2026-05-04 local."""
    records_store([
        interaction_build(department=department, created_at=DAY + timedelta(hours=9), agent="a-1"),
        interaction_build(department=department, created_at=DAY + timedelta(hours=10), agent="a-1"),
        interaction_build(department=department, created_at=DAY + timedelta(hours=11), agent="a-1",
                          contact_count=2, channel="chat"),
        interaction_build(department=department, created_at=DAY + timedelta(hours=12), agent="a-2",
                          status="abandoned"),
        interaction_build(department=department, created_at=DAY + timedelta(hours=13), agent="a-2",
                          channel="chat"),
        *[interaction_build(department=other_department, created_at=DAY + timedelta(hours=h), agent="a-9")
          for h in (8, 9, 10, 11)],
    ])


def _get(client, **params):
    params.setdefault("start", "2026-05-04")
    params.setdefault("end", "2026-05-06")
    return client.get("/api/v1/metrics", params)


def _total(client, kpi="interactions", **params):
    response = _get(client, kpi=kpi, granularity="total", **params)
    assert response.status_code == 200, response.json()
    return {tuple(r["group"].values()): r["value"] for r in response.json()["results"]}


def test_response_shape_day_series_with_comparison(traffic, staff_client):
    response = _get(staff_client, kpi="fcr_rate,interactions", department="cskh-hn", compare="previous_period")
    assert response.status_code == 200
    body = response.json()
    assert body["start"] == "2026-05-04T00:00:00+07:00" and body["end"] == "2026-05-06T00:00:00+07:00"
    assert body["timezone"] == "Asia/Ho_Chi_Minh" and body["granularity"] == "day" and body["as_of"]
    fcr, count = body["results"]
    assert fcr == {
        "kpi": "fcr_rate", "unit": "percent", "group": {}, "value": 75.0, "sample_size": 4,
        "series": [{"start": "2026-05-04T00:00:00+07:00", "value": 75.0, "sample_size": 4},
                   {"start": "2026-05-05T00:00:00+07:00", "value": None, "sample_size": 0}],
        "previous": {"start": "2026-05-02T00:00:00+07:00", "end": "2026-05-04T00:00:00+07:00", "value": None,
                     "sample_size": 0,
                     "series": [{"start": "2026-05-02T00:00:00+07:00", "value": None, "sample_size": 0},
                                {"start": "2026-05-03T00:00:00+07:00", "value": None, "sample_size": 0}]},
        "change": None,
    }
    assert count["value"] == 5 and count["series"][1] == {"start": "2026-05-05T00:00:00+07:00", "value": 0,
                                                          "sample_size": 0}
    assert count["previous"]["value"] == 0 and count["change"] == 5


def test_group_by_and_filters(traffic, staff_client):
    assert _total(staff_client, department="cskh-hn", group_by="agent") == {("a-1",): 3, ("a-2",): 2}
    assert _total(staff_client, group_by="department") == {("cskh-hcm",): 4, ("cskh-hn",): 5}
    assert _total(staff_client, department="cskh-hn", group_by="channel,agent", channel="chat") == {
        ("chat", "a-1"): 1, ("chat", "a-2"): 1}
    assert _total(staff_client, department="cskh-hn", agent="a-2", kpi="abandonment_rate") == {(): 50.0}


def test_staff_without_department_sees_all(traffic, staff_client):
    assert _total(staff_client) == {(): 9}


def test_viewer_totals_never_include_another_department(traffic, make_client, staff_client):
    viewer = make_client(grants=[("cskh-hn", "viewer")])
    assert _total(viewer) == {(): 5}
    assert _total(viewer) == _total(staff_client, department="cskh-hn")
    assert _total(viewer, group_by="department") == {("cskh-hn",): 5}
    assert _get(viewer, kpi="interactions", department="cskh-hcm").status_code == 403
    assert _get(viewer, kpi="interactions", department="cskh-hn,cskh-hcm").status_code == 403


def test_viewer_cannot_group_or_filter_by_agent(traffic, make_client):
    viewer = make_client(grants=[("cskh-hn", "viewer")])
    for params, field in (({"group_by": "agent"}, "group_by"), ({"agent": "a-1"}, "agent")):
        response = _get(viewer, kpi="interactions", **params)
        assert response.status_code == 403  # one read-scope policy: a permission, as on the record lists
        assert response.json()["errors"][0]["field"] == field
        assert response.json()["errors"][0]["code"] == "not_permitted"
    assert _total(viewer, group_by="channel") == {("chat",): 2, ("phone",): 3}


def test_agent_sees_only_itself(traffic, make_client):
    agent = make_client(grants=[("cskh-hn", "agent")], agent="a-1")
    assert _total(agent) == {(): 3}
    assert _total(agent, group_by="agent") == {("a-1",): 3}
    assert _total(agent, agent="a-1") == {(): 3}
    assert _total(agent, kpi="fcr_rate") == {(): pytest.approx(200 / 3)}
    response = _get(agent, kpi="interactions", agent="a-2")
    assert response.status_code == 403 and "agent" in response.json()["detail"]
    assert _get(agent, kpi="interactions", department="cskh-hcm").status_code == 403


def test_manager_sees_every_agent_of_its_department_only(traffic, make_client):
    manager = make_client(grants=[("cskh-hn", "manager")])
    assert _total(manager, group_by="agent") == {("a-1",): 3, ("a-2",): 2}
    assert _get(manager, kpi="interactions", department="cskh-hcm").status_code == 403


def test_mixed_roles_sum_only_what_each_grant_shows(traffic, make_client):
    caller = make_client(grants=[("cskh-hn", "agent"), ("cskh-hcm", "manager")], agent="a-2")
    assert _total(caller, group_by="department") == {("cskh-hcm",): 4, ("cskh-hn",): 2}


def test_ingest_only_and_anonymous_read_nothing(traffic, make_client, anon_client):
    assert _get(make_client(grants=[("cskh-hn", "ingest")]), kpi="interactions").status_code == 403
    assert _get(anon_client, kpi="interactions").status_code == 401


@pytest.mark.parametrize(("params", "field", "code"), [
    ({"kpi": "nope"}, "kpi", "unknown_kpi"),
    ({"kpi": ""}, "kpi", "blank"),
    ({"kpi": "interactions", "start": "2026-05-06", "end": "2026-05-04"}, "end", "end_before_start"),
    ({"kpi": "interactions", "granularity": "hour", "start": "2026-01-01", "end": "2026-03-01"}, "end",
     "range_too_long"),
    ({"kpi": "interactions", "start": "2026-05-04T10:07:00+07:00"}, "start", "unaligned"),
    ({"kpi": "interactions", "granularity": "week", "start": "2026-05-05T00:00:30+07:00", "end": "2026-05-11"},
     "start", "unaligned"),
    ({"kpi": "interactions", "start": "2026-05-04T00:00:00"}, "start", "offset_required"),
    ({"kpi": "interactions", "start": "yesterday"}, "start", "invalid"),
    ({"kpi": "interactions", "timezone": "Mars/Olympus"}, "timezone", "invalid_timezone"),
    ({"kpi": "interactions", "granularity": "fortnight"}, "granularity", "invalid_choice"),
    ({"kpi": "interactions", "compare": "last_century"}, "compare", "invalid_choice"),
    ({"kpi": "interactions", "group_by": "customer"}, "group_by", "invalid_choice"),
    ({"kpi": "interactions", "department": "nowhere"}, "department", "unknown_department"),
    # An empty item of a list parameter, which no item of its OpenAPI enum or pattern is.
    ({"kpi": "interactions,,fcr_rate"}, "kpi", "blank"),
    ({"kpi": "interactions,"}, "kpi", "blank"),
    ({"kpi": "interactions", "group_by": "agent, ,channel"}, "group_by", "blank"),
    ({"kpi": "interactions", "department": "cskh-hn,"}, "department", "blank"),
    ({"kpi": "interactions", "department": ","}, "department", "blank"),
    # Periods off the UTC quarter-hours: the zone's offset was then not a whole number of quarter-hours
    # (Asia/Singapore +07:20 in 1933-1941, Europe/Amsterdam +00:19:32 before 1937), though the range's ends are on them.
    ({"kpi": "interactions", "timezone": "Asia/Singapore", "start": "1932-12-01", "end": "1941-10-01",
      "granularity": "month"}, "timezone", "unaligned"),
    ({"kpi": "interactions", "timezone": "Asia/Singapore", "start": "1932-12-01", "end": "1941-10-01",
      "granularity": "total", "group_by": "weekday"}, "timezone", "unaligned"),
    ({"kpi": "interactions", "timezone": "Europe/Amsterdam", "start": "1936-01-01T00:00:00Z",
      "end": "1936-01-02T00:00:00Z", "granularity": "hour"}, "timezone", "unaligned"),
    ({"kpi": "interactions", "timezone": "Europe/Amsterdam", "start": "1936-01-01T00:00:00Z",
      "end": "1936-01-02T00:00:00Z", "granularity": "total", "group_by": "hour_of_day"}, "timezone", "unaligned"),
    ({"kpi": "interactions", "timezone": "Asia/Singapore", "start": "1941-10-01", "end": "1941-11-01",
      "compare": "previous_year"}, "timezone", "unaligned"),
    ({"kpi": "interactions", "timezone": "Asia/Singapore", "start": "1941-10-01", "end": "1941-11-01",
      "granularity": "month", "compare": "previous_period"}, "timezone", "unaligned"),
])
def test_bad_parameters_are_400_naming_the_parameter(department, staff_client, params, field, code):
    response = staff_client.get("/api/v1/metrics", {"start": "2026-05-04", "end": "2026-05-06", **params})
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "invalid"
    assert (body["errors"][0]["field"], body["errors"][0]["code"]) == (field, code)


def test_offset_datetimes_and_other_zones(traffic, staff_client):
    # "+" decoded to a space by a client that did not encode it is accepted too.
    response = _get(staff_client, kpi="interactions", department="cskh-hn", granularity="hour",
                    start="2026-05-04T09:00:00 07:00", end="2026-05-04T12:00:00+07:00")
    assert response.status_code == 200, response.json()
    assert [p["value"] for p in response.json()["results"][0]["series"]] == [1, 1, 1]
    response = _get(staff_client, kpi="interactions", department="cskh-hn", timezone="Asia/Kolkata",
                    start="2026-05-04", end="2026-05-05")
    # 09:00–13:00 +07:00 is 07:30–11:30 +05:30: all on 2026-05-04 in Kolkata.
    assert response.json()["results"][0]["value"] == 5
    assert response.json()["start"] == "2026-05-04T00:00:00+05:30"


def test_defaults_cover_the_current_periods(department, staff_client):
    response = staff_client.get("/api/v1/metrics", {"kpi": "interactions", "granularity": "week"})
    assert response.status_code == 200
    assert len(response.json()["results"][0]["series"]) == 12


def test_in_process_results_are_fresh_when_the_ingest_commit_returns(department, staff_client, settings,
                                                                     django_capture_on_commit_callbacks):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the embedded mode, whatever REDIS_URL says
    with django_capture_on_commit_callbacks(execute=True):
        records_store([interaction_build(department=department, created_at=DAY + timedelta(hours=9))], then="kick")
    assert _total(staff_client) == {(): 1}


_junk = st.one_of(st.none(), st.text(max_size=30), st.sampled_from([
    "2026-05-04", "0001-01-01", "9999-12-31", "2026-02-30", "2026-05-04T00:00:00+07:00", "2026-05-04T00:00:00Z",
    "2026-05-04T00:00:00 07:00", "interactions", "fcr_rate,csat", "agent,channel", "department", "UTC",
    "Asia/Kolkata", "previous_year", "hour", "week", "month", "total", ",,,", "a-1", "cskh-hn", "cskh-hcm",
]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.fixed_dictionaries({}, optional={name: _junk for name in (
    "kpi", "department", "start", "end", "granularity", "timezone", "group_by", "agent", "channel", "compare")}))
def test_no_parameters_produce_a_500(department, other_department, make_client, params):
    client = make_client(grants=[("cskh-hn", "agent")], agent="a-1", username="fuzz")
    response = client.get("/api/v1/metrics", {k: v for k, v in params.items() if v is not None})
    assert response.status_code in (200, 400, 403), response.content
    body = response.json()
    if response.status_code != 200:
        assert set(body) == {"code", "detail", "errors"}


def test_an_unknown_parameter_is_400_naming_it(department, staff_client):
    response = staff_client.get("/api/v1/metrics", {"kpi": "interactions", "granularty": "day"})
    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("granularty", "unknown_parameter")]


def test_a_formula_across_record_types_reads_both_sides(department, traffic, make_client):
    from tests.metrics.records import survey_build

    records_store([
        survey_build(department=department, submitted_at=DAY + timedelta(hours=15), kind="csat", agent="a-1"),
        survey_build(department=department, submitted_at=DAY + timedelta(hours=16), kind="nps", agent="a-1",
                     score=9),
        survey_build(department=department, submitted_at=DAY + timedelta(hours=17), kind="csat", agent="a-2"),
    ])
    client = make_client(grants=[(department.slug, "manager")])
    response = _get(client, kpi="survey_response_rate", department=department.slug, group_by="agent",
                    granularity="total")
    assert response.status_code == 200
    by_agent = {r["group"]["agent"]: (r["value"], r["sample_size"]) for r in response.json()["results"]}
    # a-1: 1 csat response / 3 resolved interactions; a-2: 1 / 1 (its other interaction was abandoned).
    assert by_agent == {"a-1": (pytest.approx(100 / 3), 3), "a-2": (100.0, 1)}


def test_a_formula_across_record_types_refuses_a_dimension_one_side_lacks(department, make_client,
                                                                          monkeypatch):
    from metrics import catalog

    kpi = catalog.Kpi("cashouts_per_interaction", "Cashouts per interaction", "Rút tiền / yêu cầu",
                      catalog.Unit.PERCENT, True, "cashouts / interactions × 100",
                      catalog.ratio("cashouts", "interactions"))
    monkeypatch.setitem(catalog.KPIS, kpi.key, kpi)
    client = make_client(grants=[(department.slug, "manager")])
    response = _get(client, kpi=kpi.key, department=department.slug, group_by="agent")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["field"] == "group_by" and error["code"] == "dimension_not_shared"
    assert "cashout" in error["message"] and "agent" in error["message"]
    assert _get(client, kpi=kpi.key, department=department.slug, group_by="channel").status_code == 200


def test_time_dimension_groups_are_integers_the_schema_allows(traffic, staff_client, anon_client):
    """weekday and hour_of_day are integers in the answer; the OpenAPI schema of a group value must accept
    them (the contract fuzz found an hour_of_day group the schema refused)."""
    from jsonschema import Draft202012Validator

    response = _get(staff_client, kpi="interactions", department="cskh-hn", granularity="total",
                    group_by="agent,weekday,hour_of_day")
    assert response.status_code == 200, response.json()
    groups = [r["group"] for r in response.json()["results"]]
    assert {(g["agent"], g["weekday"], g["hour_of_day"]) for g in groups} == {
        ("a-1", 1, 9), ("a-1", 1, 10), ("a-1", 1, 11), ("a-2", 1, 12), ("a-2", 1, 13)}
    schema = anon_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    validator = Draft202012Validator(schema["components"]["schemas"]["KpiResult"]["properties"]["group"])
    for group in groups:
        validator.validate(group)
