"""A real HTTP receiver on loopback for webhook tests: records every request, answers a scripted
status per request (then 200), and can hold a request open until released."""

import hashlib
import hmac
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from time import monotonic


@dataclass
class Received:
    headers: dict
    body: bytes
    at: float  # time.monotonic() when it arrived


def signature_verifies(*, secret: str, header: str, body: bytes) -> bool:
    """What a receiver does (the snippet in docs/alerts.md, independently written here)."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


class Receiver:
    def __init__(self, statuses=(), hold_first: bool = False, tls: "ssl.SSLContext | None" = None,
                 host: str = "127.0.0.1"):
        self.requests: list[Received] = []
        self.statuses = list(statuses)
        self.lock = threading.Lock()
        self.hold = threading.Event() if hold_first else None
        self.holding = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.requests.append(Received(dict(self.headers), body, monotonic()))
                    first = len(receiver.requests) == 1
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                if first and receiver.hold is not None:
                    receiver.holding.set()
                    receiver.hold.wait(60)
                    return  # never answers: the sender was killed meanwhile
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://{host}:{self.port}/hooks/cskpi"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def event_ids(self) -> list[str]:
        with self.lock:
            return [r.headers["X-Cskpi-Event-Id"] for r in self.requests]

    def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()
