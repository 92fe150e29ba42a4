"""OpenAPI post-processing for GET /api/v1/metrics: the parameters' forms, stated as the parser
reads them (drf-spectacular only sees plain strings on the query serializer)."""

from cskpi.validators import zone_names
from metrics.catalog import KPIS
from metrics.planner import GROUP_DIMENSIONS

_KEY = "|".join(sorted(KPIS, key=len, reverse=True))
_DIMENSION = "|".join(GROUP_DIMENSIONS)
_SLUG = "[-a-zA-Z0-9_]+"
# A date (local midnight in `timezone`) or a datetime with an offset; a `+` decoded to a space counts.
_MOMENT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+ -][0-9]{2}:[0-9]{2}))?$"

# Filters: up to 200 comma-separated values (more is 400 too_many), no NUL (PostgreSQL refuses it).
_FILTER = r"^[^\x00,]*(,[^\x00,]*){0,199}$"

PARAMETER_PATTERNS = {
    "agent": _FILTER,
    "channel": _FILTER,
    "topic": _FILTER,
    "kpi": f"^({_KEY})(,({_KEY}))*$",
    "group_by": f"^({_DIMENSION})(,({_DIMENSION}))*$",
    "department": f"^{_SLUG}(,{_SLUG})*$",
    "start": _MOMENT,
    "end": _MOMENT,
}


def metrics_parameters(result, generator, request, public):
    operation = result.get("paths", {}).get("/api/v1/metrics", {}).get("get")
    for parameter in (operation or {}).get("parameters", []):
        schema = parameter["schema"]
        if parameter["name"] in PARAMETER_PATTERNS:
            schema["pattern"] = PARAMETER_PATTERNS[parameter["name"]]
        elif parameter["name"] == "timezone":
            schema["enum"] = sorted(zone_names())
    return result
