"""Background work that the catalog and the engine share: the broker check
before a task is queued, and the heartbeat of a long step.

- :func:`broker_check` is asked before a run or an import job is stored: with
  the broker down the front doors answer at once (503, CommandError) instead
  of storing a row whose task cannot be sent.
- :class:`Heartbeat` keeps ``heartbeat_at`` of a running row fresh every
  ``HEARTBEAT_SECONDS`` from a thread with its own connection, so a step that
  reports no progress for minutes (a fit, a merge) is not taken for dead,
  and a dead worker is noticed within the stale limit.
- :func:`broker_waiting` lists the messages of given tasks that wait in the
  broker's queue, not yet taken by any worker: work that is alive although
  no process beats for it yet (a run's labelling chunks queued behind
  other tasks).
- :func:`session_advisory_lock` holds a Postgres advisory lock for a block
  that spans transactions (a bulk load, a drop of labels, an activation).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
from collections.abc import Iterator

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections

logger = logging.getLogger(__name__)

BROKER_DOWN = "The task queue (broker) is unavailable; nothing was queued. Try again in a little while."


@contextlib.contextmanager
def session_advisory_lock(lock_id: int, *, what: str) -> Iterator[None]:
    """Hold Postgres advisory lock ``lock_id`` on this session for the block
    (re-entrant; transactions inside it commit freely). It is released
    however the block ends; a release that fails (the connection was lost,
    and the lock with it) is logged as ``what``, never raised over the
    block's own outcome."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [lock_id])
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [lock_id])
        except Exception:
            logger.exception("could not release the %s", what)


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
            # One quick retry (a blip), not kombu's default 2 s pause: callers answer at once.
            conn.ensure_connection(max_retries=1, interval_start=0.25, interval_step=0, timeout=timeout)
    except Exception as exc:
        logger.error("broker unreachable", exc_info=exc)
        raise BrokerUnavailable() from None


# kombu's Redis transport keeps one list per priority step: "<queue>", "<queue>\x06\x163", ...
_REDIS_PRIORITY_SEP = "\x06\x16"
_REDIS_PRIORITY_STEPS = (0, 3, 6, 9)
# Past this many waiting messages the queue is not read through: work waits.
BROKER_WAITING_SCAN_LIMIT = 10_000


def broker_waiting(task_names: set[str] | frozenset[str], *, queue: str | None = None) -> list[tuple[str, list]] | None:
    """(task name, positional args) of every message of ``task_names`` that
    waits in ``queue`` (default: the default queue), oldest first.

    None when that cannot be told: tasks run in-process, the broker is not
    Redis, or the queue holds more than BROKER_WAITING_SCAN_LIMIT messages.
    Raises :class:`BrokerUnavailable` when the broker does not answer.
    Messages a worker has taken (running, or held by a worker that died) are
    not waiting: their heartbeat, or its absence, tells about them.
    """
    url = settings.CELERY_BROKER_URL
    if settings.CELERY_TASK_ALWAYS_EAGER or not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    import redis

    queue = queue or settings.CELERY_TASK_DEFAULT_QUEUE
    keys = [queue if step == 0 else f"{queue}{_REDIS_PRIORITY_SEP}{step}" for step in _REDIS_PRIORITY_STEPS]
    timeout = settings.BROKER_CHECK_TIMEOUT
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout + 1)
        try:
            if sum(client.llen(key) for key in keys) > BROKER_WAITING_SCAN_LIMIT:
                return None
            raw = [item for key in keys for item in reversed(client.lrange(key, 0, -1))]
        finally:
            client.close()
    except redis.RedisError as exc:
        logger.warning("broker unreachable while reading its queue", exc_info=exc)
        raise BrokerUnavailable() from None
    found = []
    for item in raw:
        try:
            message = json.loads(item)
            name = message["headers"]["task"]
            if name not in task_names:
                continue
            body = message["body"]
            if message.get("properties", {}).get("body_encoding") == "base64":
                body = base64.b64decode(body)
            args = json.loads(body)[0]
        except (ValueError, KeyError, TypeError, IndexError):
            continue  # not a message of ours (another protocol, another serializer)
        found.append((name, list(args)))
    return found


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
