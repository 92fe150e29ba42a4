"""Every documented example is sent and gets its documented status: the request examples of the
OpenAPI document, the calls shown in README.md and docs/, and the 200 examples of the record lists
and details (which must be what the API answers for the example record)."""

import re
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from cskpi.services import token_issue, user_grants_upsert

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
VOLATILE = {"received_at"}  # when the example was stored


@pytest.fixture
def staff():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_issue(user=user_grants_upsert(username='docs', staff=True))}")
    return client


@pytest.fixture
def schema(staff):
    return staff.get("/api/schema/", HTTP_ACCEPT="application/json").json()


def _request_examples(schema):
    """(path, method, example name, value, documented success status) of every request example."""
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            success = next(status for status in operation["responses"] if status.startswith("2"))
            for name, example in body.get("examples", {}).items():
                yield path, method, name, example["value"], int(success)


def test_every_request_example_gets_its_documented_status(schema, staff):
    examples = sorted(_request_examples(schema), key=lambda e: e[0] != "/api/v1/departments")  # departments first
    assert {path for path, *_ in examples} >= {"/api/v1/departments", "/api/v1/interactions", "/api/v1/surveys",
                                               "/api/v1/cashouts"}
    for path, method, name, value, status in examples:
        # A department's settings: the department the departments example created.
        path = path.replace("{slug}", "cskh-hn")
        response = getattr(staff, method)(path, value, format="json")
        assert response.status_code == status, (path, name, response.json())


def test_list_and_detail_examples_are_what_the_api_answers(schema, staff):
    for path, method, _, value, _ in sorted(_request_examples(schema), key=lambda e: e[0] != "/api/v1/departments"):
        # The record examples are of a department with no calendar or SLA policy: its settings are not put.
        if not isinstance(value, list) and "{slug}" not in path:
            getattr(staff, method)(path, value, format="json")
    for plural in ("interactions", "surveys", "cashouts"):
        listing = schema["paths"][f"/api/v1/{plural}"]["get"]["responses"]["200"]["content"]["application/json"]
        detail = schema["paths"][f"/api/v1/{plural}/{{source}}/{{external_id}}"]["get"]["responses"]["200"]
        (page_example,) = listing["examples"].values()
        (detail_example,) = detail["content"]["application/json"]["examples"].values()
        record = detail_example["value"]
        assert page_example["value"] == {"next": None, "results": [record]}

        def strip(body):
            return {k: v for k, v in body.items() if k not in VOLATILE}

        answered = staff.get(f"/api/v1/{plural}/{record['source']}/{record['external_id']}")
        assert answered.status_code == 200
        assert strip(answered.json()) == strip(record)
        page = staff.get(f"/api/v1/{plural}", {"department": record["department"]})
        assert [strip(r) for r in page.json()["results"] if r["external_id"] == record["external_id"]] == [
            strip(record)]


# --- calls shown in the prose docs ----------------------------------------------------------------
# A curl command, or an inline `GET /api/v1/...?query` (a bare path names an endpoint, not a call).
_CALL = re.compile(r"`GET (/api/v1/[^\s`]+\?[^\s`]+)`|curl .*?\"?http://127\.0\.0\.1:8000(/api/v1/[^\s\"`]+)"
                   r"|^GET (/api/v1/\S+)$")


def _documented_calls():
    for document in DOCUMENTS:
        text = document.read_text().replace("\\\n", " ")  # shell line continuations
        for line in text.splitlines():
            for found in _CALL.finditer(line):
                url = found[1] or found[2] or found[3]
                csv = "Accept: text/csv" in line or "format=csv" in url
                yield pytest.param(url, csv, id=f"{document.name}:{url[:60]}")


@pytest.mark.parametrize(("url", "csv"), list(_documented_calls()))
def test_documented_call_answers_200(staff, url, csv):
    from tests.factories import DepartmentFactory

    DepartmentFactory(slug="cskh-hn", timezone="Asia/Ho_Chi_Minh")
    headers = {"HTTP_ACCEPT": "text/csv"} if csv else {}
    response = staff.get(url.replace("\\", ""), **headers)
    assert response.status_code == 200, (url, getattr(response, "content", b"")[:500])
    assert response["Content-Type"].startswith("text/csv" if csv else "application/json")


def test_documents_link_inside_the_repository():
    for document in DOCUMENTS:
        text = document.read_text()
        assert "../shared" not in text and "kpi-spec" not in text, document
        for target in re.findall(r"\]\(([^)#]+)", text):
            assert not target.startswith(("http://", "https://")), (document, target)
            assert (document.parent / target).exists(), (document, target)
