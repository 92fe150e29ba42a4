"""Clients generated from /api/schema/ with default settings work: openapi-python-client's client
drives ingest (every record type), paging, a detail read and /metrics against a live server on
loopback; openapi-typescript types the enums. Numbers are checked against a plain-Python reference
computed from the records sent."""

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from cskpi.services import token_issue, user_grants_upsert
from tests.factories import DepartmentFactory
from tests.metrics.records import recompute_all

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
REQUIRE = os.environ.get("CSKPI_REQUIRE_SERVICES") == "1"


def _schema_file(directory: Path) -> Path:
    path = directory / "openapi.json"
    subprocess.run([sys.executable, "manage.py", "spectacular", "--format", "openapi-json", "--file", str(path)],
                   cwd=ROOT, check=True, capture_output=True, timeout=120)
    return path


@pytest.fixture(scope="module")
def client_package(tmp_path_factory):
    """The Python client, generated with default settings into a temporary directory and imported."""
    directory = tmp_path_factory.mktemp("python-client")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # its ruff post-hook
    result = subprocess.run([str(BIN / "openapi-python-client"), "generate", "--path", str(_schema_file(directory)),
                             "--output-path", str(directory / "cskpi_api_client"), "--meta", "none"],
                            cwd=directory, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(directory))
    try:
        yield importlib.import_module("cskpi_api_client")
    finally:
        sys.path.remove(str(directory))
        for name in [m for m in sys.modules if m.split(".")[0] == "cskpi_api_client"]:
            del sys.modules[name]


def _module(package, name: str):
    return importlib.import_module(f"{package.__name__}.{name}")


