"""Full KMeans against MiniBatchKMeans as the training registry builds them
(k=8, n_init=3), on a synthetic matrix of the catalog's shape: N rows of the
ten standardised features, drawn around 20 centres of uneven sizes. One fit
per process, so each peak RSS is its own.

    .venv/bin/python scripts/kmeans_vs_minibatch.py N kmeans|minibatch

Prints one JSON line: fit seconds, peak RSS (MB), the RSS before the fit,
inertia and iterations. docs/PERFORMANCE.md ("KMeans or MiniBatchKMeans")
records the figures behind clustering.ml.algorithms.DEFAULT_MINIBATCH_THRESHOLD.
"""

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clustering.ml.algorithms import make_estimator


def main() -> None:
    n, algorithm = int(sys.argv[1]), sys.argv[2]
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1.5, (20, 10))
    which = rng.choice(20, size=n, p=rng.dirichlet(np.ones(20)))
    X = centres[which] + rng.normal(0, 1.0, (n, 10))
    X = (X - X.mean(0)) / X.std(0)
    # The threshold out of the way: this compares the two algorithms themselves.
    estimator = make_estimator(algorithm, n_samples=n, k=8, random_state=0, minibatch_threshold=2**62).estimator
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    estimator.fit(X)
    seconds = time.perf_counter() - started
    inertia = float(((X - estimator.cluster_centers_[estimator.predict(X)]) ** 2).sum())
    print(
        json.dumps(
            {
                "n": n,
                "algorithm": algorithm,
                "fit_seconds": round(seconds, 2),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "rss_before_fit_mb": round(before),
                "inertia": round(inertia),
                "n_iter": int(estimator.n_iter_),
            }
        )
    )


if __name__ == "__main__":
    main()
