"""Clustering algorithms with validated parameters: the registry.

:data:`REGISTRY` holds one :class:`Algorithm` entry per algorithm (its name,
label, whether it needs a cluster count, the extra parameters it accepts and
how its estimator is built). The admin form, `manage.py train`, the API and
the pages all take their choices and labels from it, so adding an algorithm
is one entry here. :func:`make_estimator` is the single place where an
algorithm name and a parameter dict become a scikit-learn estimator, so
every bad value fails early with a ValueError that names the parameter.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from sklearn.cluster import DBSCAN, HDBSCAN, KMeans, MiniBatchKMeans
from sklearn.mixture import GaussianMixture

# Chosen by measurement on this 2-core machine (scripts/kmeans_vs_minibatch.py,
# k=8, n_init=3, 10 features; docs/PERFORMANCE.md "KMeans or MiniBatchKMeans"):
# full KMeans fitted 1M rows in 2.5 s against MiniBatchKMeans' 5.5 s, 3M in
# 7.0 s against 57.8 s, each with lower inertia, and the peak memory was the
# same (the matrix dominates both). MiniBatch saved neither time nor memory
# at any size measured, so "kmeans" stays full KMeans at every catalog size;
# "minibatch" is there for whoever asks for it.
DEFAULT_MINIBATCH_THRESHOLD = 2**62  # rows: never reached

# Three k-means++ restarts: 1-3 % lower inertia than one on realistic
# catalogs for ~3x the time (about 2.5 s on 1M rows). The offline
# equivalent is KMeans(n_clusters=k, n_init=KMEANS_N_INIT, random_state=rs).
KMEANS_N_INIT = 3
MINIBATCH_BATCH_SIZE = 4096
HDBSCAN_MIN_SAMPLES = 5


class BuiltEstimator(NamedTuple):
    """What :func:`make_estimator` chose."""

    estimator: Any
    algorithm: str  # the algorithm actually used ("kmeans" may become "minibatch")
    params: dict[str, Any]  # effective parameters, JSON-serialisable, for the run record


def _int(name: str, value, *, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def _float(name: str, value, *, minimum: float = 0.0, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite, got {value}")
    if (strict and value <= minimum) or (not strict and value < minimum):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum}, got {value}")
    return value


def _choice(name: str, value, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(options)}; got {value!r}")
    return value


def _bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


# Validator per accepted parameter; anything else is rejected by name.
_COMMON_KMEANS = {
    "n_init": lambda v: _int("n_init", v, minimum=1),
    "max_iter": lambda v: _int("max_iter", v, minimum=1),
    "tol": lambda v: _float("tol", v),
}


def default_min_samples(n_features: int | None) -> int:
    """Density rule of thumb: twice the dimensionality (20 for ten features)."""
    return max(4, 2 * n_features) if n_features else 10


def default_min_cluster_size(n_samples: int) -> int:
    """HDBSCAN: a cluster must hold ~1 % of the songs it is fitted on (>= 10)."""
    return max(10, n_samples // 100)


def check_algorithm(algorithm: str) -> str:
    """Raise ValueError unless ``algorithm`` is one of :data:`ALGORITHMS`."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
    return algorithm


def check_k(k, *, n_samples: int, name: str = "k") -> int:
    """Validate a cluster count: an integer with 2 <= k <= n_samples."""
    k = _int(name, k, minimum=2)
    if k > n_samples:
        raise ValueError(f"{name}={k} exceeds the number of songs ({n_samples})")
    return k


def check_params(algorithm: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """Validate ``params`` for ``algorithm``; return a cleaned copy."""
    check_algorithm(algorithm)
    allowed = REGISTRY[algorithm].params
    params = dict(params or {})
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) for {algorithm}: {', '.join(unknown)}; accepted: {', '.join(sorted(allowed))}"
        )
    return {name: allowed[name](value) for name, value in params.items()}


def make_estimator(
    algorithm: str,
    *,
    n_samples: int,
    k: int | None = None,
    random_state: int | None = 0,
    n_features: int | None = None,
    minibatch_threshold: int = DEFAULT_MINIBATCH_THRESHOLD,
    **params,
) -> BuiltEstimator:
    """Build a validated, unfitted estimator for ``n_samples`` rows.

    ``k`` is required for kmeans / minibatch / gmm and refused for the
    density methods. "kmeans" becomes MiniBatchKMeans when ``n_samples``
    exceeds ``minibatch_threshold``; the returned ``algorithm`` says which.
    DBSCAN needs ``eps`` (see :func:`clustering.ml.selection.choose_eps`);
    its ``min_samples`` defaults to ``2 * n_features``. HDBSCAN defaults to
    ``min_cluster_size`` = 1 % of the rows (>= 10) and ``min_samples=5``.
    """
    check_algorithm(algorithm)
    n_samples = _int("n_samples", n_samples, minimum=1)
    minibatch_threshold = _int("minibatch_threshold", minibatch_threshold, minimum=1)
    if random_state is not None and not isinstance(random_state, numbers.Integral):
        raise ValueError(f"random_state must be an integer or None, got {random_state!r}")

    chosen = algorithm
    if algorithm == "kmeans" and n_samples > minibatch_threshold:
        chosen = "minibatch"
    p = check_params(algorithm, params)

    if algorithm in K_ALGORITHMS:
        if k is None:
            raise ValueError(f"k is required for {algorithm}")
        k = check_k(k, n_samples=n_samples)
    elif k is not None:
        raise ValueError(f"k does not apply to {algorithm}; it finds the number of clusters itself")

    eff = REGISTRY[chosen].build(k=k, params=p, n_samples=n_samples, n_features=n_features)
    estimator = REGISTRY[chosen].estimator(random_state=random_state, **eff)
    return BuiltEstimator(estimator, chosen, eff)


