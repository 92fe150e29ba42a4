"""Agent presence: the intervals a set of status events defines, and who is in which state now.

An event holds its status from its `at` until the same agent's next event in the department, and
at most the presence timeout (`CSKPI_PRESENCE_TIMEOUT_SECONDS`); after the last event it holds until
now (still within the timeout). Past the timeout the agent counts as offline. Events of one agent
are ordered by `(at, source, external_id)`: the tie-break depends only on the final set of events,
never on the order they arrived in, so equal times give the same intervals however they were sent
(an earlier tie holds for zero seconds).

Nothing here is stored: the KPI engine derives the intervals from the raw events when it recomputes
a quarter-hour (under its per-department lock, from committed rows), so late, moved, duplicated and
concurrently written events all end up as the intervals of the final set. What a change can touch is
bounded without looking at its neighbours: an event at t decides the state only within [t, t + timeout)
(before t the events before it decide; from t + timeout on, it and everything before it have timed
out), so marking the quarters of that span — for the old and the new place of a moved event — is
enough (`presence_span`), and needs no lock between concurrent writers.
"""

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from ingestion.changes import quarter_floor
from ingestion.choices import QUARTER, AgentStatus


def presence_timeout() -> timedelta:
    return timedelta(seconds=settings.CSKPI_PRESENCE_TIMEOUT_SECONDS)


def presence_span(at: datetime, *, now: datetime | None = None) -> tuple[datetime, datetime]:
    """[start, end) of the time an event at `at` can decide: up to its timeout, but not past now
    (quarters that are still to come are marked by the recompute's sweep as time reaches them)."""
    now = timezone.now() if now is None else now
    return at, max(at, min(at + presence_timeout(), now))


def state_intervals(events: Iterable[tuple], *, now: datetime, timeout: timedelta) -> Iterator[tuple]:
    """(agent, status, start, end) with end > start, from events (agent, status, at, ...tie-break),
    sorted by agent and then by (at, tie-break)."""
    previous = None
    for event in events:
        if previous is not None:
            agent, status, at = previous[0], previous[1], previous[2]
            end = min(at + timeout, now, event[2]) if event[0] == agent else min(at + timeout, now)
            if end > at:
                yield agent, status, at, end
        previous = event
    if previous is not None:
        agent, status, at = previous[0], previous[1], previous[2]
        end = min(at + timeout, now)
        if end > at:
            yield agent, status, at, end


def segment_seconds(intervals: Iterable[tuple], edges: list[datetime]) -> Iterator[tuple[int, str, str, float]]:
    """(i, agent, status, seconds) for each segment [edges[i], edges[i + 1]) an interval (agent, status,
    start, end) spends time in: the intervals cut exactly at the edges (sorted; time outside the first and
    the last is not counted)."""
    last = len(edges) - 1
    for agent, status, start, end in intervals:
        i = max(bisect_right(edges, start) - 1, 0)
        while i < last and edges[i] < end:
            cut = (min(end, edges[i + 1]) - max(start, edges[i])).total_seconds()
            if cut > 0:
                yield i, agent or "", status, cut
            i += 1


def quarter_seconds(intervals: Iterable[tuple],
                    spans: list[tuple[datetime, datetime]]) -> Iterator[tuple[datetime, str, str, float]]:
    """(quarter start, agent, status, seconds) for each UTC quarter-hour an interval (agent, status, start,
    end) spends time in within `spans` (sorted, disjoint, on quarter-hours): `segment_seconds` over their
    quarters. Every bucket of every period in any zone is a union of quarter-hours, so the seconds of a
    bucket are the sum of its quarters'."""
    edges: list[datetime] = []
    gaps: set[int] = set()  # the segments between two spans
    for start, end in spans:
        if edges:
            gaps.add(len(edges) - 1)
        at = quarter_floor(start)
        while at < end:
            edges.append(at)
            at += QUARTER
        edges.append(at)
    for i, agent, status, cut in segment_seconds(intervals, edges):
        if i not in gaps:
            yield edges[i], agent, status, cut


def current_state(events_newest_first: Iterable[tuple], *, now: datetime,
                  timeout: timedelta) -> tuple[str, datetime, datetime] | None:
    """(status, since, last event at) of one agent from its events at or before now, newest first
    (status, at). `since` is when the current state began: the first event of the unbroken run of
    that status (a repeated status does not restart it; a timed-out gap does), or, past the
    timeout, the moment the last event timed out (status offline)."""
    iterator = iter(events_newest_first)
    newest = next(iterator, None)
    if newest is None:
        return None
    status, since = newest[0], newest[1]
    last_at = since
    if now - last_at >= timeout:
        return AgentStatus.OFFLINE.value, last_at + timeout, last_at
    for earlier_status, earlier_at in iterator:
        if earlier_status != status or since - earlier_at >= timeout:
            break
        since = earlier_at
    return status, since, last_at
