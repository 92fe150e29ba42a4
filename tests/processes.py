"""Real processes for tests that need them: a Celery worker and beat, gunicorn, a private Redis.

All bind to loopback only, log to files under the test's tmp_path, and are stopped by the caller
(use them in fixtures). The database they use is the pytest test database, so tests that start
them need `django_db(transaction=True)` (their data must be committed to be seen).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def wait_until(predicate: Callable[[], object], *, timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout} s")
        time.sleep(interval)


class Process:
    """A child process with its output in a log file."""

    def __init__(self, name: str, args: list[str], *, env: dict, log: Path):
        self.name, self.log = name, log
        with open(log, "w") as out:
            self.popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_output(self, text: str, *, timeout: float = 30) -> None:
        def seen():
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.popen.returncode}):\n{self.output()[-3000:]}")
            return text in self.output()
        wait_until(seen, timeout=timeout, what=f"{self.name} printing {text!r}")

    def children(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def stop(self, timeout: float = 15) -> None:
        if self.popen.poll() is not None:
            return
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()


def service_env(*, redis_url: str, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    return {**env, "DATABASE_URL": test_database_url(), "REDIS_URL": redis_url, "LOG_LEVEL": "INFO",
            "DJANGO_DEBUG": "false", **extra}


def start_redis(tmp_path: Path, port: int | None = None) -> Process:
    port = port or free_port()
    process = Process("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                                "--appendonly", "no", "--dir", str(tmp_path)],
                      env=dict(os.environ), log=tmp_path / f"redis-{port}.log")
    process.port = port
    process.url = f"redis://127.0.0.1:{port}/0"
    process.wait_for_output("Ready to accept connections")
    return process


def start_worker(tmp_path: Path, env: dict, *, pool: str = "prefork", concurrency: int = 1,
                 name: str = "worker") -> Process:
    process = Process(name, [str(BIN / "celery"), "-A", "cskpi", "worker", "--pool", pool,
                             "--concurrency", str(concurrency), "--loglevel", "INFO", "--without-gossip",
                             "--without-mingle", "--without-heartbeat", "-n", f"{name}@%h"],
                      env=env, log=tmp_path / f"{name}.log")
    process.wait_for_output("ready.")
    return process


def start_beat(tmp_path: Path, env: dict) -> Process:
    process = Process("beat", [str(BIN / "celery"), "-A", "cskpi", "beat", "--loglevel", "INFO",
                               "--schedule", str(tmp_path / "beat-schedule")],
                      env=env, log=tmp_path / "beat.log")
    process.wait_for_output("beat: Starting")
    return process


def start_web(tmp_path: Path, env: dict, *, workers: int = 1) -> Process:
    port = free_port()
    process = Process("web", [str(BIN / "gunicorn"), "-c", "python:cskpi.gunicorn_conf", "cskpi.wsgi:application",
                              "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--timeout", "60"],
                      env=env, log=tmp_path / "web.log")
    process.url = f"http://127.0.0.1:{port}"

    def answers():
        if process.popen.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{process.output()[-3000:]}")
        try:
            urllib.request.urlopen(f"{process.url}/api/v1/health", timeout=2)
            return True
        except urllib.error.HTTPError:
            return True  # it answers (503 while a dependency is down is still an answer)
        except OSError:
            return False
    wait_until(answers, timeout=30, what="gunicorn answering")
    return process


def http(method: str, url: str, *, token: str | None = None, body=None, timeout: float = 30):
    """-> (status, headers, parsed JSON body or None). Never raises for an HTTP status."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw, status, headers = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        raw, status, headers = error.read(), error.code, dict(error.headers)
    try:
        return status, headers, json.loads(raw) if raw else None
    except ValueError:
        return status, headers, raw.decode(errors="replace")
