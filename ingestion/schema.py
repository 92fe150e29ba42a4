"""OpenAPI post-processing for the record endpoints."""

from django.conf import settings

from ingestion.choices import SURVEY_SCALES
from ingestion.serializers import INPUT_SERIALIZERS


def closed_record_inputs(result, generator, request, public):
    """Record inputs refuse unknown fields (`unknown_field`): say so with additionalProperties: false."""
    schemas = result.get("components", {}).get("schemas", {})
    for serializer in INPUT_SERIALIZERS.values():
        name = serializer.Meta.ref_name
        for component in (name, f"{name}Request"):
            if component in schemas:
                schemas[component]["additionalProperties"] = False
    # The score scale depends on the kind: one variant per kind (the validator's `out_of_scale` rule).
    for component in ("SurveyInput", "SurveyInputRequest"):
        if component in schemas:
            schemas[component]["oneOf"] = [_survey_variant(kind, *scale) for kind, scale in SURVEY_SCALES.items()]
    # A batch is one object or 1..CSKPI_MAX_BATCH of them (drf-spectacular drops list bounds in oneOf).
    for name, component in schemas.items():
        if name.endswith("BatchRequest"):
            for option in component.get("oneOf", []):
                if option.get("type") == "array":
                    option.update(minItems=1, maxItems=settings.CSKPI_MAX_BATCH)
    # A batch endpoint needs a body: say so, rather than answer 400 to a request the schema allows.
    for path in result.get("paths", {}).values():
        body = path.get("post", {}).get("requestBody")
        if body is not None:
            body["required"] = True
    return result


def _survey_variant(kind: str, low: int, high: int, whole: bool) -> dict:
    # Whole scales say multipleOf: 1, not type: integer: the validator takes 5.0 for 5, and under
    # OpenAPI 3.0 (JSON Schema draft 4) 5.0 is not an integer.
    score = {"type": "number", "minimum": low, "maximum": high, **({"multipleOf": 1} if whole else {})}
    return {"title": kind, "properties": {"kind": {"type": "string", "enum": [kind]}, "score": score}}
