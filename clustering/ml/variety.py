"""Seeded variety for generated lists (the radio's ``variety`` knob).

Plain numpy. A list with variety picks ``k`` of ``n`` candidates ranked
nearest first: at variety 0 the ``k`` nearest, in order; above it, a
weighted draw without replacement in which the candidate of rank ``i``
weighs ``exp(-i / (variety * n))`` (the Gumbel-top-k trick), so higher
variety reaches further down the ranking. The draw depends only on the
seed, the variety and the ranking: the same three give the same list.
"""

from __future__ import annotations

import numpy as np

# How far down the ranking a full-variety list may reach: candidates = k * (1 + POOL_FACTOR * variety).
POOL_FACTOR = 3.0
SEED_MAX = 2**32 - 1


def pool_size(k: int, variety: float) -> int:
    """How many ranked candidates to draw ``k`` of, at ``variety``."""
    check_variety(variety)
    return int(k + round(POOL_FACTOR * variety * k))


def check_variety(variety: float) -> None:
    if not (isinstance(variety, int | float) and 0.0 <= float(variety) <= 1.0):
        raise ValueError(f"variety must be a number from 0 to 1, got {variety!r}")


def varied_pick(n: int, k: int, *, variety: float, seed: int) -> np.ndarray:
    """Positions (ascending) of ``k`` of ``n`` candidates ranked nearest
    first; all of them when ``k >= n``."""
    check_variety(variety)
    if not (isinstance(seed, int | np.integer) and 0 <= int(seed) <= SEED_MAX):
        raise ValueError(f"seed must be a whole number from 0 to {SEED_MAX}, got {seed!r}")
    n, k = int(n), int(k)
    if k >= n:
        return np.arange(max(n, 0))
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if variety == 0:
        return np.arange(k)
    rng = np.random.default_rng(int(seed))
    keys = -np.arange(n) / (float(variety) * n) + rng.gumbel(size=n)
    return np.sort(np.argpartition(-keys, k - 1)[:k])
