"""Background work that the catalog and the engine share: the broker check
before a task is queued, and the heartbeat of a long step.

- :func:`broker_check` is asked before a run or an import job is stored: with
  the broker down the front doors answer at once (503, CommandError) instead
  of storing a row whose task cannot be sent.
- :class:`Heartbeat` keeps ``heartbeat_at`` of a running row fresh every
  ``HEARTBEAT_SECONDS`` from a thread with its own connection, so a step that
  reports no progress for minutes (a fit, a merge) is not taken for dead,
  and a dead worker is noticed within the stale limit.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections

logger = logging.getLogger(__name__)

BROKER_DOWN = "The task queue (broker) is unavailable; nothing was queued. Try again in a little while."


class BrokerUnavailable(Exception):
    """The broker cannot be reached; the message is safe to show."""

    def __init__(self, message: str = BROKER_DOWN):
        super().__init__(message)


def broker_check() -> None:
    """Raise :class:`BrokerUnavailable` unless the broker answers within
    ``BROKER_CHECK_TIMEOUT`` seconds. Tasks that run in-process need none."""
    if settings.CELERY_TASK_ALWAYS_EAGER or not settings.CELERY_BROKER_URL:
        return
    from kombu import Connection

    timeout = settings.BROKER_CHECK_TIMEOUT
    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:
        logger.error("broker unreachable", exc_info=exc)
        raise BrokerUnavailable() from None


class Heartbeat:
    """``with Heartbeat(table, row_id):`` refreshes the row's ``heartbeat_at``
    while it is ``running``, from a thread with a connection of its own.

    Only on Postgres outside a transaction: there another connection sees the
    row and writing beside this one is safe; the update skips a row locked by
    someone else rather than wait for it.
    """

    def __init__(self, table: str, row_id: int, *, interval: float | None = None):
        self.table, self.row_id = table, int(row_id)
        self.interval = settings.HEARTBEAT_SECONDS if interval is None else interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        side = None
        try:
            while not self._stop.wait(self.interval):
                try:
                    if side is None:
                        side = connections.create_connection(DEFAULT_DB_ALIAS)
                    with side.cursor() as cursor:
                        cursor.execute(
                            f"UPDATE {self.table} SET heartbeat_at = now() WHERE id = "
                            f"(SELECT id FROM {self.table} WHERE id = %s AND status = 'running' "
                            "FOR UPDATE SKIP LOCKED)",
                            [self.row_id],
                        )
                except Exception:  # a dead database: the heartbeat stops, the sweeper decides
                    logger.warning("heartbeat of %s #%s failed", self.table, self.row_id, exc_info=True)
                    if side is not None:
                        side.close()
                        side = None
        finally:
            if side is not None:
                side.close()

    def __enter__(self) -> Heartbeat:
        if connection.vendor == "postgresql" and not connection.in_atomic_block and self.interval > 0:
            self._thread = threading.Thread(
                target=self._beat, name=f"heartbeat-{self.table}-{self.row_id}", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
