"""CSV answers (`Accept: text/csv` or `?format=csv`) beside JSON.

A view offering CSV lists `CsvRenderer` (or a subclass that flattens its JSON answer into rows)
after JSON, and mixes in `CsvNegotiationMixin`: errors stay JSON whatever was asked for. On every view an
unknown `format=` is a 400 naming the parameter (`ContentNegotiation`; DRF's default is a misleading 404)."""

import csv
import io
from collections.abc import Iterable, Iterator

import orjson
from rest_framework import renderers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.utils.encoders import JSONEncoder

from cskpi.errors import InvalidInput
from cskpi.params import FORMAT_PARAMETER

CSV_MEDIA_TYPE = "text/csv"


def csv_line(values: Iterable) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(["" if v is None else v for v in values])
    return buffer.getvalue()


def csv_lines(header: list[str], rows: Iterable[dict]) -> Iterator[str]:
    yield csv_line(header)
    for row in rows:
        yield csv_line(row.get(name) for name in header)


class CsvRenderer(renderers.BaseRenderer):
    media_type = CSV_MEDIA_TYPE
    format = "csv"
    charset = "utf-8"

    def table(self, data) -> tuple[list[str], Iterable[dict]]:
        """-> (header, rows) of the JSON answer `data`."""
        raise NotImplementedError

    def render(self, data, accepted_media_type=None, renderer_context=None):
        header, rows = self.table(data)
        return "".join(csv_lines(header, rows)).encode(self.charset)


class ContentNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, but a `format=` the view has no renderer for, or one given twice, is a 400 naming the
    parameter on every view (DRF answers 404 Not Found, as if the path did not exist). When DRF negotiates again
    to render an error (`force`), it falls back to the view's first renderer."""

    def select_renderer(self, request, renderers, format_suffix=None):
        requested = request.query_params.getlist(FORMAT_PARAMETER)
        formats = [r.format for r in renderers]
        if len(requested) > 1 or (requested and requested[0] not in formats):
            raise InvalidInput(f"format: give one of {', '.join(formats)}, once.", [
                {"field": FORMAT_PARAMETER, "code": "invalid_choice",
                 "message": f"Give one of {', '.join(formats)}, once."}
            ])
        return super().select_renderer(request, renderers, format_suffix)


class CsvNegotiationMixin:
    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code >= 400 and isinstance(getattr(response, "accepted_renderer", None), CsvRenderer):
            response.accepted_renderer = FiniteJSONRenderer()
            response.accepted_media_type = "application/json"
        return response

    @staticmethod
    def wants_csv(request) -> bool:
        return isinstance(getattr(request, "accepted_renderer", None), CsvRenderer)


# --- JSON: orjson, and never a non-finite number -------------------------------------------------
# JSON has no NaN or Infinity; a stored value that produced one (or an overflow) must not make the
# answer unparseable or a 500. orjson writes NaN, Infinity and -Infinity as `null` (the API's "no
# value"); types orjson does not know (Decimal, lazy translations, datetimes) go through DRF's
# encoder, so the text is the same as DRF's JSONRenderer would write, unless they offer `as_json()`.
_encoder = JSONEncoder()
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_SERIALIZE_NUMPY
# A mapping key that is not a string (DRF's encoder writes it as one) needs this option, which makes
# orjson write every mapping slower (a series' 744 points: 48 µs instead of 28): only an answer that
# holds such a key is written with it.
_NON_STR_KEYS = _OPTIONS | orjson.OPT_NON_STR_KEYS


def _default(obj):
    """A type orjson does not know: one that offers `as_json()` (a compact structure that writes as
    plain JSON, e.g. a KPI series held column by column) gives that; anything else goes to DRF's encoder."""
    as_json = getattr(type(obj), "as_json", None)
    if as_json is not None:
        return as_json(obj)
    return _encoder.default(obj)


def json_dumps(data) -> bytes:
    try:
        return orjson.dumps(data, default=_default, option=_OPTIONS)
    except orjson.JSONEncodeError:  # a key that is not a string (or a type nothing writes: raised again)
        return orjson.dumps(data, default=_default, option=_NON_STR_KEYS)


class FiniteJSONRenderer(renderers.JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return json_dumps(data)
