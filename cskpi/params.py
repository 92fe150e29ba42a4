"""Query strings: list parameters given either repeated (`kpi=a&kpi=b`, how generated clients send a
list) or comma-separated (`kpi=a,b`) mean the same; any other parameter given twice is refused
rather than reduced to one of its values."""

from collections.abc import Iterable

from django.http import QueryDict

from cskpi.errors import InvalidInput

# DRF's format override (`format=csv`): content negotiation reads it, the query forms do not.
FORMAT_PARAMETER = "format"


def query_params_read(params: QueryDict, *, lists: Iterable[str]) -> dict[str, str]:
    """-> one string per parameter; a list parameter's repeated values joined with commas."""
    lists = frozenset(lists)
    out: dict[str, str] = {}
    repeated, blank = [], []
    for name, values in params.lists():
        if name == FORMAT_PARAMETER:
            continue
        if name in lists:
            if len(values) > 1 and "" in values:
                blank.append(name)
            out[name] = ",".join(values)
        elif len(values) > 1:
            repeated.append(name)
        else:
            out[name] = values[0]
    if repeated or blank:
        raise InvalidInput(f"Given more than once: {', '.join(repeated)}." if repeated
                           else f"An empty value in {', '.join(blank)}.", [
            *({"field": name, "code": "repeated_parameter",
               "message": "This parameter takes one value; give it once."} for name in repeated),
            *({"field": name, "code": "blank", "message": "A repeated value may not be empty."} for name in blank),
        ])
    return out


def list_parameters_schema(result, generator, request, public):
    """OpenAPI hook: a view's `list_parameters` are arrays, sent repeated (style form, explode)."""
    lists_by_operation = {}
    for path, _, method, view in generator.endpoints:
        names = getattr(getattr(view, "cls", None), "list_parameters", ())
        if names:
            lists_by_operation[(path, method.lower())] = frozenset(names)
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            names = lists_by_operation.get((path, method))
            if not names:
                continue
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and parameter["name"] in names \
                        and parameter["schema"].get("type") != "array":
                    item = parameter["schema"]
                    item.pop("default", None)
                    if len(item.get("allOf", ())) == 1:  # a bare reference: generators then type it (an enum)
                        item = item["allOf"][0]
                    parameter["schema"] = {"type": "array", "items": item}
                    parameter["style"], parameter["explode"] = "form", True
                    parameter["description"] = (
                        parameter.get("description", "") + " Several values: repeat the parameter "
                        f"(`{parameter['name']}=a&{parameter['name']}=b`) or separate them with commas."
                    ).strip()
    return result
