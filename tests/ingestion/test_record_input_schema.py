"""The published record input schemas (derived from the declarations) and the compiled batch validator
accept and refuse the same payloads, but for the rules between fields a flat schema cannot state."""

import re
from datetime import datetime

import pytest
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator, FormatChecker
from schemathesis.specs.openapi.converter import to_json_schema

from ingestion.fields import RECORD_SPECS, FieldType
from ingestion.schema import record_component_name, record_example
from ingestion.validation import SLUG_PATTERN, batch_validator_get
from tests.ingestion.factories import record_payload
from tests.ingestion.test_record_batch_ingest_garbage import json_values, mutated_items

DEPARTMENTS = {"cskh-hn": 1, "cskh-hcm": 2}


@pytest.mark.parametrize("plural", sorted(RECORD_SPECS))
def test_schema_lists_exactly_the_declared_fields(plural, item_schemas):
    spec = RECORD_SPECS[plural]
    schema = item_schemas[plural].schema
    assert list(schema["properties"]) == spec.field_names()
    assert schema["required"] == [f.name for f in spec.fields if f.required]
    assert schema["additionalProperties"] is False
    assert "oneOf" not in schema and "allOf" not in schema  # flat: generated clients keep every field


@pytest.mark.parametrize("plural", sorted(RECORD_SPECS))
def test_published_example_is_accepted(plural):
    """The Swagger example of each POST (built from the declared examples) passes the validator."""
    item = record_example(RECORD_SPECS[plural])
    _, errors = batch_validator_get(RECORD_SPECS[plural]).validate([item], departments=_AnyDepartment())
    assert errors == []
    assert set(item) >= {f.name for f in RECORD_SPECS[plural].fields if f.required}


# --- the published OpenAPI schema and the validator agree too --------------------------------------
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
# The rules between fields, which a flat schema states in descriptions only (the contract test's hook
# mirrors them): a time before the anchor time, a status contradicting the timestamps, a survey score
# outside its kind's scale.
_CROSS_FIELD_CODES = frozenset({"before_anchor", "status_contradiction", "out_of_scale"})


class _AnyDepartment(dict):
    """Every slug exists: whether a department exists is data, not schema."""

    def get(self, key, default=None):
        return 1


def _date_time(value) -> bool:
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


@pytest.fixture(scope="module")
def item_schemas():
    """Each record input component of the generated document, references inlined."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]

    def inline(node):
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(components[node["$ref"].rsplit("/", 1)[1]])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    checker = FormatChecker(formats=())
    checker.checks("date-time")(_date_time)
    return {
        plural: Draft4Validator(to_json_schema(inline(components[record_component_name(spec, "Input")]),
                                               nullable_keyword="nullable"), format_checker=checker)
        for plural, spec in RECORD_SPECS.items()
    }


# Values at the edges of each declared field type: some valid, some not; the two must agree on which.
_texts = st.text(min_size=0, max_size=6) | st.sampled_from(["\x00", "a\x00", " ", "x" * 129, "ok"])
_datetimes = st.builds(
    lambda year, offset: f"{year:04}-01-01T00:00:00{offset}",
    st.sampled_from([1, 2, 2026, 9998, 9999]), st.sampled_from(["Z", "+23:59", "-23:59", "+07:00", ""]),
)
_EDGE_VALUES = {
    FieldType.STR: _texts,
    FieldType.SLUG: _texts | st.from_regex(SLUG_PATTERN[:-1] + r"\Z"),
    FieldType.DEPARTMENT: _texts | st.from_regex(r"[-a-zA-Z0-9_]{1,64}", fullmatch=True),
    FieldType.DATETIME: _datetimes,
    FieldType.DURATION: st.integers() | st.floats(allow_nan=False, allow_infinity=False),
    FieldType.INT: st.integers(min_value=-2, max_value=2**31) | st.sampled_from([1.0, 2**31 - 1]),
    FieldType.BOOL: st.booleans() | st.sampled_from([0, 1, "true"]),
    FieldType.DECIMAL: st.from_regex(r"[0-9]{1,20}(\.[0-9]{1,7})?", fullmatch=True)
    | st.integers(min_value=-1, max_value=10**19) | st.sampled_from(["0", "0.000000", "0.000001", "1e3", "١"]),
    FieldType.CURRENCY: st.sampled_from(["VND", "USD", "XTS", "vnd", "ABC", ""]),
    FieldType.SCORE: st.integers(min_value=-1, max_value=101) | st.floats(min_value=-1, max_value=101)
    | st.sampled_from([5.0, 4.5, 10.0, 99.5]),
}


@st.composite
def edge_items(draw, plural):
    """A valid item with one or two fields set to a value at an edge of its declared type."""
    item = record_payload(plural)
    fields = RECORD_SPECS[plural].fields
    for field in draw(st.lists(st.sampled_from(fields), min_size=1, max_size=2, unique=True)):
        if field.type is FieldType.CHOICE:
            item[field.name] = draw(st.sampled_from(field.choices) | st.just("other"))
        else:
            item[field.name] = draw(_EDGE_VALUES[field.type])
    return item


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_openapi_schema_and_validator_agree(item_schemas, data):
    """What the schema allows the API takes (but for times before the anchor); what it refuses, the API refuses.
    The one leniency: the API also reads ISO 8601 forms that are not RFC 3339 (no seconds, a space)."""
    plural = data.draw(st.sampled_from(sorted(RECORD_SPECS)))
    item = data.draw(st.one_of(mutated_items(plural), json_values, edge_items(plural)))
    _, errors = batch_validator_get(RECORD_SPECS[plural]).validate([item], departments=_AnyDepartment())
    schema_errors = list(item_schemas[plural].iter_errors(item))
    takes = all(e["code"] in _CROSS_FIELD_CODES for e in errors)
    if not schema_errors:
        assert takes, (item, errors)
    elif takes:
        assert all(e.validator == "format" for e in schema_errors), (item, [e.message for e in schema_errors])
