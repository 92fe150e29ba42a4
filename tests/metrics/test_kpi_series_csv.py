"""GET /api/v1/metrics as CSV: one row per KPI x group x period, the same numbers as the JSON answer."""

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.metrics.records import interaction_build, records_store, survey_build

pytestmark = pytest.mark.django_db

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DAY = datetime(2026, 5, 4, tzinfo=TZ)


@pytest.fixture
def traffic(department):
    records_store([
        interaction_build(department=department, created_at=DAY + timedelta(hours=9), agent="a-1"),
        interaction_build(department=department, created_at=DAY + timedelta(hours=10), agent="a-1",
                          contact_count=2),
        interaction_build(department=department, created_at=DAY + timedelta(days=1, hours=3), agent="a-2",
                          channel="chat"),
        survey_build(department=department, submitted_at=DAY + timedelta(hours=9), score=4, agent="a-1"),
        survey_build(department=department, submitted_at=DAY + timedelta(days=1, hours=9), score=2, agent="a-2"),
    ])


_QUERY = {"kpi": "interactions,fcr_rate,csat_score", "start": "2026-05-04", "end": "2026-05-07",
          "group_by": "agent"}


def _rows(response):
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def _number(text: str):
    return None if text == "" else float(text)


def _json_cells(body: dict) -> dict:
    """(kpi, agent, period start) -> (value, sample_size), read from the JSON answer."""
    cells = {}
    for result in body["results"]:
        for point in result.get("series") or [{"start": body["start"], "value": result["value"],
                                              "sample_size": result["sample_size"]}]:
            cells[(result["kpi"], result["group"].get("agent"), point["start"])] = (point["value"],
                                                                                   point["sample_size"])
    return cells


@pytest.mark.parametrize("how", ["accept", "format"])
@pytest.mark.parametrize("granularity", ["day", "total"])
def test_csv_has_the_json_numbers(traffic, staff_client, how, granularity):
    query = {**_QUERY, "granularity": granularity}
    body = staff_client.get("/api/v1/metrics", query).json()
    if how == "accept":
        response = staff_client.get("/api/v1/metrics", query, HTTP_ACCEPT="text/csv")
    else:
        response = staff_client.get("/api/v1/metrics", {**query, "format": "csv"})
    rows = _rows(response)
    assert list(rows[0]) == ["kpi", "unit", "agent", "period_start", "period_end", "value", "sample_size"]
    cells = {(r["kpi"], r["agent"] or None, r["period_start"]): (_number(r["value"]), int(r["sample_size"]))
             for r in rows}
    assert len(cells) == len(rows)  # one row per KPI x group x period
    assert cells == _json_cells(body)
    periods = 1 if granularity == "total" else 3
    assert len(rows) == 3 * 2 * periods  # 3 KPIs x agents a-1, a-2 x periods


def test_csv_numbers_match_the_records(traffic, staff_client):
    """Independent reference: a-1 has 2 interactions on 05-04, 1 of 2 resolved at first contact; a-2 one on
    05-05; csat_score of a-1 on 05-04 is 4."""
    rows = _rows(staff_client.get("/api/v1/metrics", {**_QUERY, "format": "csv"}))
    cell = {(r["kpi"], r["agent"], r["period_start"][:10]): r for r in rows}
    assert float(cell[("interactions", "a-1", "2026-05-04")]["value"]) == 2
    assert cell[("interactions", "a-1", "2026-05-04")]["period_end"] == "2026-05-05T00:00:00+07:00"
    assert float(cell[("fcr_rate", "a-1", "2026-05-04")]["value"]) == 50.0
    assert float(cell[("interactions", "a-2", "2026-05-05")]["value"]) == 1
    assert float(cell[("csat_score", "a-1", "2026-05-04")]["value"]) == 4
    assert cell[("fcr_rate", "a-2", "2026-05-06")]["value"] == ""  # no data: null
    assert cell[("fcr_rate", "a-2", "2026-05-06")]["period_end"] == "2026-05-07T00:00:00+07:00"


def test_csv_errors_stay_json(traffic, staff_client):
    response = staff_client.get("/api/v1/metrics", {"kpi": "nope", "format": "csv"})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["errors"][0]["field"] == "kpi"


def test_unknown_format_is_a_400_naming_it(traffic, staff_client):
    response = staff_client.get("/api/v1/metrics", {"kpi": "interactions", "format": "xml"})
    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("format", "invalid_choice")]
