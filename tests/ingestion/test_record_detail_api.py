"""GET /api/v1/<records>/{source}/{external_id} for odd keys: never a 5xx."""

import pytest

from ingestion.fields import RECORD_SPECS

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["crm/a%00b", "crm/%ED%A0%80", "x" * 300 + "/y", "crm/" + "é" * 200])
def test_odd_keys_are_404(staff_client, department, path):
    for plural in RECORD_SPECS:
        response = staff_client.get(f"/api/v1/{plural}/{path}")
        assert response.status_code == 404, response.content
        assert response.json()["code"] == "not_found"
