"""Model selection: scan k, choose k, choose DBSCAN's eps.

All functions take the *prepared* (scaled) matrix, i.e. the output of
:meth:`FeaturePreparer.fit_transform`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.neighbors import NearestNeighbors

from ._threads import limit_threads
from .algorithms import K_ALGORITHMS, REGISTRY, _int, check_k, make_estimator
from .features import group_sums, unique_ints

# Rows each k is fitted on during a scan when fit_sample_size is None come
# from the registry (Algorithm.scan_fit_sample).
# Measured on 2 cores, 1M rows, k = 2..12: fitting on 100k rows scans in
# ~25 s with the same choice and metrics within 1 % of fitting every row
# (~35 s); GaussianMixture costs ~10x more per row.

Progress = Callable[[str, int], Any]

# k="auto" keeps the best silhouette among k whose smallest cluster holds at
# least this share of the songs. Measured on real catalogs (docs/CLUSTERING.md):
# with k >= 5 an honest small cluster (spoken word, 1.6-1.8 % of the demo
# catalog) sits between 1 and 2 %, while crumbs stay under 0.5 %.
DEFAULT_MIN_CLUSTER_SHARE = 0.01


def _check_scaled(X, name: str = "X") -> np.ndarray:
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got {arr.ndim}-D")
    if arr.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 rows, got {arr.shape[0]}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def sample_indices(n: int, size: int | None, rng: np.random.Generator) -> np.ndarray:
    """Sorted random row indices (all rows when ``size`` is None or >= n)."""
    if size is None or size >= n:
        return np.arange(n)
    return np.sort(rng.choice(n, size=size, replace=False))


def silhouette(X, labels, *, chunk_size: int = 1024) -> float | None:
    """Mean silhouette coefficient of ``X`` (already a sample), noise (-1) excluded.

    Same definition as ``sklearn.metrics.silhouette_score`` but ~5x faster
    on 10k rows: distances are computed in row chunks and summed per
    cluster with one matrix product. None when fewer than 2 clusters.
    """
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels)
    keep = labels >= 0
    X, labels = X[keep], labels[keep]
    n = len(labels)
    uniq, inv = np.unique(labels, return_inverse=True)
    m = len(uniq)
    if m < 2 or m > n - 1:
        return None
    counts = np.bincount(inv, minlength=m).astype(np.float64)
    onehot = np.zeros((n, m))
    onehot[np.arange(n), inv] = 1.0
    sq = np.einsum("ij,ij->i", X, X)
    sums = np.empty((n, m))
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        d = euclidean_distances(X[start:stop], X, X_norm_squared=sq[start:stop, None], Y_norm_squared=sq[None, :])
        sums[start:stop] = d @ onehot
    rows = np.arange(n)
    own_count = counts[inv]
    a = sums[rows, inv] / np.maximum(own_count - 1, 1)
    mean_other = sums / counts
    mean_other[rows, inv] = np.inf
    b = mean_other.min(axis=1)
    denom = np.maximum(a, b)
    s = np.divide(b - a, denom, out=np.zeros(n), where=denom > 0)
    s[own_count == 1] = 0.0  # sklearn's convention for singleton clusters
    return float(s.mean())


def spread_scores(X, labels, *, chunk_size: int = 1 << 17) -> tuple[float, float]:
    """Davies-Bouldin and Calinski-Harabasz of ``X`` labelled ``labels`` (no noise).

    The definitions of ``sklearn.metrics.davies_bouldin_score`` and
    ``calinski_harabasz_score``, from one pass over the rows in chunks:
    each cluster's centroid (:func:`.features.group_sums`), then each row's
    distance to its centroid, summed per cluster squared (CH) and not (DB).
    scikit-learn's pair copies each cluster's rows twice; this takes ~0.1 s
    against ~0.6 s at 1M rows, and a chunk's memory at any size.
    """
    labels = np.asarray(labels)
    n = X.shape[0]
    k_all = int(labels.max()) + 1
    counts, sums = group_sums(X, labels, k_all)
    centroids = sums / np.maximum(counts, 1)[:, None]
    squared = np.zeros(k_all)
    distance = np.zeros(k_all)
    for start in range(0, n, chunk_size):
        lab = labels[start : start + chunk_size]
        diff = np.asarray(X[start : start + chunk_size], dtype=np.float64) - centroids[lab]
        sq = np.einsum("ij,ij->i", diff, diff)
        squared += np.bincount(lab, weights=sq, minlength=k_all)
        distance += np.bincount(lab, weights=np.sqrt(sq), minlength=k_all)
    present = counts > 0  # scikit-learn knows only the labels that occur
    counts, centroids, squared, distance = counts[present], centroids[present], squared[present], distance[present]
    k = len(counts)
    mean = sums[present].sum(axis=0) / n
    between = float((counts * ((centroids - mean) ** 2).sum(axis=1)).sum())
    within = float(squared.sum())
    ch = 1.0 if within == 0.0 else between * (n - k) / (within * (k - 1))
    spread = distance / counts
    apart = np.sqrt(((centroids[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=-1))
    if np.allclose(spread, 0) or np.allclose(apart, 0):
        return 0.0, float(ch)
    apart[apart == 0] = np.inf
    db = float(np.max((spread[:, None] + spread[None, :]) / apart, axis=1).mean())
    return db, float(ch)


def label_metrics(X, labels, *, silhouette_rows: np.ndarray) -> dict[str, float | None]:
    """Silhouette (on ``silhouette_rows``), Davies-Bouldin and Calinski-Harabasz, noise excluded."""
    labels = np.asarray(labels)
    out: dict[str, float | None] = {"silhouette": silhouette(X[silhouette_rows], labels[silhouette_rows])}
    clustered = labels >= 0
    n_clusters = len(unique_ints(labels[clustered]))
    if 2 <= n_clusters < clustered.sum():
        if clustered.all():
            Xc, lc = X, labels
        else:
            Xc, lc = X[clustered], labels[clustered]
        out["davies_bouldin"], out["calinski_harabasz"] = spread_scores(Xc, lc)
    else:
        out["davies_bouldin"] = out["calinski_harabasz"] = None
    return out


def scan_k(
    X,
    *,
    k_values: Iterable[int] = range(2, 13),
    algorithm: str = "kmeans",
    sample_size: int = 10_000,
    random_state: int | None = 0,
    fit_sample_size: int | None = None,
    params: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Fit ``algorithm`` for each k on the scaled matrix ``X`` and score it.

    Each k is fitted on a random subsample of ``fit_sample_size`` rows
    (None: all rows up to :attr:`Algorithm.scan_fit_sample`), then every row is
    labelled, so inertia, Davies-Bouldin, Calinski-Harabasz and the
    smallest cluster share describe the whole catalog. Silhouette is
    computed on one fixed random sample of ``sample_size`` rows, the same
    for every k so the values are comparable.

    Returns one dict per k: ``k, algorithm, inertia, silhouette,
    davies_bouldin, calinski_harabasz, min_cluster_share, seconds`` (plus
    ``bic`` for gmm; ``inertia`` is None for gmm).
    """
    if algorithm not in K_ALGORITHMS:
        raise ValueError(f"scan_k needs a k-based algorithm ({', '.join(K_ALGORITHMS)}), got {algorithm!r}")
    X = _check_scaled(X)
    n = X.shape[0]
    sample_size = _int("sample_size", sample_size, minimum=2)
    if fit_sample_size is None:
        fit_sample_size = REGISTRY[algorithm].scan_fit_sample
    fit_sample_size = _int("fit_sample_size", fit_sample_size, minimum=2)
    n_fit = min(n, fit_sample_size)
    k_values = [check_k(k, n_samples=n_fit) for k in k_values]
    if not k_values:
        raise ValueError("k_values is empty")

    rng = np.random.default_rng(random_state)
    fit_rows = sample_indices(n, n_fit, rng)
    sil_rows = sample_indices(n, sample_size, rng)
    X_fit = X if n_fit == n else X[fit_rows]

    with limit_threads(n):
        return _scan(X, X_fit, k_values, algorithm, n_fit, sil_rows, random_state, params, progress)


