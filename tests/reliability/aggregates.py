"""Compare the incrementally maintained cubes with a full rebuild from the raw records."""

import io
import math

from django.core.management import call_command


def canonical(value, column: str = ""):
    """A cube column's value in a comparable form: a quantile sketch (a column of a `Quantile` measure) as
    its sorted (bin, count) pairs (a count may be split over pairs), a distinct set as its sorted ids (two
    serialisations of one set may differ), a number as itself."""
    if value is None:  # a sketch or set of no record, a count or sum of zero (metrics 0024)
        return ()
    from metrics.catalog import MEASURES_BY_KEY
    from metrics.measures import Quantile, set_unpack, sketch_counts

    measure = MEASURES_BY_KEY.get(column)
    if measure is not None and isinstance(measure.kind, Quantile):
        return tuple(sorted(sketch_counts(bytes(value)).items()))
    if isinstance(value, bytes | memoryview):
        return tuple(set_unpack(value))
    return value


def cube_snapshot() -> dict[str, dict[tuple, dict]]:
    """Every cube row of every cube table, keyed by its bucket key, measure columns as a dict."""
    from metrics.cubes import DIMENSION_COLUMNS
    from metrics.models import BUCKET_MODELS

    snapshot = {}
    for model in (m for models in BUCKET_MODELS.values() for m in models):
        key = ("department_id", "cube", "bucket_start", *DIMENSION_COLUMNS.values())
        columns = [f.attname for f in model._meta.concrete_fields if f.attname not in key + ("id",)]
        snapshot[model.__name__] = {
            tuple(row[k] for k in key): {c: canonical(row[c], c) for c in columns}
            for row in model.objects.values(*key, *columns)
        }
    return snapshot


def snapshots_differences(left: dict, right: dict) -> list[str]:
    """What differs between two snapshots (floats compared to 1e-9 relative: sums in another order)."""
    out = []
    for record_type in left.keys() | right.keys():
        a, b = left.get(record_type, {}), right.get(record_type, {})
        for missing in a.keys() - b.keys():
            out.append(f"{record_type} {missing}: only in the first")
        for missing in b.keys() - a.keys():
            out.append(f"{record_type} {missing}: only in the second")
        for key in a.keys() & b.keys():
            for column, value in a[key].items():
                other = b[key][column]
                same = value == other if isinstance(value, tuple) else math.isclose(
                    value, other, rel_tol=1e-9, abs_tol=1e-6)
                if not same:
                    out.append(f"{record_type} {key} {column}: {value} != {other}")
    return out


def assert_cubes_equal_a_full_rebuild() -> None:
    incremental = cube_snapshot()
    call_command("rebuild_aggregates", "--no-progress", stdout=io.StringIO(), stderr=io.StringIO())
    rebuilt = cube_snapshot()
    differences = snapshots_differences(incremental, rebuilt)
    assert not differences, "\n".join(differences[:20])
    assert any(rebuilt.values()), "nothing was aggregated: the comparison would prove nothing"
