"""OpenAPI post-processing for the alert endpoints."""


def closed_alert_rule_inputs(result, generator, request, public):
    """Rule inputs refuse unknown fields (`unknown_field`) and need a body: say so.

    A blank-allowed filter with a pattern comes out of drf-spectacular as `oneOf` [pattern, empty
    string]; "" matches both branches, which `oneOf` forbids, so the schema would call the
    documented "" (no filter) invalid. The pattern branch already admits "": keep it alone.
    """
    schemas = result.get("components", {}).get("schemas", {})
    for name in ("AlertRuleInputRequest", "PatchedAlertRuleInputRequest"):
        if name in schemas:
            schemas[name]["additionalProperties"] = False
            for prop in schemas[name].get("properties", {}).values():
                branches = prop.get("oneOf", [])
                if len(branches) == 2 and branches[1] == {"type": "string", "maxLength": 0}:
                    del prop["oneOf"]
                    prop.update(branches[0])
    for path, operations in result.get("paths", {}).items():
        if path.startswith("/api/v1/alert-rules"):
            for method in ("post", "patch"):
                if "requestBody" in operations.get(method, {}):
                    operations[method]["requestBody"]["required"] = True
    return result