def _scan(X, X_fit, k_values, algorithm, n_fit, sil_rows, random_state, params, progress) -> list[dict[str, Any]]:
    n = X.shape[0]
    results: list[dict[str, Any]] = []
    for i, k in enumerate(k_values):
        t0 = time.perf_counter()
        built = make_estimator(algorithm, n_samples=n_fit, k=k, random_state=random_state, **(params or {}))
        est = built.estimator.fit(X_fit)
        labels = est.labels_ if n_fit == n and hasattr(est, "labels_") else est.predict(X)
        row: dict[str, Any] = {"k": k, "algorithm": built.algorithm}
        if built.algorithm == "gmm":
            row["inertia"] = None
            row["bic"] = float(est.bic(X_fit))
        elif n_fit == n:
            row["inertia"] = float(est.inertia_)
        else:
            row["inertia"] = float(-est.score(X))
        row.update(label_metrics(X, labels, silhouette_rows=sil_rows))
        row["min_cluster_share"] = float(np.bincount(labels, minlength=k).min() / n)
        row["seconds"] = round(time.perf_counter() - t0, 3)
        results.append(row)
        if progress is not None:
            progress("scan", int(100 * (i + 1) / len(k_values)))
    return results


def choose_k(scan: list[dict[str, Any]], *, min_cluster_share: float = DEFAULT_MIN_CLUSTER_SHARE) -> int:
    """Best k by silhouette among scan rows whose smallest cluster holds
    at least ``min_cluster_share`` of the songs.

    If no k satisfies the share (every k leaves a tiny cluster), fall back
    to the best silhouette overall rather than fail: a retrain must still
    produce a model. Ties go to the smaller k.
    """
    return int(explain_k_choice(scan, min_cluster_share=min_cluster_share)["k"])


