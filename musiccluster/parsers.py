"""DRF's JSON parser with limits: nesting depth and NUL characters.

Python's json module recurses: a body of 100,000 `[` would end in a
RecursionError (a 500). Nothing the API accepts is deeper than a few levels.
"""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_JSON_DEPTH = 100


def _check(data) -> None:
    """Iteratively: depth at most MAX_JSON_DEPTH, no NUL in any string or key."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            items = list(value.values())
            keys = value.keys()
        elif isinstance(value, list):
            items, keys = value, ()
        else:
            if isinstance(value, str) and "\x00" in value:
                raise ParseError("The JSON body contains a NUL character (\\u0000), which no field accepts.")
            continue
        if depth > MAX_JSON_DEPTH:
            raise ParseError(f"JSON nested too deeply (more than {MAX_JSON_DEPTH} levels).")
        if any("\x00" in key for key in keys):
            raise ParseError("The JSON body contains a NUL character (\\u0000), which no field accepts.")
        stack.extend((item, depth + 1) for item in items if isinstance(item, (dict, list, str)))


class SafeJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON nested too deeply (more than {MAX_JSON_DEPTH} levels).") from None
        _check(data)
        return data
