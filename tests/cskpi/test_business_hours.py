"""Business durations, deadlines and attainment on hand-computed cases: the plain-Python reference
(tests/cskpi/business_hours_reference.py) and the compiled calendar (cskpi.calendars) each give the
numbers worked out by hand below; then both are compared on random calendars."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cskpi.calendars import MICROS, BusinessCalendar, calendar_parse, from_micros, micros
from cskpi.errors import InvalidInput
from tests.cskpi import business_hours_reference as ref

NY, HCM, KOLKATA = ZoneInfo("America/New_York"), ZoneInfo("Asia/Ho_Chi_Minh"), ZoneInfo("Asia/Kolkata")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _version(weekly, effective_from="2026-01-01", holidays=(), country=None):
    return {"effective_from": effective_from, "weekly": weekly, "holidays": list(holidays),
            "holiday_country": country}


def _both(versions, zone, anchor, stop) -> tuple[float, float]:
    """(reference, engine) business seconds; the engine's two paths (the upsert's `measure` from a fresh
    clock and `open_between`) must agree."""
    compiled = BusinessCalendar(calendar_parse({"versions": versions}), zone)
    clock = compiled.clock_at(micros(anchor))
    engine = compiled.open_between(micros(anchor), micros(stop))
    if clock is not None:
        fresh = BusinessCalendar(calendar_parse({"versions": versions}), zone).clock_at(micros(anchor))
        assert fresh.measure(micros(anchor), (micros(stop),), ())[0] == [engine]
    return ref.business_seconds(versions, zone, anchor, stop), engine / MICROS


def _deadline(versions, zone, anchor, target) -> datetime | None:
    compiled = BusinessCalendar(calendar_parse({"versions": versions}), zone)
    due = compiled.deadline(micros(anchor), target * MICROS)
    clock = BusinessCalendar(calendar_parse({"versions": versions}), zone).clock_at(micros(anchor))
    if clock is not None:
        assert clock.measure(micros(anchor), (), (target * MICROS,))[1] == [due]
    return None if due is None else from_micros(due)


def _local(zone, *parts) -> datetime:
    return datetime(*parts, tzinfo=zone)


OVERNIGHT_SAT = [_version({"sat": [["22:00", "06:00"]]})]


def test_overnight_shift_across_spring_forward_in_new_york():
    # Sat 2026-03-07 22:00 EST (03:00Z) to Sun 06:00 EDT (10:00Z): 7 hours, the clocks skipped 02:00-03:00.
    anchor = _local(NY, 2026, 3, 7, 21, 0)
    stop = _local(NY, 2026, 3, 8, 7, 0)
    assert _both(OVERNIGHT_SAT, NY, anchor, stop) == (7 * 3600, 7 * 3600)
    # Two hours of open time are reached at 05:00Z, i.e. Sun 00:00 EST.
    assert _deadline(OVERNIGHT_SAT, NY, anchor, 2 * 3600) == datetime(2026, 3, 8, 5, 0, tzinfo=UTC)
    # Exactly the shift: still met through the closed week, until the next shift opens (Sat 14th 22:00 EDT).
    assert _deadline(OVERNIGHT_SAT, NY, anchor, 7 * 3600) == datetime(2026, 3, 15, 2, 0, tzinfo=UTC)


def test_overnight_shift_across_fall_back_in_new_york():
    # Sat 2026-10-31 22:00 EDT (02:00Z) to Sun 06:00 EST (11:00Z): 9 hours, 01:00-02:00 lived twice.
    anchor = _local(NY, 2026, 10, 31, 21, 0)
    stop = _local(NY, 2026, 11, 1, 7, 0)
    assert _both(OVERNIGHT_SAT, NY, anchor, stop) == (9 * 3600, 9 * 3600)


def test_hours_the_clocks_skip_are_not_open():
    # Sun 2026-03-08 01:00-04:00 local is 06:00Z-08:00Z: two hours; a start at 02:30 (no such time) is 03:00 EDT.
    day = [_version({"sun": [["01:00", "04:00"]]})]
    start, end = _local(NY, 2026, 3, 8, 0, 0), _local(NY, 2026, 3, 9, 0, 0)
    assert _both(day, NY, start, end) == (7200, 7200)
    in_gap = [_version({"sun": [["02:30", "05:00"]]})]
    assert _both(in_gap, NY, start, end) == (7200, 7200)


TET = [_version({d: [["08:00", "17:00"]] for d in WEEKDAYS[:5]}, country="VN")]


def test_tet_week_in_ho_chi_minh_city():
    # Fri 13 Feb 2026 16:00 to Mon 23 Feb 09:00: Fri 16-17 and Mon 08-09; Mon 16 - Fri 20 Feb is Tết.
    anchor = _local(HCM, 2026, 2, 13, 16, 0)
    stop = _local(HCM, 2026, 2, 23, 9, 0)
    assert _both(TET, HCM, anchor, stop) == (7200, 7200)
    # Without the country's holidays the week counts: 5 × 9 h more.
    plain = [_version({d: [["08:00", "17:00"]] for d in WEEKDAYS[:5]})]
    assert _both(plain, HCM, anchor, stop) == (47 * 3600, 47 * 3600)
    # Anchored on New Year's Day (a public holiday) before any open time of the year: closed all day.
    assert _both(TET, HCM, _local(HCM, 2026, 1, 1, 13, 0), _local(HCM, 2026, 1, 1, 18, 0)) == (0, 0)
    # A 4-hour target: 1 h on Friday, 3 h from Monday 23rd 08:00 -> 11:00 local.
    assert _deadline(TET, HCM, anchor, 4 * 3600) == _local(HCM, 2026, 2, 23, 11, 0)


KOLKATA_DAYS = [_version({d: [["09:30", "18:00"]] for d in WEEKDAYS}, holidays=["2026-05-05"])]


def test_half_hour_zone():
    # 08:30 IST is 03:00Z; open from 09:30 IST (04:00Z) to 10:30 IST (05:00Z): one hour.
    anchor = datetime(2026, 5, 4, 3, 0, tzinfo=UTC)
    assert _both(KOLKATA_DAYS, KOLKATA, anchor, datetime(2026, 5, 4, 5, 0, tzinfo=UTC)) == (3600, 3600)
    # Mon 17:00 IST to Wed 10:00 IST, Tuesday a holiday: 1 h + 30 min.
    assert _both(KOLKATA_DAYS, KOLKATA, _local(KOLKATA, 2026, 5, 4, 17, 0),
                 _local(KOLKATA, 2026, 5, 6, 10, 0)) == (5400, 5400)


VERSIONS = [
    _version({d: [["00:00", "24:00"]] for d in WEEKDAYS}),
    _version({d: [["09:00", "17:00"]] for d in WEEKDAYS[:5]}, effective_from="2026-06-01"),
]


def test_a_record_is_measured_with_the_version_in_force_at_its_anchor():
    # Anchored Sun 31 May (the first version, open all day) and measured with it to the end: 11 h.
    assert _both(VERSIONS, HCM, _local(HCM, 2026, 5, 31, 23, 0), _local(HCM, 2026, 6, 1, 10, 0)) == (39600, 39600)
    # Anchored Mon 1 June: the second version, 09:00-10:00.
    assert _both(VERSIONS, HCM, _local(HCM, 2026, 6, 1, 8, 0), _local(HCM, 2026, 6, 1, 10, 0)) == (3600, 3600)
    # Before the first version: no calendar in force, every second counts.
    assert _both(VERSIONS, HCM, _local(HCM, 2025, 12, 31, 8, 0), _local(HCM, 2026, 1, 2, 8, 0)) == (
        2 * 86400, 2 * 86400)


def test_attainment_around_the_deadline():
    # A 1-hour first-response target, anchored Fri 13 Feb 16:30 (30 min left that day): the deadline is the
    # first Monday after Tết, 23 Feb 08:30.
    anchor = _local(HCM, 2026, 2, 13, 16, 30)
    policy = {"first_response_seconds": 3600}

    def state(stop=None, now=None):
        return ref.sla_state(versions=TET, zone=HCM, policy=policy, target_name="first_response_seconds",
                             anchor=anchor, stop=stop, channel="chat", now=now)

    due = _local(HCM, 2026, 2, 23, 8, 30)
    assert _deadline(TET, HCM, anchor, 3600) == due
    assert state(stop=due) == "met"
    assert state(stop=due + timedelta(microseconds=1)) == "breached"
    assert state(now=due) == "pending"
    assert state(now=due + timedelta(seconds=1)) == "breached"
    assert state(now=_local(HCM, 2026, 2, 18, 12, 0)) == "pending"  # Tết: the clock is stopped


@pytest.mark.parametrize("body, field, code", [
    ({"versions": [_version({"mon": [["08:00", "12:00"], ["11:00", "13:00"]]})]}, "versions[0].weekly.mon", "overlap"),
    ({"versions": [_version({"mon": [["22:00", "06:00"]], "tue": [["05:00", "09:00"]]})]}, "versions[0].weekly.tue",
     "overlap"),
    ({"versions": [_version({"mon": [["08:00", "08:00"]]})]}, "versions[0].weekly.mon[0]", "empty_interval"),
    ({"versions": [_version({"mon": [["8:00", "12:00"]]})]}, "versions[0].weekly.mon[0]", "invalid_time"),
    ({"versions": [_version({"mon": [["08:00", "24:01"]]})]}, "versions[0].weekly.mon[0]", "invalid_time"),
    ({"versions": [_version({}, country="XX")]}, "versions[0].holiday_country", "unknown_country"),
    ({"versions": [_version({}), _version({})]}, "versions[1].effective_from", "duplicate"),
    ({"versions": [_version({"monday": []})]}, "versions[0].weekly.monday", "unknown_weekday"),
    ({"versions": [_version({}, holidays=["2026-02-30"])]}, "versions[0].holidays[0]", "invalid_date"),
    ({"versions": [{"weekly": {}}]}, "versions[0].effective_from", "invalid_date"),
    ({}, "versions", "required"),
])
def test_bad_calendars_name_the_field(body, field, code):
    with pytest.raises(InvalidInput) as caught:
        calendar_parse(body)
    assert {"field": field, "code": code} in [{"field": e["field"], "code": e["code"]} for e in caught.value.errors]


def test_midnight_and_full_days_are_accepted():
    versions = calendar_parse({"versions": [_version({"mon": [["00:00", "24:00"]], "tue": [["22:00", "00:00"]],
                                                      "wed": [["22:00", "24:00"]]})]})
    assert versions[0].weekly["mon"] == (("00:00", "24:00"),)


# --- the compiled calendar against the reference, on random calendars -------------------------------------
ZONES = [NY, HCM, KOLKATA, ZoneInfo("UTC"), ZoneInfo("Australia/Lord_Howe")]


@st.composite
def weekly_schedules(draw):
    weekly = {}
    for day in WEEKDAYS:
        points = sorted(draw(st.sets(st.integers(0, 96), max_size=6)))
        pairs = [points[i:i + 2] for i in range(0, len(points) - 1, 2)]
        intervals = [[f"{a * 15 // 60:02d}:{a * 15 % 60:02d}", f"{b * 15 // 60:02d}:{b * 15 % 60:02d}"]
                     for a, b in pairs if a < 96]
        if intervals and draw(st.booleans()):  # let the last one cross midnight
            start = intervals[-1][0]
            intervals[-1] = [start, draw(st.sampled_from(["01:00", "03:30", "06:00"]))]
        weekly[day] = intervals
    return weekly


@st.composite
def calendars(draw):
    versions = []
    for effective in sorted(draw(st.sets(st.dates(datetime(2026, 1, 1).date(), datetime(2026, 12, 1).date()),
                                         min_size=1, max_size=3))):
        holidays = draw(st.lists(st.dates(datetime(2026, 1, 1).date(), datetime(2027, 3, 1).date()), max_size=8))
        versions.append(_version(draw(weekly_schedules()), effective.isoformat(), [h.isoformat() for h in holidays],
                                 draw(st.sampled_from([None, None, "VN", "US", "IN"]))))
    return versions


instants = st.datetimes(datetime(2025, 12, 1), datetime(2027, 1, 31)).map(
    lambda d: d.replace(tzinfo=UTC, microsecond=d.microsecond // 1000 * 1000))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(versions=calendars(), zone=st.sampled_from(ZONES), anchor=instants,
       after=st.floats(0, 30 * 86400, allow_nan=False), target=st.integers(0, 5 * 86400))
def test_compiled_calendar_matches_the_reference(versions, zone, anchor, after, target):
    try:
        calendar_parse({"versions": versions})
    except InvalidInput:
        assume(False)
    stop = anchor + timedelta(microseconds=round(after * 1_000_000))
    expected, engine = _both(versions, zone, anchor, stop)
    assert engine == expected
    due = _deadline(versions, zone, anchor, target)
    if due is None:  # never: the version in force has no open time at all
        version = ref.version_in_force(versions, zone, anchor)
        assert version is not None and not any(version["weekly"].values())
        return
    # The deadline is the last instant the target is met: exactly the target by then, more just after.
    assert ref.business_seconds(versions, zone, anchor, due) == target
    assert ref.business_seconds(versions, zone, anchor, due + timedelta(microseconds=1)) > target
