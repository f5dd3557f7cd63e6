"""Stable cluster identity across retrains."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

# Recommended cut-off, in scaled (standard-score) units of the clustering
# features: Euclidean distance over all selected dimensions. Measured with
# k = 4, 8, 12 on the real 1,686-song playlist file and a 200k synthetic
# catalog, refitting with another seed on 95 % of the songs: clusters that
# are found again move 0.02-0.6 units (rarely up to ~1.0), clusters that
# really changed (split / merged) move 1.1-5 units, and distinct centroids
# of one run sit >= 1.8 units apart. 1.0, about half the smallest
# centroid spacing, keeps the re-found ones and calls the rest new.
DEFAULT_MAX_MATCH_DISTANCE = 1.0


def match_clusters(old_centroids, new_centroids, *, max_distance: float = DEFAULT_MAX_MATCH_DISTANCE) -> dict[int, int]:
    """Pair new clusters with old ones: ``{new_index: old_index}``.

    Minimises the total Euclidean distance between paired centroids
    (Hungarian algorithm), then drops pairs farther apart than
    ``max_distance``. Unpaired new clusters are new identities; unpaired
    old ones have disappeared. Both centroid sets must be in the *same*
    scaled space (see :func:`clustering.ml.model.match_models` for two
    runs with different scalers).
    """
    old = np.asarray(old_centroids, dtype=np.float64)
    new = np.asarray(new_centroids, dtype=np.float64)
    if old.ndim != 2 or new.ndim != 2:
        raise ValueError("centroids must be 2-D arrays (n_clusters, n_features)")
    if old.shape[0] and new.shape[0] and old.shape[1] != new.shape[1]:
        raise ValueError(f"centroids have {old.shape[1]} vs {new.shape[1]} features; they are not comparable")
    if not (max_distance > 0):
        raise ValueError(f"max_distance must be > 0, got {max_distance}")
    if not old.shape[0] or not new.shape[0]:
        return {}
    dist = cdist(new, old)
    rows, cols = linear_sum_assignment(dist)
    return {int(r): int(c) for r, c in zip(rows, cols) if dist[r, c] <= max_distance}