# --- the registry ------------------------------------------------------------------------


def _kmeans(*, k, params, **_):
    return {"n_clusters": k, "n_init": KMEANS_N_INIT, "max_iter": 300, "tol": 1e-4, **params}


def _minibatch(*, k, params, **_):
    return {"n_clusters": k, "n_init": KMEANS_N_INIT, "batch_size": MINIBATCH_BATCH_SIZE, **params}


def _gmm(*, k, params, **_):
    return {"n_components": k, "covariance_type": "full", **params}


def _dbscan(*, params, n_samples, n_features, **_):
    if "eps" not in params:
        raise ValueError("eps is required for dbscan (choose_eps() picks one from the k-distance curve)")
    eff = {"eps": params["eps"], "min_samples": params.get("min_samples", default_min_samples(n_features))}
    if eff["min_samples"] > n_samples:
        raise ValueError(f"min_samples={eff['min_samples']} exceeds the number of songs ({n_samples})")
    return eff


def _hdbscan(*, params, n_samples, **_):
    # Small min_samples: on continuous song features a larger one turns
    # nearly everything into noise (measured on the real playlist data).
    eff = {"min_cluster_size": default_min_cluster_size(n_samples), "min_samples": HDBSCAN_MIN_SAMPLES, **params}
    for name in ("min_cluster_size", "min_samples"):
        if eff[name] > n_samples:
            raise ValueError(f"{name}={eff[name]} exceeds the number of songs ({n_samples})")
    return eff


@dataclass(frozen=True)
class Algorithm:
    """One entry of the registry."""

    name: str
    label: str  # how pages name it
    uses_k: bool  # needs a cluster count (k, or "auto" to scan for one)
    params: dict[str, Callable[[Any], Any]]  # validator per accepted extra parameter
    # Effective parameters from k, the validated extra params, n_samples and n_features.
    build: Callable[..., dict[str, Any]]
    # The scikit-learn estimator, called with random_state= and the effective parameters.
    estimator: Callable[..., Any]
    # Rows the final fit sees at most (None: all); the rest are labelled by predict.
    fit_sample: int | None = None
    # Rows each fit of the k scan sees at most (k-based algorithms).
    scan_fit_sample: int = 100_000


_PARAMS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "kmeans": dict(_COMMON_KMEANS),
    "minibatch": {
        **_COMMON_KMEANS,
        "batch_size": lambda v: _int("batch_size", v, minimum=1),
        "max_no_improvement": lambda v: None if v is None else _int("max_no_improvement", v, minimum=1),
        "reassignment_ratio": lambda v: _float("reassignment_ratio", v),
    },
    "gmm": {
        "covariance_type": lambda v: _choice("covariance_type", v, ("full", "tied", "diag", "spherical")),
        "n_init": lambda v: _int("n_init", v, minimum=1),
        "max_iter": lambda v: _int("max_iter", v, minimum=1),
        "tol": lambda v: _float("tol", v),
        "reg_covar": lambda v: _float("reg_covar", v),
        "init_params": lambda v: _choice("init_params", v, ("kmeans", "k-means++", "random", "random_from_data")),
    },
    "dbscan": {
        "eps": lambda v: _float("eps", v, strict=True),
        "min_samples": lambda v: _int("min_samples", v, minimum=1),
    },
    "hdbscan": {
        "min_cluster_size": lambda v: _int("min_cluster_size", v, minimum=2),
        "min_samples": lambda v: _int("min_samples", v, minimum=1),
        "cluster_selection_epsilon": lambda v: _float("cluster_selection_epsilon", v),
        "cluster_selection_method": lambda v: _choice("cluster_selection_method", v, ("eom", "leaf")),
        "allow_single_cluster": lambda v: _bool("allow_single_cluster", v),
    },
}


REGISTRY: dict[str, Algorithm] = {
    a.name: a
    for a in (
        Algorithm("kmeans", "K-Means", True, _PARAMS["kmeans"], _kmeans, KMeans),
        Algorithm("minibatch", "Mini-batch K-Means", True, _PARAMS["minibatch"], _minibatch, MiniBatchKMeans),
        # Density methods cost O(n²) memory or time: fit on a sample, label the rest.
        Algorithm(
            "dbscan",
            "DBSCAN",
            False,
            _PARAMS["dbscan"],
            _dbscan,
            lambda random_state, **eff: DBSCAN(n_jobs=-1, **eff),
            fit_sample=20_000,
        ),
        Algorithm(
            "hdbscan",
            "HDBSCAN",
            False,
            _PARAMS["hdbscan"],
            _hdbscan,
            lambda random_state, **eff: HDBSCAN(copy=True, n_jobs=-1, **eff),
            fit_sample=20_000,
        ),
        Algorithm(
            "gmm",
            "Gaussian mixture",
            True,
            _PARAMS["gmm"],
            _gmm,
            GaussianMixture,
            fit_sample=50_000,
            scan_fit_sample=30_000,
        ),
    )
}
ALGORITHMS: tuple[str, ...] = tuple(REGISTRY)
K_ALGORITHMS: tuple[str, ...] = tuple(name for name, a in REGISTRY.items() if a.uses_k)
DENSITY_ALGORITHMS: tuple[str, ...] = tuple(name for name, a in REGISTRY.items() if not a.uses_k)
ALGORITHM_LABELS: dict[str, str] = {name: a.label for name, a in REGISTRY.items()}
