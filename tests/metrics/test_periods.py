"""Period boundaries in zones with irregular days (hardening issue, finding 8: the skipped day)."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from metrics.periods import boundaries_get
from tests.metrics.records import interaction_build, records_store

APIA = ZoneInfo("Pacific/Apia")  # skipped 2011-12-30 when it moved west of the date line


def _reference_day_starts(first: datetime, last: datetime, zone: ZoneInfo) -> list[datetime]:
    """The first UTC quarter-hour of every local date met between `first` and `last`."""
    starts, seen, moment = [], set(), first
    while moment < last:
        day = moment.astimezone(zone).date()
        if day not in seen:
            seen.add(day)
            starts.append(moment)
        moment += timedelta(minutes=15)
    return starts


def test_a_day_series_over_a_skipped_day_repeats_no_period_start():
    start = datetime(2011, 12, 28, tzinfo=APIA).astimezone(UTC)
    end = datetime(2012, 1, 3, tzinfo=APIA).astimezone(UTC)
    bounds = boundaries_get(start=start, end=end, zone=APIA, granularity="day")
    assert len(bounds) == len(set(bounds)) and bounds == sorted(bounds)
    local_days = [b.astimezone(APIA).date().isoformat() for b in bounds[:-1]]
    assert local_days == ["2011-12-28", "2011-12-29", "2011-12-31", "2012-01-01", "2012-01-02"]
    assert bounds[:-1] == _reference_day_starts(start, end, APIA)


@pytest.mark.django_db
def test_the_metrics_series_over_the_skipped_day(staff_client, department):
    department.timezone = "Pacific/Apia"
    department.save()
    moment = datetime(2011, 12, 31, 9, tzinfo=APIA)
    records_store([interaction_build(department=department, created_at=moment),
                   interaction_build(department=department, created_at=moment - timedelta(days=2))])
    response = staff_client.get("/api/v1/metrics", {"kpi": "interactions", "start": "2011-12-28",
                                                     "end": "2012-01-02", "timezone": "Pacific/Apia"})
    assert response.status_code == 200, response.content
    series = response.json()["results"][0]["series"]
    starts = [p["start"][:10] for p in series]
    assert starts == ["2011-12-28", "2011-12-29", "2011-12-31", "2012-01-01"]
    assert [p["value"] for p in series] == [0, 1, 1, 0]
