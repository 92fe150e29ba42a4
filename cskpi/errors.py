"""One error shape for every 4xx/5xx: {"code", "detail", "errors": [{index?, field?, code, message}]}."""

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
# Echoed names and values are cut to this many characters (a 7 MB field name is not sent back).
CLIP_CHARS = 100
_MESSAGE_CHARS = 1000


def text_clip(value, limit: int = CLIP_CHARS) -> str:
    """`value` as text fit to echo in an error: at most `limit` characters, saying how long it was."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


class CappedErrors(list):
    """An error list that keeps the first CSKPI_MAX_ERRORS entries and counts the rest."""

    def __init__(self, limit: int | None = None):
        super().__init__()
        self.limit = settings.CSKPI_MAX_ERRORS if limit is None else limit
        self.not_listed = 0

    @property
    def full(self) -> bool:
        return len(self) >= self.limit

    def append(self, entry) -> None:
        if len(self) < self.limit:
            super().append(entry)
        else:
            self.not_listed += 1


class ApiError(exceptions.APIException):
    """An API error that may carry already-flattened per-field / per-item errors."""

    def __init__(self, detail: str | None = None, errors: list[dict] | None = None, code: str | None = None):
        super().__init__(detail=detail, code=code or self.default_code)
        self.code = code or self.default_code
        self.errors = errors or []
        self.not_listed = getattr(errors, "not_listed", 0)


class InvalidInput(ApiError):
    """A 400 carrying already-flattened errors (used by the batch validators)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"
    default_detail = "Invalid input."


class Forbidden(ApiError):
    """A 403 that names the batch items (or fields) it refuses."""

    status_code = status.HTTP_403_FORBIDDEN
    default_code = "permission_denied"
    default_detail = "You do not have permission to perform this action."


