"""gunicorn as `make run`, the Dockerfile and docker-compose start it (cskpi/gunicorn_conf.py):
slow clients do not block the API (finding 3), no debug pages (finding 5), gunicorn's own errors
in the JSON error shape (finding 8). The servers run on a private SQLite file on loopback."""

import json
import os
import socket
import threading
import time
import urllib.request

import pytest

from tests.processes import BIN, ROOT, Process, free_port, wait_until

CONF = ["-c", "python:cskpi.gunicorn_conf"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("gunicorn")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST") and k != "REDIS_URL"}
    env.update(DATABASE_URL=f"sqlite:///{base / 'db.sqlite3'}", DJANGO_DEBUG="true", LOG_LEVEL="WARNING")
    import subprocess

    subprocess.run([str(BIN / "python"), "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                   check=True)
    env["_BASE"] = str(base)
    return env


def _serve(env, *args, extra_env=None, name="web"):
    port = free_port()
    process = Process(name, [str(BIN / "gunicorn"), *args, "--bind", f"127.0.0.1:{port}"],
                      env={**env, **(extra_env or {})}, log=__import__("pathlib").Path(env["_BASE"]) / f"{name}-{port}.log")
    process.url, process.port = f"http://127.0.0.1:{port}", port

    def answers():
        if process.popen.poll() is not None:
            raise RuntimeError(process.output()[-3000:])
        try:
            urllib.request.urlopen(f"{process.url}/api/v1/health", timeout=2)
            return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
    wait_until(answers, timeout=30, what="gunicorn answering")
    return process


def _raw(port: int, request: bytes) -> tuple[int, dict, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("args", [CONF + ["tests.cskpi.debug_probe_wsgi:application"],
                                  ["tests.cskpi.debug_probe_wsgi:application"]], ids=["conf", "bare"])
def test_no_debug_pages_when_gunicorn_serves_even_if_asked(env, args):
    web = _serve(env, *args)  # DJANGO_DEBUG=true in its environment
    try:
        assert urllib.request.urlopen(f"{web.url}/__debug__", timeout=5).read() == b"False"
        status, headers, body = _raw(web.port, b"GET /api/v1/nope/ HTTP/1.1\r\nHost: localhost\r\n"
                                               b"Connection: close\r\n\r\n")
        assert status == 404 and headers["Content-Type"] == "application/json"
        assert json.loads(body)["code"] == "not_found"
    finally:
        web.stop()


def test_slow_clients_do_not_block_the_api(env):
    """Headers trickled at 1 byte/s from 8 connections (the attack used 2, which blocked both sync
    workers of `make run`): /health answers within 1 s throughout, and the trickling clients are cut
    off. One worker (already warm), so every probe meets the trickling clients."""
    web = _serve(env, *CONF, "cskpi.wsgi:application",
                 extra_env={"WEB_CONCURRENCY": "1", "CSKPI_CLIENT_READ_SECONDS": "4"})
    cut_after: list[float] = []
    stop = threading.Event()

    def trickle():
        sock = socket.create_connection(("127.0.0.1", web.port))
        started = time.monotonic()
        try:
            sock.sendall(b"GET /api/v1/health HTTP/1.1\r\n")
            while not stop.is_set() and time.monotonic() - started < 12:
                sock.sendall(b"X")
                time.sleep(1)
            return
        except OSError:
            cut_after.append(time.monotonic() - started)
        finally:
            sock.close()

    threads = [threading.Thread(target=trickle) for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1)
        probes = []
        for _ in range(10):
            started = time.monotonic()
            with urllib.request.urlopen(f"{web.url}/api/v1/health", timeout=5) as response:
                assert response.status == 200
            probes.append(time.monotonic() - started)
            time.sleep(0.5)
        assert max(probes) < 1.0, probes
        for thread in threads:
            thread.join(timeout=15)
        # Cut at the read deadline (4 s; a broken pipe shows on the next byte sent after it).
        assert len(cut_after) == 8 and max(cut_after) < 8, cut_after
    finally:
        stop.set()
        web.stop()


@pytest.mark.parametrize(("request_bytes", "status", "code"), [
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-H%d: 1\r\n" % i for i in range(120)) + b"\r\n", 431,
     "header_fields_too_large"),
    (b"NOT A REQUEST\r\n\r\n", 400, "bad_request"),
])
def test_gunicorn_errors_are_json(env, request_bytes, status, code):
    web = _serve(env, *CONF, "cskpi.wsgi:application", name=f"web-{status}")
    try:
        got, headers, body = _raw(web.port, request_bytes)
        assert got == status and headers["Content-Type"] == "application/json"
        parsed = json.loads(body)
        assert parsed["code"] == code and parsed["errors"][0]["code"] == code
    finally:
        web.stop()
