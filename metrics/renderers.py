"""GET /api/v1/metrics as CSV: the JSON answer flattened, one row per KPI x group x period."""

from collections.abc import Iterator

from cskpi.renderers import CsvRenderer

KPI_CSV_COLUMNS = ("kpi", "unit", "period_start", "period_end", "value", "sample_size")


def kpi_series_rows(answer: dict) -> tuple[list[str], Iterator[dict]]:
    """-> (header, rows). Group dimensions become columns between `unit` and the period; a period ends
    where the next begins (the last at the range end). granularity total: one row for the range."""
    dimensions = list(dict.fromkeys(name for result in answer["results"] for name in result["group"]))
    header = ["kpi", "unit", *dimensions, "period_start", "period_end", "value", "sample_size"]

    def rows():
        for result in answer["results"]:
            base = {"kpi": result["kpi"], "unit": result["unit"], **result["group"]}
            points = result.get("series")
            if points is None:
                points = [{"start": answer["start"], "value": result["value"],
                           "sample_size": result["sample_size"]}]
            ends = [point["start"] for point in points[1:]] + [answer["end"]]
            for point, end in zip(points, ends, strict=True):
                yield {**base, "period_start": point["start"], "period_end": end,
                       "value": point["value"], "sample_size": point["sample_size"]}

    return header, rows()


class KpiSeriesCsvRenderer(CsvRenderer):
    def table(self, data):
        return kpi_series_rows(data)
