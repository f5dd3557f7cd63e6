"""Thread limits for small inputs.

scikit-learn's k-means, pairwise distances and BLAS run one thread per
core. On small inputs that buys nothing, and on a busy 2-core box
(Postgres, gunicorn and a Celery worker share it) OpenMP threads waiting
for a descheduled sibling made small fits 5-20x slower (this package's
test suite: 3.6 s single-threaded vs 16-23 s with a second process busy).
Large inputs keep every core.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import faiss
import numpy as np
from threadpoolctl import ThreadpoolController

SMALL_INPUT_ROWS = 50_000

_controller: ThreadpoolController | None = None


def limit_threads(X_or_rows) -> AbstractContextManager:
    """One BLAS / OpenMP thread while working on fewer than SMALL_INPUT_ROWS rows.

    Takes a row count or the input itself (bad input is left to validation).
    """
    global _controller
    if isinstance(X_or_rows, int):
        n_rows = X_or_rows
    else:
        shape = np.shape(X_or_rows)
        n_rows = shape[0] if shape else 0
    if n_rows >= SMALL_INPUT_ROWS:
        return nullcontext()
    if _controller is None:  # introspection costs ~3 ms: do it once per process
        _controller = ThreadpoolController()
    return _controller.limit(limits=1)


def one_search_thread() -> None:
    """One OpenMP thread for faiss in the calling thread (the request path).

    OpenMP's thread count is a per-thread setting (libgomp), so a web
    process's main thread and each of gthread's request threads set it for
    themselves; checking first costs ~0.3 µs. Index builds set their own
    count (every core) in their own thread.
    """
    if faiss.omp_get_max_threads() != 1:
        faiss.omp_set_num_threads(1)


def serving_threads(*, blas: bool) -> None:
    """A web process: faiss's OpenMP at one thread in this thread and, with
    ``blas``, the BLAS libraries' pools at one thread for the whole process
    (not when the process also trains: the embedded mode's eager tasks want
    every core for large fits; its searches are limited call by call).

    Single queries gain nothing from a second thread, and on a 2-core box
    shared with Postgres and workers a second thread waiting for a
    descheduled sibling made the index's p99 15 ms instead of 2.4 ms."""
    global _controller
    one_search_thread()
    if not blas:
        return
    if _controller is None:
        _controller = ThreadpoolController()
    _controller.limit(limits=1, user_api="blas")
