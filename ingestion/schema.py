"""OpenAPI for the record endpoints, derived from the record declarations (ingestion.fields).

The input of each record type is published as one plain JSON Schema object built from its
FieldSpecs: flat (no `oneOf` beside `properties`, which client generators cannot merge), closed
(`additionalProperties: false`, as the validator refuses unknown fields). Rules between fields
(status and timestamps, survey scales, times not before the anchor) cannot be stated flat: the
field descriptions say them and the compiled validator (ingestion.validation) enforces them.
The validator is the only runtime check; tests/ingestion/test_record_input_schema.py checks the
published schema and the validator agree on every generated example.
"""

from django.conf import settings

from cskpi.currencies import ISO_4217_CHOICES
from ingestion.choices import SURVEY_SCALES
from ingestion.fields import RECORD_SPECS, FieldSpec, FieldType, RecordSpec
from ingestion.validation import (
    AMOUNT_INTEGER_MAX,
    AMOUNT_OR_ZERO_PATTERN,
    AMOUNT_PATTERN,
    DATETIME_YEAR_PATTERN,
    DEPARTMENT_PATTERN,
    DURATION_MAX_SECONDS,
    NO_NUL_PATTERN,
    PG_INT_MAX,
    SLUG_PATTERN,
    batch_validator_get,
)

_REF = "#/components/schemas/"


def record_component_name(spec: RecordSpec, suffix: str) -> str:
    return spec.title + suffix


def choice_enum_name(spec: RecordSpec, field: FieldSpec) -> str:
    """`InteractionStatusEnum`, `SurveyKindEnum`: one enum component per declared choice field."""
    return record_component_name(spec, field.name.capitalize() + "Enum")


CURRENCY_ENUM = "CurrencyEnum"


def _text(field: FieldSpec, pattern: str) -> dict:
    schema = {"type": "string", "minLength": 1, "pattern": pattern}
    if field.max_length is not None:
        schema["maxLength"] = field.max_length
    return schema


def field_schema(spec: RecordSpec, field: FieldSpec) -> dict:
    """The JSON Schema of one declared input field (what its coercer accepts, as far as a schema can say)."""
    kind = field.type
    if kind is FieldType.STR:
        schema = _text(field, NO_NUL_PATTERN)
    elif kind is FieldType.SLUG:
        schema = _text(field, SLUG_PATTERN)
    elif kind is FieldType.DEPARTMENT:
        schema = _text(field, DEPARTMENT_PATTERN)
    elif kind is FieldType.DATETIME:
        schema = {"type": "string", "format": "date-time", "pattern": DATETIME_YEAR_PATTERN}
    elif kind is FieldType.DURATION:
        schema = {"type": "number", "minimum": 0, "maximum": DURATION_MAX_SECONDS}
    elif kind is FieldType.SCORE:
        schema = {"type": "number"}
    elif kind is FieldType.INT:
        schema = {"type": "integer", "minimum": field.min_value, "maximum": PG_INT_MAX}
    elif kind is FieldType.BOOL:
        schema = {"type": "boolean"}
    elif kind is FieldType.DECIMAL:
        # A string (exact) or an integer; floats are refused. Clients send the string form.
        if field.min_value == 0:
            schema = {"anyOf": [{"type": "string", "pattern": AMOUNT_OR_ZERO_PATTERN},
                                {"type": "integer", "minimum": 0, "maximum": AMOUNT_INTEGER_MAX}]}
        else:
            schema = {"anyOf": [{"type": "string", "pattern": AMOUNT_PATTERN},
                                {"type": "integer", "minimum": 1, "maximum": AMOUNT_INTEGER_MAX}]}
    elif kind is FieldType.CURRENCY:
        schema = {"allOf": [{"$ref": _REF + CURRENCY_ENUM}]}
    elif kind is FieldType.CHOICE:
        schema = {"allOf": [{"$ref": _REF + choice_enum_name(spec, field)}]}
    else:  # pragma: no cover - a new FieldType needs its schema here
        raise ValueError(kind)
    schema = {key: value for key, value in schema.items() if value is not None}
    schema["description"] = field.doc
    if field.example is not None:
        schema["example"] = field.example
    if not field.required:
        schema["nullable"] = True  # absent and null both mean "not given"
    return schema


def _rules_text(spec: RecordSpec) -> str:
    if spec is RECORD_SPECS["surveys"]:
        scales = "; ".join(f"{kind} {low}-{high}{' (whole numbers)' if whole else ''}"
                           for kind, (low, high, whole) in SURVEY_SCALES.items())
        return f" The score must be within its kind's scale ({scales}): `out_of_scale` otherwise."
    if spec is RECORD_SPECS["customers"]:
        return (" ended_at is not before started_at (`before_anchor`); a currency other than the department's "
                "reporting currency is refused (`currency_mismatch`).")
    return (" Later times are not before the anchor time (`before_anchor`); the status must agree with the "
            "timestamps as each field says (`status_contradiction`).")


def record_input_schema(spec: RecordSpec) -> dict:
    return {
        "type": "object",
        "description": f"One {spec.record_type.label.lower()} as a platform sends it. Unknown fields are "
                       "refused (`unknown_field`); a field absent or null takes its default."
                       + _rules_text(spec),
        "properties": {field.name: field_schema(spec, field) for field in spec.fields},
        "required": [field.name for field in spec.fields if field.required],
        "additionalProperties": False,
    }


def record_batch_schema(spec: RecordSpec) -> dict:
    item = {"$ref": _REF + record_component_name(spec, "Input")}
    return {"oneOf": [item, {"type": "array", "items": item, "minItems": 1, "maxItems": settings.CSKPI_MAX_BATCH}]}


def record_batch_request(spec: RecordSpec) -> dict:
    """The request body of POST /api/v1/<plural>, for extend_schema(request=...)."""
    return {"application/json": {"$ref": _REF + record_component_name(spec, "Batch")}}


def record_example(spec: RecordSpec) -> dict:
    """One record built from the declared examples that the validator accepts: an optional field whose
    example contradicts the others (failure_reason on a succeeded cashout) is left out."""
    item = {f.name: f.example for f in spec.fields if f.example is not None}
    required = {f.name for f in spec.fields if f.required}
    _, errors = batch_validator_get(spec).validate([item], departments={item["department"]: 1})
    for error in errors:
        if error["field"] not in required:
            item.pop(error["field"], None)
    return item


def _enum(values) -> dict:
    return {"type": "string", "enum": list(values)}


def record_components(result, generator, request, public):
    """Add each record type's input and batch components, and the enums they name."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas[CURRENCY_ENUM] = {**_enum(ISO_4217_CHOICES), "description": "ISO 4217 currency code."}
    for spec in RECORD_SPECS.values():
        for field in spec.fields:
            if field.type is FieldType.CHOICE:
                schemas[choice_enum_name(spec, field)] = _enum(field.choices)
        schemas[record_component_name(spec, "Input")] = record_input_schema(spec)
        schemas[record_component_name(spec, "Batch")] = record_batch_schema(spec)
    # A batch endpoint needs a body: say so, rather than answer 400 to a request the schema allows.
    for path in result.get("paths", {}).values():
        body = path.get("post", {}).get("requestBody")
        if body is not None:
            body["required"] = True
    return dict(result, components=dict(result["components"], schemas=dict(sorted(schemas.items()))))
