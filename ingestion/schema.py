"""OpenAPI post-processing for the record endpoints."""

from django.conf import settings

from ingestion.choices import SURVEY_SCALES, CashoutStatus, InteractionStatus
from ingestion.serializers import INPUT_SERIALIZERS


def closed_record_inputs(result, generator, request, public):
    """Record inputs refuse unknown fields (`unknown_field`): say so with additionalProperties: false."""
    schemas = result.get("components", {}).get("schemas", {})
    for serializer in INPUT_SERIALIZERS.values():
        name = serializer.Meta.ref_name
        for component in (name, f"{name}Request"):
            if component in schemas:
                schemas[component]["additionalProperties"] = False
    # Rules between fields, as one variant per survey kind or per status group (the rules of
    # ingestion.fields; tests/ingestion/test_input_serializers.py checks both agree). Times before the
    # anchor (`before_anchor`) cannot be stated in OpenAPI 3.0.
    for component, variants in _VARIANTS.items():
        if component in schemas:
            schemas[component]["oneOf"] = variants
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
    """`out_of_scale`: the score scale depends on the kind."""
    # Whole scales say multipleOf: 1, not type: integer: the validator takes 5.0 for 5, and under
    # OpenAPI 3.0 (JSON Schema draft 4) 5.0 is not an integer.
    score = {"type": "number", "minimum": low, "maximum": high, **({"multipleOf": 1} if whole else {})}
    return {"title": kind, "properties": {"kind": {"type": "string", "enum": [kind]}, "score": score}}


_GIVEN = {"type": "string"}  # present and not null (the base property gives its format)
_ABSENT = {"nullable": True, "enum": [None]}  # absent or null


def _status_variant(statuses: tuple[str, ...], **fields: dict) -> dict:
    """`status_contradiction`: which timestamps a record in these statuses has."""
    variant = {"title": " | ".join(statuses),
               "properties": {"status": {"type": "string", "enum": list(statuses)}, **fields}}
    required = [name for name, rule in fields.items() if rule is _GIVEN]
    return {**variant, "required": required} if required else variant


_I, _C = InteractionStatus, CashoutStatus
_VARIANTS = {
    "SurveyInputRequest": [_survey_variant(kind, *scale) for kind, scale in SURVEY_SCALES.items()],
    "InteractionInputRequest": [
        _status_variant((_I.RESOLVED,), resolved_at=_GIVEN),
        _status_variant((_I.OPEN, _I.PENDING), resolved_at=_ABSENT),
        _status_variant((_I.ABANDONED, _I.MISSED), resolved_at=_ABSENT, first_response_at=_ABSENT),
    ],
    "CashoutInputRequest": [
        _status_variant((_C.PENDING, _C.PROCESSING), completed_at=_ABSENT, failure_reason=_ABSENT),
        _status_variant((_C.SUCCEEDED,), completed_at=_GIVEN, failure_reason=_ABSENT),
        _status_variant((_C.FAILED,), completed_at=_GIVEN),
    ],
}
