"""OpenAPI post-processing for GET /api/v1/metrics: the parameters' forms, stated as the parser
reads them (drf-spectacular only sees plain strings on the query serializer), and the KPI keys and
group dimensions as enums, read from the catalog when the schema is generated (it grows)."""

from metrics.catalog import KPIS
from metrics.planner import GROUP_DIMENSIONS
from metrics.serializers import FILTER_SPACES

_SLUG = "[-a-zA-Z0-9_]+"
# A date (local midnight in `timezone`) or a datetime with an offset; a `+` decoded to a space counts.
_MOMENT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+ -][0-9]{2}:[0-9]{2}))?$"

# Filters: up to 200 comma-separated values (more is 400 too_many), each holding something besides the ASCII
# spaces the parser strips (a value of only those is empty, 400 blank; named one by one, as `\s` differs
# between regex flavours), no NUL (PostgreSQL refuses it). A repeated parameter's values are joined with
# commas (cskpi.params).
_SPACE = "".join(f"\\x{ord(c):02x}" for c in FILTER_SPACES)
_FILTER_VALUE = rf"[{_SPACE}]*[^\x00,{_SPACE}][^\x00,]*"
_FILTER = rf"^{_FILTER_VALUE}(,{_FILTER_VALUE}){{0,199}}$"

PARAMETER_PATTERNS = {
    "agent": _FILTER,
    "channel": _FILTER,
    "topic": _FILTER,
    "check": _FILTER,
    "customer_region": _FILTER,
    "department": f"^{_SLUG}(,{_SLUG})*$",
    "start": _MOMENT,
    "end": _MOMENT,
}

KPI_KEY_ENUM = "KpiKeyEnum"
GROUP_DIMENSION_ENUM = "GroupDimensionEnum"
_REF = "#/components/schemas/"


def metrics_parameters(result, generator, request, public):
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas[KPI_KEY_ENUM] = {"type": "string", "enum": list(KPIS), "description": "A key of GET /api/v1/kpis."}
    schemas[GROUP_DIMENSION_ENUM] = {"type": "string", "enum": list(GROUP_DIMENSIONS)}
    for component, name in (("KpiResult", "kpi"), ("KpiCatalogEntry", "key")):
        if component in schemas:
            schemas[component]["properties"][name] = {"$ref": _REF + KPI_KEY_ENUM}
    operation = result.get("paths", {}).get("/api/v1/metrics", {}).get("get")
    for parameter in (operation or {}).get("parameters", []):
        name = parameter["name"]
        if name in PARAMETER_PATTERNS:
            parameter["schema"]["pattern"] = PARAMETER_PATTERNS[name]
        elif name == "kpi":
            parameter["schema"] = {"$ref": _REF + KPI_KEY_ENUM}
        elif name == "granularity":  # the enum the answer's `granularity` uses
            parameter["schema"] = {"allOf": [{"$ref": _REF + "GranularityEnum"}], "default": "day"}
        elif name == "group_by":
            parameter["schema"] = {"$ref": _REF + GROUP_DIMENSION_ENUM}
        elif name == "timezone":
            parameter["schema"] = {"type": "string", "minLength": 1, "maxLength": 64}
            parameter["description"] = (parameter.get("description", "") + " Any IANA zone name; names "
                                        "whose meaning depends on the host (localtime, Factory) are refused.")
    return result
