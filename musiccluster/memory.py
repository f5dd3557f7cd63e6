"""Hand a large request's memory back to the system once it is answered.

A 10,000-vector predict parses ~2 MB of JSON into Python objects and renders
~5 MB back. Once answered, most of that memory is garbage held in reference
cycles (DRF's request and view point at each other) and free space inside the
C allocator's heap: a gunicorn worker kept 25-55 MB more after each such
request, and only gave it back many requests later (`manage.py bench`, serve
phase: worker private memory before and after five batch predicts).

After a request whose body or response is at least LARGE_REQUEST_BYTES, a
short-lived thread waits until the request has unwound (the server still
holds the request and response objects while it closes the response), then
runs a full garbage collection and glibc's ``malloc_trim(0)``, which returns
the free pages of the heap. Several large requests in a row share one
release. Ordinary requests pay nothing: no thread, no collection.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import threading
import time

from django.conf import settings

logger = logging.getLogger(__name__)

# How long the release waits for the answered request to unwind.
RELEASE_DELAY_SECONDS = 0.05


def _malloc_trim():
    """glibc's malloc_trim, or None elsewhere (musl, macOS): then only the collection runs."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_trim = _malloc_trim()
_lock = threading.Lock()
_pending = False


def release_memory() -> bool:
    """Collect every garbage generation and return the heap's free pages to the
    system. True when the allocator gave memory back."""
    gc.collect()
    return bool(_trim(0)) if _trim is not None else False


def _release_later() -> None:
    global _pending
    time.sleep(RELEASE_DELAY_SECONDS)
    with _lock:
        _pending = False
    try:
        release_memory()
    except Exception:  # never let housekeeping take a worker down
        logger.exception("releasing memory after a large request failed")


def schedule_release() -> bool:
    """Release memory shortly, in a background thread, unless a release is
    already due. True when this call scheduled it."""
    global _pending
    with _lock:
        if _pending:
            return False
        _pending = True
    threading.Thread(target=_release_later, name="release-memory", daemon=True).start()
    return True


def is_large(request, response) -> bool:
    """The request's body or the (non-streaming) response's content is at least LARGE_REQUEST_BYTES."""
    limit = settings.LARGE_REQUEST_BYTES
    try:
        body = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        body = 0
    if body >= limit:
        return True
    if response.streaming:
        return False
    # CommonMiddleware (inside this one) has set Content-Length: no copy of the content to measure it.
    length = response.get("Content-Length")
    return (int(length) if length and length.isdigit() else len(response.content)) >= limit


class ReleaseMemoryMiddleware:
    """schedule_release() after a large request (see the module's docstring)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.LARGE_REQUEST_BYTES and is_large(request, response):
            schedule_release()
        return response