def explain_k_choice(scan: list[dict[str, Any]], *, min_cluster_share: float = DEFAULT_MIN_CLUSTER_SHARE) -> dict:
    """Which k the rule of :func:`choose_k` keeps, and why, as data and words.

    Returns ``k``, ``silhouette``, ``min_cluster_share`` (the floor),
    ``scanned`` (the k tried), ``fallback`` (True when every k broke the
    floor), ``discarded``: the k with a *better* silhouette that the floor
    ruled out, each with its silhouette and smallest-cluster share, and
    ``text``: e.g. "k = 6 has the best silhouette (0.152) among k = 5-12
    whose smallest cluster holds at least 1 % of the songs; k = 9 scored
    higher (0.160) but its smallest cluster held 0.4 % of the songs."
    """
    if not scan:
        raise ValueError("scan is empty")
    scored = [r for r in scan if r.get("silhouette") is not None]
    if not scored:
        raise ValueError("no k in the scan has a silhouette score")
    eligible = [r for r in scored if r["min_cluster_share"] >= min_cluster_share]
    best = max(eligible or scored, key=lambda r: (r["silhouette"], -r["k"]))
    discarded = [
        {"k": int(r["k"]), "silhouette": float(r["silhouette"]), "min_cluster_share": float(r["min_cluster_share"])}
        for r in sorted(scored, key=lambda r: (-r["silhouette"], r["k"]))
        if r["silhouette"] > best["silhouette"] and r["min_cluster_share"] < min_cluster_share
    ]
    ks = sorted(int(r["k"]) for r in scan)
    span = f"k = {ks[0]}–{ks[-1]}" if len(ks) > 1 else f"k = {ks[0]}"
    floor = f"{100 * min_cluster_share:g} %"
    if eligible:
        text = (
            f"k = {best['k']} has the best silhouette ({best['silhouette']:.3f}) among {span} "
            f"whose smallest cluster holds at least {floor} of the songs"
        )
    else:
        text = (
            f"every k of {span} left a cluster under {floor} of the songs, so k = {best['k']} "
            f"was kept for the best silhouette overall ({best['silhouette']:.3f})"
        )
    if discarded:
        parts = [
            f"k = {d['k']} scored higher ({d['silhouette']:.3f}) but its smallest cluster held "
            f"{100 * d['min_cluster_share']:.1f} % of the songs"
            for d in discarded[:3]
        ]
        text += "; " + "; ".join(parts)
    return {
        "k": int(best["k"]),
        "silhouette": float(best["silhouette"]),
        "min_cluster_share": float(min_cluster_share),
        "scanned": ks,
        "fallback": not eligible,
        "discarded": discarded,
        "text": (text if text.startswith("k ") else text[0].upper() + text[1:]) + ".",
    }


def k_distances(X, *, min_samples: int, sample_size: int | None = 10_000, random_state: int | None = 0) -> np.ndarray:
    """Sorted distance of sampled rows to their ``min_samples``-th neighbour in ``X``.

    The row itself counts as the first neighbour, as in DBSCAN's
    ``min_samples``; neighbours are searched in all of ``X`` (only the
    query rows are sampled) so the density matches the set DBSCAN runs on.
    """
    X = _check_scaled(X)
    min_samples = _int("min_samples", min_samples, minimum=1, maximum=X.shape[0])
    rows = sample_indices(X.shape[0], sample_size, np.random.default_rng(random_state))
    with limit_threads(X.shape[0]):
        nn = NearestNeighbors(n_neighbors=min_samples, n_jobs=-1).fit(X)
        dist, _ = nn.kneighbors(X[rows])
    return np.sort(dist[:, -1])


def choose_eps(
    X,
    *,
    min_samples: int,
    sample_size: int | None = 10_000,
    random_state: int | None = 0,
    method: str = "knee",
    quantile: float = 0.9,
) -> float:
    """Pick DBSCAN's ``eps`` for the scaled matrix ``X`` from the k-distance curve.

    ``method="knee"``: the point of the sorted k-distance curve farthest
    from the chord between its ends (both axes scaled to [0, 1]), the
    classic elbow where distances start to climb fast. The top 1 % of
    distances is ignored first so a few far outliers cannot stretch the
    chord and push the knee to the tail.
    ``method="quantile"``: the ``quantile`` of the k-distances, i.e. about
    that share of the sampled songs become core samples.
    """
    if method not in ("knee", "quantile"):
        raise ValueError(f"method must be 'knee' or 'quantile', got {method!r}")
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be between 0 and 1, got {quantile}")
    d = k_distances(X, min_samples=min_samples, sample_size=sample_size, random_state=random_state)
    if method == "quantile":
        eps = float(np.quantile(d, quantile))
    else:
        d_trim = d[: max(2, int(np.ceil(0.99 * len(d))))]
        span = d_trim[-1] - d_trim[0]
        if span <= 0:
            eps = float(d_trim[-1])
        else:
            x = np.linspace(0.0, 1.0, len(d_trim))
            y = (d_trim - d_trim[0]) / span
            eps = float(d_trim[np.argmax(x - y)])  # convex curve: below the chord y = x
    if eps <= 0:
        positive = d[d > 0]
        if not len(positive):
            raise ValueError("all sampled songs have identical neighbours; eps cannot be chosen")
        eps = float(positive[0])
    return eps
