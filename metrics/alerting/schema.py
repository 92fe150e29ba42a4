"""OpenAPI post-processing for the alert endpoints."""


def closed_alert_rule_inputs(result, generator, request, public):
    """Rule inputs refuse unknown fields (`unknown_field`) and need a body: say so."""
    schemas = result.get("components", {}).get("schemas", {})
    for name in ("AlertRuleInputRequest", "PatchedAlertRuleInputRequest"):
        if name in schemas:
            schemas[name]["additionalProperties"] = False
    for path, operations in result.get("paths", {}).items():
        if path.startswith("/api/v1/alert-rules"):
            for method in ("post", "patch"):
                if "requestBody" in operations.get(method, {}):
                    operations[method]["requestBody"]["required"] = True
    return result
