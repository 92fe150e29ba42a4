"""Series: a KPI series held column by column reads, compares and renders as the list of points."""

import orjson

from cskpi.renderers import json_dumps
from metrics.selectors import Series

STARTS = ("2026-01-01T00:00:00+07:00", "2026-01-02T00:00:00+07:00", "2026-01-03T00:00:00+07:00")
POINTS = [{"start": STARTS[0], "value": 80.0, "sample_size": 20},
          {"start": STARTS[1], "value": None, "sample_size": 0},
          {"start": STARTS[2], "value": 12, "sample_size": 12}]


def test_series_reads_as_its_points():
    series = Series(STARTS, [80.0, None, 12], [20, 0, 12])
    assert len(series) == 3 and series == POINTS and POINTS == list(series)
    assert series[1]["value"] is None and dict(series[2]) == POINTS[2]
    assert series[1:] == POINTS[1:] and [p["start"] for p in series[:-1]] == list(STARTS[:2])
    assert series != POINTS[:2] and series != Series(STARTS, [80.0, None, 13], [20, 0, 12])


def test_series_renders_as_a_json_array_of_objects_inside_an_answer():
    answer = {"results": [{"kpi": "fcr_rate", "series": Series(STARTS, [80.0, None, 12], [20, 0, 12]),
                           "value": float("nan")}]}
    assert orjson.loads(json_dumps(answer)) == {"results": [{"kpi": "fcr_rate", "series": POINTS, "value": None}]}
