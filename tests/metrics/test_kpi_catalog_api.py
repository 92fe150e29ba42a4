import pytest

from metrics.catalog import KPIS

pytestmark = pytest.mark.django_db


def test_catalog_lists_every_kpi_with_english_labels(department, make_client):
    response = make_client(grants=[(department.slug, "viewer")]).get("/api/v1/kpis")
    assert response.status_code == 200 and response["Content-Language"] == "en"
    entries = {e["key"]: e for e in response.json()}
    assert len(entries) == len(KPIS)
    assert entries["fcr_rate"] == {
        "key": "fcr_rate", "label": "First contact resolution (FCR)",
        "labels": {"en": "First contact resolution (FCR)", "vi": "Giải quyết ngay lần đầu (FCR)"},
        "unit": "percent", "higher_is_better": True,
        "formula": "resolved with contact_count = 1 / resolved × 100", "formula_kind": "ratio",
        "components": ["resolved_first_contact", "resolved"], "record_type": "interaction",
        "record_types": ["interaction"], "anchor": "created_at",
    }
    assert entries["cashout_requests"]["anchor"] == "requested_at"


def test_accept_language_vi_gives_vietnamese_labels(staff_client):
    response = staff_client.get("/api/v1/kpis", HTTP_ACCEPT_LANGUAGE="vi-VN,vi;q=0.9,en;q=0.5")
    assert response["Content-Language"] == "vi"
    labels = {e["key"]: e["label"] for e in response.json()}
    assert labels["nps"] == "Chỉ số khuyến nghị (NPS)" and labels["interactions"] == "Số lượng yêu cầu"


def test_catalog_needs_a_token(anon_client):
    assert anon_client.get("/api/v1/kpis").status_code == 401
