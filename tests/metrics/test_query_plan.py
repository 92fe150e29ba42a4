"""Which cube serves which query: the cheapest whose dimensions and buckets fit."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from metrics.catalog import KPIS
from metrics.selectors import DepartmentScope, KpiQuery, query_plan

pytestmark = pytest.mark.django_db


def _plan(department, *, zone="Asia/Ho_Chi_Minh", start="2026-03-01", end="2026-04-01", granularity="day",
          kpi="interactions", agent_scope=None, **kwargs):
    tz = ZoneInfo(zone)
    s = datetime.fromisoformat(start)
    e = datetime.fromisoformat(end)
    s = s.astimezone(UTC) if s.tzinfo else s.replace(tzinfo=tz).astimezone(UTC)
    e = e.astimezone(UTC) if e.tzinfo else e.replace(tzinfo=tz).astimezone(UTC)
    query = KpiQuery(kpis=(KPIS[kpi],), scopes=(DepartmentScope(department, agent_scope),), start=s, end=e,
                     zone=zone, granularity=granularity, **kwargs)
    return query_plan(query=query)[("interaction", department.slug)]


@pytest.mark.parametrize(("kwargs", "cube"), [
    ({}, "DT"),
    ({"granularity": "month", "start": "2026-01-01", "end": "2027-01-01"}, "DT"),
    ({"group_by": ("channel",)}, "DC"),
    ({"group_by": ("department",)}, "DT"),
    ({"group_by": ("agent",)}, "DA"),
    ({"agents": ("a-1",)}, "DA"),
    ({"agent_scope": "a-1"}, "DA"),
    ({"group_by": ("agent",), "channels": ("phone",)}, "D"),
    ({"granularity": "total"}, "DT"),
    ({"granularity": "hour", "end": "2026-03-02"}, "H"),
    ({"zone": "UTC"}, "H"),
    ({"zone": "America/New_York"}, "H"),
    ({"zone": "Asia/Kolkata"}, "Q"),
    ({"zone": "Asia/Kolkata", "granularity": "hour", "end": "2026-03-02"}, "Q"),
    ({"zone": "UTC", "group_by": ("agent",)}, "Q"),
    ({"granularity": "total", "start": "2026-03-01T10:15:00+07:00"}, "Q"),
    ({"granularity": "total", "start": "2026-03-01T10:00:00+07:00"}, "H"),
    # Bangkok shares Ho Chi Minh City's midnights: the local-day cubes fit.
    ({"zone": "Asia/Bangkok"}, "DT"),
    ({"zone": "Asia/Bangkok", "channels": ("chat",)}, "DC"),
])
def test_cheapest_fitting_cube(department, kwargs, cube):
    assert _plan(department, **kwargs) == cube