def test_python_client_ingests_pages_and_reads_metrics(client_package, api_server, request):
    m = _module(client_package, "models")

    def api(tag: str, operation: str):
        return _module(client_package, f"api.{tag}.{operation}")

    UNSET = _module(client_package, "types").UNSET
    from datetime import datetime

    DepartmentFactory(slug="cskh-hn", timezone="Asia/Ho_Chi_Minh")
    token = token_issue(user=user_grants_upsert(username="integrator", staff=True))
    client = client_package.AuthenticatedClient(base_url=api_server.url, token=token,
                                                raise_on_unexpected_status=True)
    # Close its keep-alive connection before the server stops (else a server thread outlives it).
    request.addfinalizer(client.get_httpx_client().close)

    def at(hour: int, minute: int = 0) -> datetime:
        return datetime.fromisoformat(f"2026-05-04T{hour:02}:{minute:02}:00+07:00")

    # (external_id, agent, channel, status, contact_count, resolved?) on 2026-05-04 local
    shapes = [("t-1", "a-1", "phone", m.InteractionStatusEnum.RESOLVED, 1),
              ("t-2", "a-1", "chat", m.InteractionStatusEnum.RESOLVED, 2),
              ("t-3", "a-2", "phone", m.InteractionStatusEnum.RESOLVED, 1),
              ("t-4", "a-2", "zalo", m.InteractionStatusEnum.OPEN, 1),
              ("t-5", "a-1", "phone", m.InteractionStatusEnum.ABANDONED, 1)]
    interactions = [
        m.InteractionInput(external_id=eid, department="cskh-hn", channel=channel, agent=agent, status=status,
                           created_at=at(9 + n), contact_count=contacts,
                           first_response_at=None if status == m.InteractionStatusEnum.ABANDONED else at(9 + n, 2),
                           resolved_at=at(9 + n, 30) if status == m.InteractionStatusEnum.RESOLVED else None)
        for n, (eid, agent, channel, status, contacts) in enumerate(shapes)
    ]
    outcome = api("interactions", "interactions_upsert").sync(client=client, body=interactions)
    assert (outcome.created, outcome.updated) == (5, 0)
    surveys = [m.SurveyInput(external_id=f"s-{n}", department="cskh-hn", kind=m.SurveyKindEnum.CSAT, score=score,
                             submitted_at=at(10, n), agent="a-1") for n, score in enumerate([5, 4, 2])]
    assert api("surveys", "surveys_upsert").sync(client=client, body=surveys).created == 3
    cashouts = [
        m.CashoutInput(external_id="c-1", department="cskh-hn", amount="1500000.50", currency=m.CurrencyEnum.VND,
                       requested_at=at(11), status=m.CashoutStatusEnum.SUCCEEDED, completed_at=at(11, 5)),
        m.CashoutInput(external_id="c-2", department="cskh-hn", amount=250000, currency=m.CurrencyEnum.VND,
                       requested_at=at(12), status=m.CashoutStatusEnum.FAILED, completed_at=at(12, 1),
                       failure_reason="bank_timeout"),
        m.CashoutInput(external_id="c-3", department="cskh-hn", amount="99.99", currency=m.CurrencyEnum.USD,
                       requested_at=at(13), status=m.CashoutStatusEnum.PENDING),
    ]
    assert api("cashouts", "cashouts_upsert").sync(client=client, body=cashouts).created == 3
    one = m.CashoutInput(external_id="c-1", department="cskh-hn", amount="1500000.50", currency=m.CurrencyEnum.VND,
                         requested_at=at(11), status=m.CashoutStatusEnum.SUCCEEDED, completed_at=at(11, 5))
    assert api("cashouts", "cashouts_upsert").sync(client=client, body=one).unchanged == 1  # one object, no list

    # Paging: follow `next` two records at a time; a filter as a list (repeated parameter).
    seen, cursor = [], None
    while True:
        page = api("interactions", "interactions_list").sync(
            client=client, page_size=2, cursor=cursor or UNSET,
            status=[m.InteractionStatusEnum.RESOLVED, m.InteractionStatusEnum.OPEN])
        seen += [(r.external_id, r.status) for r in page.results]
        if not page.next_:
            break
        cursor = parse_qs(urlparse(page.next_).query)["cursor"][0]
    assert seen == [(eid, status) for eid, _, _, status, _ in shapes if status != m.InteractionStatusEnum.ABANDONED]

    detail = api("cashouts", "cashouts_retrieve").sync(client=client, source="api", external_id="c-2")
    assert (detail.status, detail.failure_reason, detail.amount) == (m.CashoutStatusEnum.FAILED, "bank_timeout",
                                                                     "250000.000000")

    recompute_all()  # the live server queued the recompute; run it here, as the worker would
    answer = api("metrics", "metrics_get").sync(
        client=client, kpi=[m.KpiKeyEnum.INTERACTIONS, m.KpiKeyEnum.FCR_RATE, m.KpiKeyEnum.CSAT_SCORE,
                            m.KpiKeyEnum.CASHOUT_SUCCESS_RATE],
        department=["cskh-hn"], start="2026-05-04", end="2026-05-05", granularity=m.GranularityEnum.TOTAL,
        timezone="Asia/Ho_Chi_Minh",
    )
    values = {r.kpi: r.value for r in answer.results}
    resolved = [s for s in shapes if s[3] == m.InteractionStatusEnum.RESOLVED]
    assert values == pytest.approx({
        m.KpiKeyEnum.INTERACTIONS: len(shapes),
        m.KpiKeyEnum.FCR_RATE: 100 * sum(1 for s in resolved if s[4] == 1) / len(resolved),
        m.KpiKeyEnum.CSAT_SCORE: (5 + 4 + 2) / 3,
        m.KpiKeyEnum.CASHOUT_SUCCESS_RATE: 100 * 1 / 2,
    }, rel=1e-12)
    by_agent = api("metrics", "metrics_get").sync(
        client=client, kpi=[m.KpiKeyEnum.INTERACTIONS], start="2026-05-04", end="2026-05-05",
        granularity=m.GranularityEnum.DAY, group_by=[m.GroupDimensionEnum.AGENT,
                                                                  m.GroupDimensionEnum.CHANNEL])
    counts = {(r.group.additional_properties["agent"], r.group.additional_properties["channel"]): r.value
              for r in by_agent.results}
    expected: dict = {}
    for _, agent, channel, _, _ in shapes:
        expected[(agent, channel)] = expected.get((agent, channel), 0) + 1
    assert counts == expected


def test_typescript_client_types_the_enums(tmp_path):
    tool = ROOT / "node_modules" / ".bin" / "openapi-typescript"
    if not tool.exists():
        if REQUIRE:
            pytest.fail("CI requires node_modules/.bin/openapi-typescript (make clients installs it)", pytrace=False)
        pytest.skip("needs `npm ci` (make clients)")
    out = tmp_path / "cskpi.d.ts"
    result = subprocess.run([str(tool), str(_schema_file(tmp_path)), "-o", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300, env={**os.environ, "PATH": os.environ["PATH"]})
    assert result.returncode == 0, result.stdout + result.stderr
    text = out.read_text()
    assert 'InteractionStatusEnum: "open" | "pending" | "resolved" | "abandoned" | "missed";' in text
    assert 'SurveyKindEnum: "csat" | "nps" | "ces" | "qa";' in text
    assert 'kpi: components["schemas"]["KpiKeyEnum"][];' in text
    assert 'status: components["schemas"]["CashoutStatusEnum"];' in text
    assert shutil.which("node") is not None
