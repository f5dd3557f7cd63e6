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
