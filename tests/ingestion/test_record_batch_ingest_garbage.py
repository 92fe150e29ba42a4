"""No input produces a 500: random JSON, random bytes and random field values on every endpoint."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestion.fields import RECORD_SPECS
from tests.ingestion.factories import record_payload

pytestmark = pytest.mark.django_db

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
    st.sampled_from(["2026-03-02T09:00:00+07:00", "2026-03-02T09:00:00", "2026-03-02", "cskh-hn", "VND",
                     "1.5", "-1", "resolved", "csat", "failed", "", "\x00", "9999-12-31T23:59:59-23:59"]),
)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


@st.composite
def mutated_items(draw, plural):
    item = record_payload(plural)
    names = RECORD_SPECS[plural].field_names() + ["extra"]
    for name in draw(st.lists(st.sampled_from(names), max_size=4)):
        if draw(st.booleans()):
            item[name] = draw(json_values)
        else:
            item.pop(name, None)
    return item


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_bodies_never_500(staff_client, department, data):
    plural = data.draw(st.sampled_from(sorted(RECORD_SPECS)))
    kind = data.draw(st.sampled_from(["items", "json", "bytes"]))
    if kind == "items":
        body = json.dumps(data.draw(st.lists(mutated_items(plural), min_size=1, max_size=4)))
    elif kind == "json":
        body = json.dumps(data.draw(json_values))
    else:
        body = data.draw(st.binary(max_size=60))
    response = staff_client.post(f"/api/v1/{plural}", body, content_type="application/json")
    assert response.status_code in (200, 400, 413), response.content
    payload = response.json()
    if response.status_code != 200:
        assert set(payload) == {"code", "detail", "errors"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(st.sampled_from(["department", "start", "end", "channel", "agent", "status",
                                               "kind", "cursor", "page_size", "other"]),
                              st.text(max_size=30), max_size=4))
def test_random_list_parameters_never_500(staff_client, department, params):
    response = staff_client.get("/api/v1/interactions", params)
    assert response.status_code in (200, 400, 403, 404), response.content


@pytest.mark.parametrize("body", [
    '{"\\ud800": 1}', '[{"external_id": "\\ud800"}]', '{"channel": "\\udfff\\u0000"}', '[[[[[[[[[[[[1]]]]]]]]]]]]',
    "[" * 100_000, '{"a": 1e999}',
])
def test_escaped_oddities_never_500(staff_client, department, body):
    response = staff_client.post("/api/v1/interactions", body, content_type="application/json")
    assert response.status_code == 400, response.content
    response.json()
