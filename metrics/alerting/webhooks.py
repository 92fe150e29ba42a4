"""Webhook targets and sending: the SSRF rule, the signature, and a POST pinned to the checked address.

SSRF rule: `https` only, and every address the host resolves to must be public (not private,
loopback, link-local, shared, reserved, multicast or a cloud metadata address). Checked when a rule
is saved and again before every send, after resolving; the connection goes to the address that was
checked, never to a second resolution (so DNS rebinding cannot slip a private address in). A host
listed in CSKPI_WEBHOOK_ALLOWED_HOSTS skips the address check and may use plain `http`.
"""

import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from time import monotonic
from urllib.parse import urlsplit

from django.conf import settings

# Cloud metadata endpoints that are not caught by the private/link-local ranges.
_METADATA = {ipaddress.ip_address("100.100.100.200"), ipaddress.ip_address("fd00:ec2::254")}
_MAX_RESPONSE_BYTES = 64 * 1024


class WebhookTargetError(ValueError):
    """The URL fails the SSRF rule; `code` says why."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line
    addresses: tuple[str, ...]  # resolved, checked (unless the host is allowed)


def host_allowed(host: str) -> bool:
    return host.lower().strip("[]") in {h.lower().strip("[]") for h in settings.CSKPI_WEBHOOK_ALLOWED_HOSTS}


def address_is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast and ip not in _METADATA


def _resolve(host: str, port: int) -> tuple[str, ...]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise WebhookTargetError(f"The host '{host}' does not resolve ({exc}).", "unresolvable_host") from None
    return tuple(dict.fromkeys(info[4][0] for info in infos))


def url_parse(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of a webhook URL, or WebhookTargetError."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookTargetError("Not a valid URL.", "invalid_url") from None
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise WebhookTargetError("Give an absolute https:// URL.", "invalid_url")
    if parts.username is not None or parts.password is not None:
        raise WebhookTargetError("Credentials in the URL are not allowed; use the signature.", "invalid_url")
    if parts.fragment:
        raise WebhookTargetError("A webhook URL has no #fragment.", "invalid_url")
    if parts.scheme == "http" and not host_allowed(host):
        raise WebhookTargetError("Webhooks go over https only (plain http only to CSKPI_WEBHOOK_ALLOWED_HOSTS).",
                                 "https_required")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path


def target_resolve(url: str) -> Target:
    """Parse, resolve and check a webhook URL against the SSRF rule."""
    scheme, host, port, path = url_parse(url)
    addresses = _resolve(host, port)
    if not addresses:
        raise WebhookTargetError(f"The host '{host}' has no address.", "unresolvable_host")
    if not host_allowed(host):
        blocked = [a for a in addresses if not address_is_public(a)]
        if blocked:
            raise WebhookTargetError(
                f"The host '{host}' resolves to a non-public address ({blocked[0]}): private, loopback, "
                "link-local and metadata addresses are refused.", "forbidden_address",
            )
    return Target(scheme, host, port, path, addresses)


def signature_header(*, secret: str, body: bytes, timestamp: int) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed by the secret>`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to a given address; the Host header still names the URL's host."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to a given address, with SNI and certificate checked against the URL's host."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


@dataclass(frozen=True)
class SendResult:
    address: str
    status_code: int | None
    timed_out: bool
    error: str


def post(*, target: Target, headers: dict[str, str], body: bytes, timeout: float) -> SendResult:
    """POST `body` to the first checked address of `target`, within `timeout` seconds overall."""
    address = target.addresses[0]
    deadline = monotonic() + timeout
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    conn = connection_class(target.host, target.port, address=address, timeout=timeout)
    try:
        conn.connect()
        conn.sock.settimeout(max(deadline - monotonic(), 0.001))
        conn.request("POST", target.path, body=body, headers=headers)
        conn.sock.settimeout(max(deadline - monotonic(), 0.001))
        response = conn.getresponse()
        response.read(_MAX_RESPONSE_BYTES)
        return SendResult(address, response.status, False, "")
    except TimeoutError:
        return SendResult(address, None, True, f"no answer within {timeout:g} s")
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        return SendResult(address, None, False, f"{type(exc).__name__}: {exc}"[:500])
    finally:
        conn.close()
