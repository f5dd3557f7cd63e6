"""The API's throttles: DRF's rates and semantics, with the embedded mode's
histories kept where a request costs a few system calls.

DRF keeps each client's history (the times of its recent requests) in
Django's cache and does a ``get`` then a ``set`` per throttle and request.
With the embedded default cache (a folder, ``FileBasedCache``) that was a
quarter of a similar-songs request: each ``set`` lists the folder, writes a
temporary file and renames it. Two processes that read the same history at
once also each write their own, so one of the two requests goes uncounted.

Here, when ``THROTTLE_HISTORY_DIR`` is set (the embedded default: no
``CACHE_URL``), a history is one small file per client and rate, read and
rewritten in place under an exclusive ``flock``: every request of every
process of the machine is counted, and a request costs a few system calls.
With ``CACHE_URL`` (Redis for several machines, ``locmem://`` in tests) the
histories stay in the cache, as DRF keeps them.

Signed-in clients are counted at the user rate and anonymous ones at the
anonymous rate, per IP (DRF's user throttle also counted anonymous clients by
IP, at the higher user rate: a second history per request that could never be
the one to refuse).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import random
import time
from array import array
from bisect import bisect_right
from pathlib import Path

from django.conf import settings
from rest_framework import throttling

# One take in this many also removes the folder's expired histories.
SWEEP_ONE_IN = 2_000


class FileHistories:
    """Throttle histories in ``directory``: one file per key holding the
    times of the key's counted requests (float64, oldest first). A file's
    modification time is set to when its history expires, so a sweep
    removes the stale ones without reading them."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.directory / hashlib.blake2b(key.encode(), digest_size=16).hexdigest()

    def take(self, key: str, *, now: float, num_requests: int, duration: float) -> tuple[bool, list[float]]:
        """Count a request of ``key`` at ``now`` if fewer than ``num_requests``
        were counted in the last ``duration`` seconds. Returns (allowed, the
        history before this request, newest first: DRF's order, which its
        ``wait()`` reads)."""
        path = self.path(key)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if os.fstat(fd).st_nlink == 0:
                    continue  # swept between our open and our lock: open the new file
                size = os.fstat(fd).st_size
                times = array("d")
                if size:
                    times.frombytes(os.pread(fd, size - size % 8, 0))
                kept = times[bisect_right(times, now - duration) :]
                allowed = len(kept) < num_requests
                if allowed or len(kept) != len(times):
                    fresh = kept + array("d", [now]) if allowed else kept
                    data = fresh.tobytes()
                    os.pwrite(fd, data, 0)
                    if len(data) < size:
                        os.ftruncate(fd, len(data))
                    expires = (fresh[-1] if len(fresh) else now) + duration
                    os.utime(fd, (expires, expires))
                history = kept.tolist()
                history.reverse()
                break
            finally:
                os.close(fd)  # also lets go of the lock
        if random.randrange(SWEEP_ONE_IN) == 0:
            self.sweep(now=now)
        return allowed, history

    def sweep(self, *, now: float | None = None) -> int:
        """Remove the histories that have expired; returns how many."""
        now = time.time() if now is None else now
        removed = 0
        with os.scandir(self.directory) as entries:
            for entry in entries:
                try:
                    if entry.stat().st_mtime >= now:
                        continue
                    fd = os.open(entry.path, os.O_RDWR)
                except FileNotFoundError:
                    continue
                try:
                    # Under the lock, so no take is rewriting it; a take that opened it
                    # before the unlink sees no link left once it has the lock.
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    if os.fstat(fd).st_mtime < now:
                        os.unlink(entry.path)
                        removed += 1
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.ENOENT):
                        raise
                finally:
                    os.close(fd)
        return removed


_histories: dict[str, FileHistories] = {}


def file_histories() -> FileHistories | None:
    """The folder of the histories when they are kept in files (the
    embedded default), else None (they are kept in the cache)."""
    directory = getattr(settings, "THROTTLE_HISTORY_DIR", None)
    if not directory:
        return None
    directory = str(directory)
    if directory not in _histories:
        _histories[directory] = FileHistories(directory)
    return _histories[directory]


class _HistoryThrottle(throttling.SimpleRateThrottle):
    """DRF's sliding window of requests, counted in :class:`FileHistories`
    when they are in use."""

    def allow_request(self, request, view):
        histories = file_histories()
        if histories is None:
            return super().allow_request(request, view)
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        allowed, self.history = histories.take(
            self.key, now=self.now, num_requests=self.num_requests, duration=self.duration
        )
        return self.throttle_success_counted() if allowed else self.throttle_failure()

    def throttle_success_counted(self) -> bool:
        self.history.insert(0, self.now)
        return True


class AnonRateThrottle(throttling.AnonRateThrottle, _HistoryThrottle):
    """Anonymous clients, per IP (through ``NUM_PROXIES`` trusted proxies)."""


class UserRateThrottle(throttling.UserRateThrottle, _HistoryThrottle):
    """Signed-in clients (session or token), per user; anonymous ones are the
    anonymous throttle's."""

    def get_cache_key(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return None
        return super().get_cache_key(request, view)


class ScopedRateThrottle(throttling.ScopedRateThrottle, _HistoryThrottle):
    """The expensive endpoints' own rates (``throttle_scope`` on the view),
    per user or per IP, on top of the two above."""
