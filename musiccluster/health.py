"""GET /healthz: every component the site needs, each with its state.

- `database`: a `SELECT 1`;
- `broker` (when CELERY_BROKER_URL is set): a connection;
- `workers` (with a broker): at least one Celery worker answers a ping;
- `model`, `index`: the active run's model and similar-song index load
  (verified by sha256 the first time a process loads them; later calls
  use the process's cache and check that the files are still there).
  No active run is reported ("no model yet") but is not a failure; nor is
  a run without an index (the similar-song endpoints say so).

Any failure makes the answer 503 with `"status": "error"`. Values are "ok…",
a state, or "error: <what>" without hosts, paths or exception text (those
are logged). `?quick=1` is a process check only: 200, no database.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from clustering import artifacts, selectors
from clustering.errors import ArtifactError

logger = logging.getLogger("musiccluster.health")

PING_TIMEOUT_SECONDS = 1


class Down(Exception):
    """A component is down; the message is safe to show."""


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        logger.error("Health: database unreachable", exc_info=exc)
        raise Down("unreachable") from None
    return "ok"


def _check_broker() -> str:
    from kombu import Connection

    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        logger.error("Health: broker unreachable", exc_info=exc)
        raise Down("unreachable") from None
    return "ok"


def _check_workers() -> str:
    from kombu import Connection

    from .celery import app

    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as conn:
            replies = app.control.ping(timeout=PING_TIMEOUT_SECONDS, connection=conn)
    except Exception as exc:
        logger.error("Health: worker ping failed", exc_info=exc)
        raise Down("the workers cannot be asked") from None
    if not replies:
        raise Down(f"no worker answered within {PING_TIMEOUT_SECONDS} s")
    return f"ok ({len(replies)} worker{'s' if len(replies) != 1 else ''})"


def _artifact(run, *, what: str, path: str | None, load) -> str:
    if path and not Path(path).exists():
        logger.error("Health: the %s of run #%s is missing: %s", what, run.pk, path)
        raise Down(f"the {what} of run #{run.pk} is missing")
    try:
        load(run)
    except ArtifactError as exc:  # its message names no path
        raise Down(str(exc)) from None
    except Exception as exc:
        logger.error("Health: the %s of run #%s cannot be loaded", what, run.pk, exc_info=exc)
        raise Down(f"the {what} of run #{run.pk} cannot be loaded ({exc.__class__.__name__})") from None
    return f"ok (run #{run.pk})"


def _components() -> list[tuple[str, object]]:
    """(name, check) in order; a check returns its state or raises Down."""
    checks: list[tuple[str, object]] = [("database", _check_database)]
    if settings.CELERY_BROKER_URL:
        checks += [("broker", _check_broker), ("workers", _check_workers)]
    return checks


@never_cache
def healthz(request):
    if request.GET.get("quick"):
        return JsonResponse({"status": "ok", "quick": True})
    started = time.perf_counter()
    body: dict[str, object] = {"status": "ok"}
    failed = set()
    for name, check in _components():
        if name == "workers" and "broker" in failed:
            body[name] = "unknown (broker down)"
            continue
        try:
            body[name] = check()
        except Down as exc:
            body[name] = f"error: {exc}"
            failed.add(name)
    if not settings.CELERY_BROKER_URL:
        body["broker"] = body["workers"] = "not configured (tasks run in-process)"
    run = None
    if "database" not in failed:
        try:
            run = selectors.active_run()
        except Exception as exc:
            logger.error("Health: the active run cannot be read", exc_info=exc)
            body["database"] = "error: unreachable"
            failed.add("database")
    if "database" in failed:
        body["model"] = body["index"] = "unknown (database down)"
    else:
        if run is None:
            body["model"] = body["index"] = "no model yet"
        else:
            for name, what, path, load in (
                ("model", "model file", run.artifact_path, artifacts.model_load),
                ("index", "similar-song index", run.index_path, artifacts.index_load),
            ):
                if name == "index" and not run.index_path:
                    body[name] = f"not built for run #{run.pk}"
                    continue
                try:
                    body[name] = _artifact(run, what=what, path=path, load=load)
                except Down as exc:
                    body[name] = f"error: {exc}"
                    failed.add(name)
    if failed:
        body["status"] = "error"
    body["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return JsonResponse(body, status=503 if failed else 200)
