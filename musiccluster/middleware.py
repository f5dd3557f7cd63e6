"""Requests that must not end in a 500.

- A dead database (`OperationalError`, `InterfaceError`) or broker
  (`songs.background.BrokerUnavailable`, raised before anything is queued) is a 503 with
  `Retry-After`, JSON under /api/ (Spotify's error shape under /spotify/v1/)
  and a small page elsewhere; the exception
  is logged, never shown. (The API's exception handler answers the same for
  DRF views: `service_unavailable`.) A connection the database dropped (a
  restart) is closed there and then, so the worker's next request connects
  afresh: persistent connections are not pinged before each request
  (`CONN_HEALTH_CHECKS` is off, settings.py).
- A NUL byte in the path, a query parameter or a form value is a 400 with a
  clear message (Postgres refuses NUL in text; SQLite would store it).
"""

from __future__ import annotations

import logging

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import connections
from django.db.utils import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.html import escape

from songs.background import BrokerUnavailable

logger = logging.getLogger("musiccluster.errors")

RETRY_AFTER_SECONDS = 30
DATABASE_DOWN = "The database is unavailable; try again in a little while."
NUL_IN_INPUT = "The request contains a NUL character (\\x00), which no field accepts."
DEAD_DEPENDENCY = (OperationalError, InterfaceError, BrokerUnavailable)
SPOTIFY_PREFIX = "/spotify/v1/"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1><p>{message}</p></body></html>
"""


def _is_api(request) -> bool:
    return request.path_info.startswith("/api/")


def _is_spotify(request) -> bool:
    return request.path_info.startswith(SPOTIFY_PREFIX)


def _answer(request, *, status: int, title: str, message: str) -> HttpResponse:
    if _is_spotify(request):  # the Spotify-compatible surface's error shape
        return JsonResponse({"error": {"status": status, "message": message}}, status=status)
    if _is_api(request):
        return JsonResponse({"detail": message}, status=status)
    return HttpResponse(
        _PAGE.format(title=escape(title), message=escape(message)), status=status, content_type="text/html"
    )


def close_broken_connections() -> list[str]:
    """Close every database connection of this thread that its driver knows
    is broken (the server closed it: a restart, a terminated backend); the
    aliases closed. No round trip: psycopg marks a connection it lost as
    ``closed``. Healthy connections, and SQLite's, are left alone."""
    closed = []
    for conn in connections.all(initialized_only=True):
        raw = conn.connection
        if raw is not None and getattr(raw, "closed", False):
            conn.close()
            closed.append(conn.alias)
    return closed


def service_unavailable(request, exc: BaseException) -> HttpResponse:
    """The 503 for a dead database or broker: the reason without hosts or
    exception text (those go to the log)."""
    if isinstance(exc, BrokerUnavailable):
        logger.error("Broker unavailable during %s %s", request.method, request.path)
        message = str(exc)
    else:
        logger.error("Database unavailable during %s %s", request.method, request.path, exc_info=exc)
        message = DATABASE_DOWN
        close_broken_connections()
    response = _answer(request, status=503, title="Service unavailable", message=message)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _has_nul(querydict) -> bool:
    return any("\x00" in key or any("\x00" in v for v in values) for key, values in querydict.lists())


def _nul_in_request(request) -> bool:
    if "\x00" in request.path_info or _has_nul(request.GET):
        return True
    content_type = request.content_type or ""
    if request.method == "POST" and content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return _has_nul(request.POST)
    return False


class ServiceErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # Once the form is read here, a half-read upload cannot be read again by
        # the view: errors of reading it are answered here (as the API's
        # exception handler answers them).
        try:
            nul = _nul_in_request(request)
        except RequestDataTooBig as exc:
            return _answer(
                request, status=413, title="Request too large", message=f"The request body is too large: {exc}"
            )
        except SuspiciousOperation as exc:  # e.g. more fields than DATA_UPLOAD_MAX_NUMBER_FIELDS
            return _answer(request, status=400, title="Bad request", message=f"Bad request: {exc}")
        except MultiPartParserError:
            return _answer(request, status=400, title="Bad request", message="The form data cannot be read.")
        if nul:
            return _answer(request, status=400, title="Bad request", message=NUL_IN_INPUT)
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, DEAD_DEPENDENCY):
            return service_unavailable(request, exception)
        return None
