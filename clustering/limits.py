"""How many expensive requests run at once on one host.

A sync worker serving a nearest-song prediction of 1,000 vectors is busy
for a second or more; six clients sending them would keep every worker busy
and every other visitor waiting, however low their rate. So such requests
take a slot first: a non-blocking file lock (``fcntl.flock``) on one of
``API_EXPENSIVE_CONCURRENCY`` files in ``EXPENSIVE_SLOT_DIR``, shared by
every web process of the host and released when the request ends or its
process dies. No free slot: the request is refused at once (429), before
its body is read.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings


@contextmanager
def expensive_slot(name: str) -> Iterator[bool]:
    """``with expensive_slot("predict-nearest") as got:`` — ``got`` is False
    when every slot is taken (nothing to wait for: refuse the request)."""
    slots = settings.API_EXPENSIVE_CONCURRENCY
    if slots <= 0:  # no limit
        yield True
        return
    directory = Path(settings.EXPENSIVE_SLOT_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(slots):
        fd = os.open(directory / f"{name}-{i}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return
    yield False
