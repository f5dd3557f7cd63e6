"""GET /healthz: is the database reachable, and the broker when configured."""

import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _check_broker() -> str:
    if not settings.CELERY_BROKER_URL:
        return "not configured (tasks run in-process)"
    from kombu import Connection

    with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return "ok"


@never_cache
def healthz(request):
    started = time.perf_counter()
    body = {"status": "ok"}
    code = 200
    for name, check in (("database", _check_database), ("broker", _check_broker)):
        try:
            body[name] = check()
        except Exception as exc:  # any failure makes the service unhealthy
            body[name] = f"error: {exc.__class__.__name__}: {exc}"
            body["status"] = "error"
            code = 503
    body["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return JsonResponse(body, status=code)
