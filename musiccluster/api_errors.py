"""One error shape for the whole API (documented by songs.api.ApiErrorSerializer).

Every error is JSON with a top-level `detail` string a person can read
("limit: Ensure this value is less than or equal to 100."); validation
errors also keep DRF's per-field structure under `errors` for programs.
"""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.signals import got_request_exception
from django.http import JsonResponse
from django.views import defaults
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from .middleware import DEAD_DEPENDENCY, SPOTIFY_PREFIX, service_unavailable

logger = logging.getLogger("musiccluster.api")

# A list of 10,000 bad vectors must not make a 10,000-part sentence.
MAX_MESSAGES = 10


def _messages(data, path: str = ""):
    """(field path, message) pairs of a DRF error structure, depth first."""
    if isinstance(data, dict):
        for key, value in data.items():
            key = str(key)
            if key in (api_settings.NON_FIELD_ERRORS_KEY, "detail") and not path:
                name = ""
            elif key.isdigit():  # a ListField or DictField child
                name = f"{path}[{key}]"
            else:
                name = f"{path}.{key}" if path else key
            yield from _messages(value, name)
    elif isinstance(data, list):
        if any(isinstance(item, (dict, list)) for item in data):  # one entry per item of a list payload
            for index, item in enumerate(data):
                if item:
                    yield from _messages(item, f"{path}[{index}]")
        else:
            for message in data:
                yield path, str(message)
    elif data is not None:
        yield path, str(data)


def error_detail(data) -> str:
    """The one-line summary of a DRF error structure."""
    parts = []
    pairs = list(_messages(data))
    for path, message in pairs[:MAX_MESSAGES]:
        parts.append(f"{path}: {message}" if path else message)
    if len(pairs) > MAX_MESSAGES:
        parts.append(f"and {len(pairs) - MAX_MESSAGES} more errors")
    return "; ".join(parts) or "Invalid input."


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": f"The request body is too large: {exc}"}, status=413)
    if isinstance(exc, SuspiciousOperation):
        # E.g. more form fields than DATA_UPLOAD_MAX_NUMBER_FIELDS: the client's fault, not a crash.
        return Response({"detail": f"Bad request: {exc}"}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DEAD_DEPENDENCY):
        request = context.get("request")
        return service_unavailable(getattr(request, "_request", request), exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        if settings.DEBUG:
            return None  # Django's debug page, with the traceback
        request = context.get("request")
        logger.error("Unhandled API error in %s", context.get("view").__class__.__name__, exc_info=exc)
        # Error reporters and the test client listen to this signal.
        got_request_exception.send(sender=None, request=getattr(request, "_request", request))
        return Response({"detail": "Internal server error."}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    if isinstance(exc, ValidationError):
        data = response.data
        errors = (
            data
            if isinstance(data, dict) or any(isinstance(i, (dict, list)) for i in data)
            else {api_settings.NON_FIELD_ERRORS_KEY: data}
        )
        response.data = {"detail": error_detail(data), "errors": errors}
    elif not (isinstance(response.data, dict) and isinstance(response.data.get("detail"), str)):
        # Other API exceptions raised with a dict or list detail.
        response.data = {"detail": error_detail(response.data), "errors": response.data}
    return response


def page_not_found(request, exception):
    """Django's 404 page, but JSON under /api/ and /spotify/v1/ (an API client never gets HTML)."""
    if request.path.startswith(SPOTIFY_PREFIX):
        message = f"No endpoint at {request.path}; see /api/docs/ (tag Spotify-compatible)."
        return JsonResponse({"error": {"status": 404, "message": message}}, status=404)
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": f"No API endpoint at {request.path}; see /api/docs/."}, status=404)
    return defaults.page_not_found(request, exception)
