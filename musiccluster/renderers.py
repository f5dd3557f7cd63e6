"""The API's JSON, written by orjson.

DRF's ``JSONRenderer`` writes a response with the standard library's
encoder: on a similar-songs response that was 0.60 ms of the request,
orjson writes it in 0.06 ms (docs/PERFORMANCE.md, "JSON written by
orjson"). What it writes is DRF's JSON: compact separators, text as UTF-8
rather than ASCII escapes, U+2028 and U+2029 escaped (a strict JavaScript
subset), dates and times and every type orjson does not write itself
(numpy scalars and arrays, lazy translations, decimals, querysets) through
DRF's own encoder. The text is the same byte for byte but for how a few
numbers are spelled: a float below 1e-4 in magnitude may be written
``0.00001`` or ``1e-7`` where Python writes ``1e-05`` and ``1e-07`` (the
same number to any JSON reader).

Where DRF would write something else, it still does: an ``indent``
asked for in the ``Accept`` header (``application/json; indent=4``) or by
the browsable API, ``UNICODE_JSON`` or ``COMPACT_JSON`` turned off, and
what orjson refuses (an integer beyond 64 bits). One difference is kept on
purpose: a float that is not finite (NaN, infinity) is written as
``null``, where DRF's strict JSON refuses the whole response with a 500.
"""

from __future__ import annotations

import orjson
from rest_framework import renderers
from rest_framework.utils.encoders import JSONEncoder

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
# DRF's encoder for what orjson hands back: datetimes (DRF trims them to
# milliseconds and writes UTC as Z), numpy values, lazy strings, decimals.
_default = JSONEncoder().default


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if (
            self.ensure_ascii
            or not self.compact
            or self.get_indent(accepted_media_type, renderer_context or {}) is not None
        ):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            out = orjson.dumps(data, default=_default, option=_OPTIONS)
        except orjson.JSONEncodeError:
            return super().render(data, accepted_media_type, renderer_context)
        if b"\xe2\x80\xa8" in out or b"\xe2\x80\xa9" in out:
            out = out.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
        return out
