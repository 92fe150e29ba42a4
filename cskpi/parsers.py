"""The JSON parser of every endpoint: NaN and Infinity refused, too-deep nesting a 400 (never a 500)."""

import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser


class FastJSONParser(BaseParser):
    """Parses the whole body at once (the size limit is enforced before, see apis.batch_items_read)."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            return json.loads(raw, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")
