import pytest

pytestmark = pytest.mark.django_db


def test_schema_declares_bearer_auth_and_error_shape(anon_client):
    response = anon_client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    # errors_not_listed: how many errors beyond CSKPI_MAX_ERRORS (hardening issue, finding 6)
    assert set(schema["components"]["schemas"]["Error"]["properties"]) == {"code", "detail", "errors", "errors_not_listed"}
    assert set(schema["components"]["schemas"]["Error"]["required"]) == {"code", "detail", "errors"}
    departments = schema["paths"]["/api/v1/departments"]["get"]
    assert {"200", "401", "403"} <= set(departments["responses"])
    assert schema["paths"]["/api/v1/health"]["get"].get("security", []) in ([], [{}])


def test_docs_render(anon_client):
    response = anon_client.get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger-ui" in response.content
    assert anon_client.get("/api/redoc/").status_code == 200
