import pytest

from tests.metrics.alerting.receiver import Receiver

SECRET = "test-secret-0123456789"


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    """The tests' receiver listens on loopback, which the SSRF rule refuses unless allowed."""
    settings.CSKPI_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.CSKPI_WEBHOOK_RETRY_BASE_SECONDS = 10


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def manager(make_client, department):
    return make_client(grants=[(department.slug, "manager")])


def rule_body(department, /, **fields) -> dict:
    body = {"department": department.slug, "kpi": "interactions", "window": "PT15M", "condition": "above",
            "threshold": 10}
    body.update(fields)
    return body
