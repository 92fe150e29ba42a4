"""The OpenAPI document of the record endpoints: derived from the field declarations."""

import pytest

from ingestion.fields import RECORD_SPECS

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(anon_client):
    return anon_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()


@pytest.mark.parametrize("plural", sorted(RECORD_SPECS))
def test_post_documents_one_object_or_an_array_of_the_declared_fields(schema, plural):
    post = schema["paths"][f"/api/v1/{plural}"]["post"]
    assert {"200", "400", "401", "403", "413", "415"} <= set(post["responses"])
    batch = post["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    one_of = schema["components"]["schemas"][batch]["oneOf"]
    item_ref = one_of[0]["$ref"]
    assert one_of[1] == {"type": "array", "items": {"$ref": item_ref}, "minItems": 1, "maxItems": 1000}
    item = schema["components"]["schemas"][item_ref.rsplit("/", 1)[1]]
    spec = RECORD_SPECS[plural]
    assert list(item["properties"]) == spec.field_names()
    assert sorted(item["required"]) == sorted(f.name for f in spec.fields if f.required)
    for field in spec.fields:
        assert item["properties"][field.name]["description"].startswith(field.doc)
        if field.choices:
            ref = item["properties"][field.name]["allOf"][0]["$ref"]
            enum = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
            assert enum["enum"] == list(field.choices)


def test_cashout_amount_is_documented_as_omitted_for_non_managers(schema):
    cashout = schema["components"]["schemas"]["CashoutOutput"]
    assert "amount" not in cashout.get("required", [])
    assert "omitted" in cashout["properties"]["amount"]["description"]
    assert "agent" in schema["components"]["schemas"]["InteractionOutput"]["required"]


def test_list_and_detail_are_documented(schema):
    listing = schema["paths"]["/api/v1/interactions"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert names == {"department", "start", "end", "cursor", "page_size", "channel", "agent", "status", "format"}
    assert "404" in schema["paths"]["/api/v1/interactions/{source}/{external_id}"]["get"]["responses"]
    assert set(listing["responses"]["200"]["content"]) == {"application/json", "text/csv"}


@pytest.mark.parametrize(("plural", "lists"), [("interactions", {"department", "channel", "agent", "status"}),
                                               ("surveys", {"department", "channel", "agent", "kind"}),
                                               ("cashouts", {"department", "channel", "status"})])
def test_filters_are_repeatable_lists(schema, plural, lists):
    parameters = {p["name"]: p for p in schema["paths"][f"/api/v1/{plural}"]["get"]["parameters"]}
    assert {name for name, p in parameters.items() if p["schema"].get("type") == "array"} == lists
    for name in lists:
        assert (parameters[name]["style"], parameters[name]["explode"]) == ("form", True)
    if "status" in lists:
        assert parameters["status"]["schema"]["items"] == {
            "$ref": f"#/components/schemas/{RECORD_SPECS[plural].title}StatusEnum"}


@pytest.mark.parametrize("component", [f"{spec.title}Input"
                                       for spec in RECORD_SPECS.values()])
def test_record_inputs_are_closed_and_flat(schema, component):
    item = schema["components"]["schemas"][component]
    assert item["additionalProperties"] is False
    assert not {"oneOf", "anyOf", "allOf"} & set(item)


@pytest.mark.parametrize("plural", sorted(RECORD_SPECS))
def test_outputs_share_the_input_enums_and_hide_internal_docstrings(schema, plural):
    name = RECORD_SPECS[plural].title
    output = schema["components"]["schemas"][f"{name}Output"]
    assert "context" not in output.get("description", "") and "scopes" not in output.get("description", "")
    for field in RECORD_SPECS[plural].fields:
        if field.choices:
            prop = output["properties"][field.name]
            ref = prop.get("$ref") or prop["allOf"][0]["$ref"]
            assert ref == f"#/components/schemas/{name}{field.name.capitalize()}Enum"
