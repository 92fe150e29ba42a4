"""The cost bound of a KPI query: how many cells (KPIs x groups x periods) its answer would hold.

Checked while the query is parsed, before anything is read: the periods come from the range, the
groups from a cheap pre-count of the distinct agents/channels (and departments) the range holds in
a local-day cube, stopped as soon as it passes the cap.
"""

from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.db.models import Q

from cskpi.errors import InvalidInput
from metrics.cubes import AGENT, CHANNEL, CUBES
from metrics.models import BUCKET_MODELS
from metrics.periods import boundaries_get

DEPARTMENT = "department"
RESULT_TOO_LARGE = "result_too_large"


def result_cells_check(*, query) -> int:
    """The answer's cell count; 400 `result_too_large` when it is over CSKPI_MAX_RESULT_CELLS."""
    cap = settings.CSKPI_MAX_RESULT_CELLS
    periods = len(boundaries_get(start=query.start, end=query.end, zone=query.tz,
                                 granularity=query.granularity)) - 1
    kpis_by_type = Counter(kpi.record_type for kpi in query.kpis)
    dims = [d for d in (AGENT, CHANNEL) if d in query.group_by]
    by_department = DEPARTMENT in query.group_by
    if not dims:
        groups = {rt: len(query.scopes) if by_department else 1 for rt in kpis_by_type}
    else:
        room = max(cap // max(periods * len(query.kpis), 1), 0)
        groups = {rt: groups_count(query=query, record_type=rt, dims=dims, by_department=by_department,
                                   limit=room + 1) for rt in kpis_by_type}
    cells = periods * sum(n * groups[rt] for rt, n in kpis_by_type.items())
    if cells > cap:
        most = max(groups.values())
        more = "at least " if dims and most > cap // max(periods * len(query.kpis), 1) else ""
        message = (
            f"The answer would hold {len(query.kpis)} KPIs × {more}{most} groups × {periods} periods "
            f"= {more}{cells} cells, over the limit of {cap} (CSKPI_MAX_RESULT_CELLS). Narrow it: fewer "
            "KPIs, a coarser granularity or a shorter range, fewer departments, or filter by agent or "
            "channel instead of grouping by it."
        )
        raise InvalidInput(message, [{"field": None, "code": RESULT_TOO_LARGE, "message": message}],
                           code=RESULT_TOO_LARGE)
    return cells


def groups_count(*, query, record_type: str, dims: list[str], by_department: bool, limit: int) -> int:
    """Distinct groups the range holds for one record type, counted up to `limit` (a local-day cube
    read over the range widened by a day each side: an upper bound of the groups the answer has)."""
    needed = set(dims) | ({AGENT} if query.agents or any(s.agent for s in query.scopes) else set())
    needed |= {CHANNEL} if query.channels else set()
    cube = next(c for c in CUBES if c.local_day and needed <= c.dims)
    rows = BUCKET_MODELS[record_type].objects.filter(
        cube=cube.key, bucket_start__gte=query.start - timedelta(days=1),
        bucket_start__lt=query.end + timedelta(days=1),
    )
    scope_q = Q(pk__in=[])
    for scope in query.scopes:
        scope_q |= Q(department_id=scope.department.id, **({"agent": scope.agent} if scope.agent else {}))
    rows = rows.filter(scope_q)
    if query.agents:
        rows = rows.filter(agent__in=query.agents)
    if query.channels:
        rows = rows.filter(channel__in=query.channels)
    keys = [*(["department_id"] if by_department else []), *dims]
    return len(rows.order_by().values_list(*keys).distinct()[:limit])
