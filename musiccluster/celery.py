"""The Celery app, and the sweeper every worker runs beside its tasks.

Celery beat is not needed: each worker's main process starts a thread when
it is ready that, every WORK_SWEEP_SECONDS, fails dead runs and import jobs
(no heartbeat for TRAIN_STALE_SECONDS / IMPORT_STALE_SECONDS), removes
their staging tables and files, and re-sends the task of every run or job
left queued after its message was lost (QUEUED_RESEND_SECONDS). Every step
is a conditional update, so several workers sweeping side by side is fine.
"""

import logging
import os
import threading

from celery import Celery
from celery.signals import worker_init, worker_process_init, worker_ready, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "musiccluster.settings")

app = Celery("musiccluster")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger("musiccluster.sweeper")

_sweeper_stop = threading.Event()


def sweep_once() -> dict | None:
    """One sweep; None when it could not run (a dead database: the next one retries)."""
    from django.db import connection

    from clustering.services import work_sweep

    try:
        result = work_sweep()
    except Exception:
        logger.warning("sweep failed; retrying at the next one", exc_info=True)
        return None
    finally:
        connection.close()  # never keep a connection a dead database may have broken
    if any(result.values()):
        logger.warning("sweep: %s", result)
    return result


def _sweeper_loop(interval: float) -> None:
    while not _sweeper_stop.wait(interval):
        sweep_once()


@worker_init.connect
@worker_process_init.connect
def _check_connections_before_tasks(**kwargs) -> None:
    """Workers ping a persistent connection before a task's first query
    (``CONN_HEALTH_CHECKS``, off for the web): a task is long and rare next
    to a web request, and one that met a connection a database restart broke
    would fail its run instead of reconnecting."""
    from django.conf import settings
    from django.db import connections

    for alias, db in settings.DATABASES.items():
        db["CONN_HEALTH_CHECKS"] = True
        if alias in connections:  # a connection made already reads it at its next connect
            connections[alias].health_check_enabled = True


@worker_ready.connect
def _start_sweeper(**kwargs) -> None:
    from django.conf import settings

    interval = settings.WORK_SWEEP_SECONDS
    if interval <= 0:
        return
    _sweeper_stop.clear()
    threading.Thread(target=_sweeper_loop, args=(interval,), name="work-sweeper", daemon=True).start()
    logger.info("sweeper: every %.0f s", interval)


@worker_shutdown.connect
def _stop_sweeper(**kwargs) -> None:
    _sweeper_stop.set()
