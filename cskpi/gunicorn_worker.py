"""The gunicorn worker class `make run`, the Dockerfile and docker-compose serve with.

gunicorn's threaded worker (gthread) keeps one thread per request, so a client that trickles its
request in holds one cheap thread, not a whole worker. Two additions make trickling bounded:

- every read from a client socket has a deadline (`CSKPI_CLIENT_READ_SECONDS` from the start of
  the request, headers and body together) and each single read waits at most
  `CSKPI_CLIENT_IDLE_SECONDS`: a client sending one byte a second is cut off instead of holding
  a thread for as long as it likes;
- gunicorn's own error answers (400 bad request line, 414 URI too long, 431 header fields too
  large, ...) are JSON bodies of the API's error shape instead of HTML.
"""

import json
import os
import socket
import weakref
from time import monotonic

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

READ_SECONDS = float(os.environ.get("CSKPI_CLIENT_READ_SECONDS", "30"))
IDLE_SECONDS = float(os.environ.get("CSKPI_CLIENT_IDLE_SECONDS", "10"))

# The read deadline of each client socket (sockets have no instance dict; a weak map keeps none alive).
_deadlines: "weakref.WeakKeyDictionary[socket.socket, float]" = weakref.WeakKeyDictionary()


# After a request, what a closing connection may still drain (gunicorn drains on its main thread:
# a client that keeps trickling must not hold it for long).
CLOSE_DRAIN_SECONDS = 0.2


class _ClientSocket(socket.socket):
    """A client socket whose blocking mode is "blocking with a timeout", whose reads have a deadline."""

    __slots__ = ()

    def setblocking(self, flag):
        if flag:
            self.settimeout(IDLE_SECONDS)
        else:
            super().setblocking(False)

    def _check(self):
        deadline = _deadlines.get(self)
        if deadline is not None and monotonic() > deadline and self.gettimeout() is not None:
            raise TimeoutError(f"the client took longer than {READ_SECONDS:g} s to send its request")

    def recv(self, *args):
        self._check()
        return super().recv(*args)

    def recv_into(self, *args):
        self._check()
        return super().recv_into(*args)


class _Accepting:
    """The listening socket, handing out client sockets as `_ClientSocket`s (only the class changes)."""

    def __init__(self, listener):
        self.listener = listener

    def accept(self):
        client, address = self.listener.accept()
        client.__class__ = _ClientSocket
        return client, address

    def getsockname(self):
        return self.listener.getsockname()


class HardenedThreadWorker(ThreadWorker):
    def accept(self, listener):
        return super().accept(_Accepting(listener))

    def handle(self, conn):
        # Each request (a kept-alive connection's next one too) gets READ_SECONDS to arrive.
        _deadlines[conn.sock] = monotonic() + READ_SECONDS
        try:
            return super().handle(conn)
        finally:
            _deadlines[conn.sock] = min(_deadlines.get(conn.sock, float("inf")), monotonic() + CLOSE_DRAIN_SECONDS)


def _json_error(sock, status_int, reason, mesg):
    """gunicorn's error answer, in the API's error shape (it writes HTML otherwise)."""
    code = {400: "bad_request", 403: "permission_denied", 414: "uri_too_long",
            431: "header_fields_too_large", 417: "expectation_failed", 501: "not_implemented"}.get(
        status_int, "server_error")
    detail = f"{reason}: {mesg}" if mesg else reason
    body = json.dumps({"code": code, "detail": detail[:500], "errors": [
        {"field": None, "code": code, "message": detail[:500]}]}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n\r\n").encode("latin1")
    util.write_nonblock(sock, head + body)


# gunicorn offers no setting for the body of its own errors; its workers call util.write_error.
util.write_error = _json_error
