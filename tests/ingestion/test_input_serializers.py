"""The OpenAPI input serializers and the fast batch validator accept and refuse the same payloads."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingestion.fields import RECORD_SPECS
from ingestion.serializers import INPUT_SERIALIZERS
from ingestion.validation import batch_validator_get
from tests.ingestion.test_record_batch_ingest_garbage import json_values, mutated_items

DEPARTMENTS = {"cskh-hn": 1, "cskh-hcm": 2}


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_serializer_and_validator_agree(data):
    plural = data.draw(st.sampled_from(sorted(RECORD_SPECS)))
    item = data.draw(st.one_of(mutated_items(plural), json_values))
    _, errors = batch_validator_get(RECORD_SPECS[plural]).validate([item], departments=DEPARTMENTS)
    serializer = INPUT_SERIALIZERS[plural](data=item, context={"departments": DEPARTMENTS})
    assert serializer.is_valid() == (not errors), (item, errors, serializer.errors)
    if errors and isinstance(item, dict):
        # Both name the same fields (the validator may add codes DRF folds into one).
        assert {e["field"] for e in errors} == set(serializer.errors), (errors, serializer.errors)


@pytest.mark.parametrize("plural", sorted(RECORD_SPECS))
def test_schema_serializer_lists_exactly_the_declared_fields(plural):
    spec = RECORD_SPECS[plural]
    fields = INPUT_SERIALIZERS[plural]().fields
    assert list(fields) == spec.field_names()
    assert [name for name, f in fields.items() if f.required] == [f.name for f in spec.fields if f.required]