class NotFoundError(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "not_found"
    default_detail = "Not found."


class PayloadTooLarge(ApiError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


class Conflict(ApiError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The request conflicts with stored data."


class ServiceUnavailable(ApiError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "service_unavailable"
    default_detail = "A backing service is unavailable; retry later."


def error_body(code: str, detail: str, errors: list[dict] | None = None, not_listed: int = 0) -> dict:
    """The error shape; at most CSKPI_MAX_ERRORS entries (the rest counted), echoed text clipped."""
    errors = list(errors or [])
    limit = settings.CSKPI_MAX_ERRORS
    if len(errors) > limit:
        not_listed += len(errors) - limit
        errors = errors[:limit]
    body = {"code": code, "detail": text_clip(detail, _MESSAGE_CHARS), "errors": [_entry_clip(e) for e in errors]}
    if not_listed:
        body["errors_not_listed"] = not_listed
        body["detail"] += f" ({not_listed} more errors not listed)"
    return body


def _entry_clip(entry: dict) -> dict:
    out = dict(entry)
    if out.get("field") is not None:
        out["field"] = text_clip(out["field"], 2 * CLIP_CHARS)
    out["message"] = text_clip(out.get("message", ""), _MESSAGE_CHARS)
    return out


def flatten_validation_detail(detail, *, batch: bool = False) -> list[dict]:
    """Turn DRF's nested ValidationError detail into a flat list of {index?, field?, code, message}."""
    out: list[dict] = []

    def walk(node, path: list):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, path + [key])
        elif isinstance(node, list):
            if node and all(isinstance(x, exceptions.ErrorDetail | str) for x in node):
                for item in node:
                    emit(item, path)
            else:
                for i, item in enumerate(node):
                    if item:
                        walk(item, path + [i])
        else:
            emit(node, path)

    def emit(item, path: list):
        entry: dict = {}
        rest = list(path)
        if batch and rest and isinstance(rest[0], int):
            entry["index"] = rest.pop(0)
        rest = [str(p) for p in rest if p != "non_field_errors"]
        entry["field"] = ".".join(rest) if rest else None
        entry["code"] = getattr(item, "code", None) or "invalid"
        entry["message"] = str(item)
        out.append(entry)

    walk(detail, [])
    return out


def exception_handler(exc, context):
    headers = {}
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif _is_statement_timeout(exc):
        exc = _statement_timeout_error(context)
    elif isinstance(exc, OperationalError | InterfaceError):
        # Connection lost, database restarting: transient, never a 500.
        logger.warning("database unavailable: %s", exc)
        exc = ServiceUnavailable("The database is unavailable; retry later.", code="database_unavailable")
    elif isinstance(exc, DatabaseError):
        logger.exception("database error")
        exc = ServiceUnavailable("The database refused the operation; retry later.")

    if not isinstance(exc, exceptions.APIException):
        return None  # a real bug: Django's 500 handler answers (JSON, see server_error)

    if isinstance(exc, ApiError):
        body = error_body(exc.code, str(exc.detail), exc.errors, exc.not_listed)
    elif isinstance(exc, exceptions.ValidationError):
        view = context.get("view")
        batch = bool(getattr(view, "batch_errors", False))
        errors = [_entry_clip(e) for e in flatten_validation_detail(exc.detail, batch=batch)]
        body = error_body("invalid", _summary(errors), errors)
    else:
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        body = error_body(code, str(exc.detail))
    if not body["errors"] and exc.status_code in (401, 403):
        # Every refusal says why, in `errors` too (clients read the list, not the summary).
        body["errors"] = [{"field": None, "code": body["code"], "message": body["detail"]}]

    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    if exc.status_code == status.HTTP_503_SERVICE_UNAVAILABLE:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return Response(body, status=exc.status_code, headers=headers)


def _is_statement_timeout(exc) -> bool:
    # psycopg's QueryCanceled (SQLSTATE 57014), which Django wraps in OperationalError.
    return isinstance(exc, OperationalError) and getattr(exc.__cause__, "sqlstate", None) == "57014"


def _statement_timeout_error(context) -> ApiError:
    """A read that hits the statement timeout asked for too much: 400, narrow it. A write that hits
    it met contention: 503, retry it (a 4xx would tell a platform to drop the batch)."""
    request = context.get("request")
    limit = f"{settings.DATABASE_STATEMENT_TIMEOUT_MS} ms"
    if request is not None and request.method in ("GET", "HEAD"):
        logger.warning("read stopped by the statement timeout: %s", request.get_full_path())
        return InvalidInput(
            f"The query ran past the database statement timeout ({limit}); narrow the range, the "
            "departments or the grouping.", code="query_timeout",
        )
    logger.warning("write stopped by the statement timeout")
    return ServiceUnavailable(
        f"The database did not finish in time ({limit}); nothing was written; retry later.",
        code="statement_timeout",
    )


def _summary(errors: list[dict]) -> str:
    if not errors:
        return "Invalid input."
    first = errors[0]
    where = first.get("field") or "input"
    if "index" in first:
        where = f"item {first['index']}" + (f" field {first['field']}" if first.get("field") else "")
    more = f" ({len(errors) - 1} more errors)" if len(errors) > 1 else ""
    return f"{where}: {first['message']}{more}"


# Django-level handlers (URLs outside DRF views, errors before a view runs).
def bad_request(request, exception=None):
    return JsonResponse(error_body("bad_request", "Bad request."), status=400)


def permission_denied(request, exception=None):
    return JsonResponse(error_body("permission_denied", "Permission denied.", [
        {"field": None, "code": "permission_denied", "message": "Permission denied."}]), status=403)


def page_not_found(request, exception=None):
    path = text_clip(request.path)
    detail = f"No endpoint at {path}."
    if request.path.startswith("/api/v1/") and request.path.endswith("/") and len(request.path) > 8:
        detail += f" API paths have no trailing slash: {text_clip(request.path.rstrip('/'))}."
    return JsonResponse(error_body("not_found", detail), status=404)


@csrf_exempt  # an unsafe method on no route is a 404, not the CSRF middleware's HTML 403
def not_found_view(request, *args, **kwargs):
    """Every URL no route matches, in every mode: JSON (Django's debug 404 page lists every URL)."""
    return page_not_found(request)


def server_error(request):
    return JsonResponse(error_body("server_error", "Internal error; it has been logged."), status=500)
