"""The service's WSGI application plus one probe URL that says whether Django runs with DEBUG (for
tests/cskpi/test_gunicorn_serving.py: the debug pages must never be on when gunicorn serves)."""

from django.conf import settings

from cskpi.wsgi import application as service


def application(environ, start_response):
    if environ.get("PATH_INFO") == "/__debug__":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(settings.DEBUG).encode()]
    return service(environ, start_response)
