import pytest
from pytest_django.live_server_helper import LiveServer


@pytest.fixture
def api_server(transactional_db):
    """The API on http://127.0.0.1:<free port>: Django's live server thread on the test database (in this
    process, so settings overrides apply)."""
    server = LiveServer("127.0.0.1:0")
    yield server
    server.stop()
