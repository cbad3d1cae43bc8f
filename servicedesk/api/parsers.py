"""JSON parsing that refuses what the database cannot store."""

from __future__ import annotations

import math

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _check(value) -> None:
    # JSON may carry lone UTF-16 surrogates ("\ud800"), which no UTF-8 column can hold; left
    # alone they would fail deep in the database driver as a 500.
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ParseError("JSON strings must be valid Unicode (no lone surrogates).") from None
    elif isinstance(value, float) and not math.isfinite(value):
        # 1e999 is valid JSON syntax but parses to infinity, which no field can hold.
        raise ParseError("JSON numbers must be finite.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key)
            _check(item)
    elif isinstance(value, list):
        for item in value:
            _check(item)


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
            _check(data)
        except RecursionError:
            raise ParseError("JSON nested too deeply.") from None
        return data
