"""The fitted clustering bundle: scaler + estimator + 2-D map + names."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sklearn
from sklearn.base import BaseEstimator
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.metrics import pairwise_distances_argmin_min
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.neighbors import NearestNeighbors

from ._threads import limit_threads
from .algorithms import (
    DEFAULT_MINIBATCH_THRESHOLD,
    DENSITY_ALGORITHMS,
    K_ALGORITHMS,
    REGISTRY,
    _int,
    check_algorithm,
    check_k,
    check_params,
    default_min_samples,
    make_estimator,
)
from .features import FEATURES, FeaturePreparer, group_sums
from .identity import DEFAULT_MAX_MATCH_DISTANCE, match_clusters
from .naming import name_clusters
from .profiles import NOISE_LABEL, cluster_profiles, describe_cluster
from .selection import DEFAULT_MIN_CLUSTER_SHARE, choose_eps, explain_k_choice, label_metrics, sample_indices, scan_k

# Rows the estimator is fitted on when fit_sample_size is None come from the
# registry (Algorithm.fit_sample); the other rows are then labelled by
# predict. Measured on 2 cores: full k-means on 1M rows ~2.5 s, so it sees
# everything; GaussianMixture ~7 s on 50k rows; DBSCAN and HDBSCAN ~3-5 s on
# 20k rows and grow super-linearly (DBSCAN's neighbourhoods at 50k rows
# already take ~1 GB).

# Per-row training outputs: kept after fit for the caller, never pickled.
PER_ROW_ATTRIBUTES = ("labels_", "embedding_")

Progress = Callable[[str, int], Any]


class ClusterModel(BaseEstimator):
    """Feature preparation, clustering, 2-D map, profiles and names in one picklable object.

    Parameters
    ----------
    algorithm : "kmeans" | "minibatch" | "dbscan" | "hdbscan" | "gmm"
    k : int or "auto"
        Cluster count for kmeans / minibatch / gmm; "auto" scans
        ``scan_k_values`` and keeps the best silhouette whose smallest
        cluster holds >= ``min_cluster_share``. Ignored by density methods.
    scaler, features, feature_names : see :class:`FeaturePreparer`.
    random_state : seeds every random choice (samples, k-means init).
    scan_sample_size : rows used for silhouette (scan and final metrics)
        and for DBSCAN's eps choice.
    scan_k_values : k values tried when ``k="auto"``.
    min_cluster_share : see :func:`choose_k` (1 % by default).
    algorithm_params : extra estimator parameters, validated by
        :func:`make_estimator` (e.g. ``{"eps": 0.8, "min_samples": 15}``).
    minibatch_threshold : "kmeans" switches to MiniBatchKMeans above this
        many rows (by default never: full KMeans measured faster at every size).
    fit_sample_size : rows the estimator is fitted on (None: all rows for
        k-means, :attr:`Algorithm.fit_sample` of the registry otherwise); the rest are labelled with
        :meth:`predict`.
    scan_fit_sample_size : rows each k is fitted on during the scan
        (None: :attr:`Algorithm.scan_fit_sample` of the registry).
    n_representatives : representative songs kept per cluster profile.
    feature_labels : what a listener calls each feature in the clusters'
        descriptions ({"duration_ms": "length"}); the name when missing.

    With kmeans and a fixed ``random_state``, ``labels_`` equal the offline
    pipeline ``StandardScaler()`` then ``KMeans(n_clusters=k, n_init=3,
    random_state=random_state)`` on the same rows.

    Attributes after fit
    --------------------
    preparer_ : fitted :class:`FeaturePreparer`; ``features_`` its feature names.
    algorithm_ : algorithm actually used ("kmeans" may become "minibatch").
    params_ : effective estimator parameters (eps included when chosen).
    k_ : cluster count asked of k-based algorithms (None for density ones).
    k_scan_ : scan rows when ``k="auto"``, else None.
    k_choice_ : why ``k="auto"`` kept its k (:func:`explain_k_choice`), else None.
    n_clusters_ : clusters found (noise excluded).
    estimator_ : the fitted scikit-learn estimator for kmeans / minibatch /
        gmm (per-row attributes stripped); None for density methods.
    centroids_ : (n_clusters_, n_features) in scaled space; row i is label i.
        For DBSCAN / HDBSCAN: the mean of each cluster's members.
    centroids_real_ : the same in real units (member means).
    core_samples_, core_labels_, core_reach_ : density methods only, see
        :meth:`predict` (``reach_factor_`` for HDBSCAN).
    map_ : fitted PCA for the 2-D map; ``map_explained_variance_`` its ratios.
    metrics_ : silhouette (on a sample), davies_bouldin, calinski_harabasz,
        inertia (k-means), bic (gmm), noise_share, n_clusters, n_songs.
    profiles_, names_, descriptions_ : per label (noise -1 included if any).
    timings_ : seconds per stage and "total".
    sklearn_version_ : scikit-learn version used for fitting.
    labels_, embedding_ : per training row (label; 2-D map coordinates).
        Not pickled: take them with :meth:`pop_training_outputs` or read
        them before saving; the artifact then stays small.
    """

    def __init__(
        self,
        algorithm: str = "kmeans",
        k: int | str = 8,
        scaler: str = "standard",
        features: Sequence[str] | None = None,
        feature_names: Sequence[str] = FEATURES,
        random_state: int | None = 0,
        scan_sample_size: int = 10_000,
        scan_k_values: Sequence[int] = tuple(range(5, 13)),
        min_cluster_share: float = DEFAULT_MIN_CLUSTER_SHARE,
        algorithm_params: dict[str, Any] | None = None,
        minibatch_threshold: int = DEFAULT_MINIBATCH_THRESHOLD,
        fit_sample_size: int | None = None,
        scan_fit_sample_size: int | None = None,
        n_representatives: int = 10,
        feature_labels: dict[str, str] | None = None,
    ):
        self.algorithm = algorithm
        self.k = k
        self.scaler = scaler
        self.features = features
        self.feature_names = feature_names
        self.random_state = random_state
        self.scan_sample_size = scan_sample_size
        self.scan_k_values = scan_k_values
        self.min_cluster_share = min_cluster_share
        self.algorithm_params = algorithm_params
        self.minibatch_threshold = minibatch_threshold
        self.fit_sample_size = fit_sample_size
        self.scan_fit_sample_size = scan_fit_sample_size
        self.n_representatives = n_representatives
        self.feature_labels = feature_labels

    # ------------------------------------------------------------------ fit
    def _validate(self) -> None:
        algo = check_algorithm(self.algorithm)
        if algo in K_ALGORITHMS and self.k != "auto":
            _int("k", self.k, minimum=2)
        if algo in K_ALGORITHMS and self.k == "auto" and not list(self.scan_k_values):
            raise ValueError("scan_k_values is empty")
        if self.algorithm_params is not None and not isinstance(self.algorithm_params, dict):
            raise ValueError(f"algorithm_params must be a dict, got {type(self.algorithm_params).__name__}")
        check_params(algo, self.algorithm_params)
        if not 0 <= self.min_cluster_share < 1:
            raise ValueError(f"min_cluster_share must be in [0, 1), got {self.min_cluster_share}")
        _int("scan_sample_size", self.scan_sample_size, minimum=2)
        _int("n_representatives", self.n_representatives, minimum=0)
        for name in ("fit_sample_size", "scan_fit_sample_size"):
            if getattr(self, name) is not None:
                _int(name, getattr(self, name), minimum=2)

    def fit(self, X, y=None, *, progress: Progress | None = None, genres=None) -> ClusterModel:
        """Fit on the full (n, 10) feature matrix in real units.

        ``progress(stage, percent)`` is called as stages complete
        (prepare, scan, fit, label, map, metrics, profile, done).
        ``genres`` = (rows, names), song ``rows[i]`` of ``X`` carrying genre
        ``names[i]`` (or (rows, codes, distinct names), see
        :func:`cluster_profiles`): the profiles then list each cluster's top
        genres and a distinctive one joins its name.
        """
        with limit_threads(X):
            return self._fit(X, progress, genres)

    def _fit(self, X, progress: Progress | None, genres=None) -> ClusterModel:
        self._validate()
        report = progress or (lambda stage, percent: None)
        timings: dict[str, float] = {}
        t_start = t = time.perf_counter()

        def lap(stage: str, percent: int) -> None:
            nonlocal t
            now = time.perf_counter()
            timings[stage] = round(timings.get(stage, 0.0) + now - t, 3)
            t = now
            report(stage, percent)

        report("prepare", 0)
        algo = self.algorithm
        self.preparer_ = FeaturePreparer(self.scaler, self.features, self.feature_names, self.random_state)
        Z = self.preparer_.fit_transform(X)
        X_raw = np.asarray(X, dtype=np.float64)
        n, d = Z.shape
        self.features_ = list(self.preparer_.features_)
        self.n_features_in_ = X_raw.shape[1]
        rng = np.random.default_rng(self.random_state)
        fit_size = self.fit_sample_size if self.fit_sample_size is not None else REGISTRY[algo].fit_sample
        fit_rows = sample_indices(n, fit_size, rng)
        sampled = len(fit_rows) < n
        Z_fit = Z[fit_rows] if sampled else Z
        n_fit = len(fit_rows)
        lap("prepare", 5)

        # -- k
        self.k_scan_ = None
        self.k_choice_ = None
        self.k_ = None
        if algo in K_ALGORITHMS:
            if self.k == "auto":
                ks = [k for k in self.scan_k_values if k <= n_fit]
                self.k_scan_ = scan_k(
                    Z,
                    k_values=ks,
                    algorithm=algo,
                    sample_size=self.scan_sample_size,
                    random_state=self.random_state,
                    fit_sample_size=self.scan_fit_sample_size,
                    params=self.algorithm_params,
                    progress=lambda stage, pct: report("scan", 5 + pct * 45 // 100),
                )
                self.k_choice_ = explain_k_choice(self.k_scan_, min_cluster_share=self.min_cluster_share)
                self.k_ = self.k_choice_["k"]
                lap("scan", 50)
            else:
                self.k_ = check_k(self.k, n_samples=n_fit)

        # -- fit
        params = dict(self.algorithm_params or {})
        if algo == "dbscan" and "eps" not in params:
            min_samples = params.get("min_samples", default_min_samples(d))
            params["eps"] = choose_eps(
                Z_fit,
                min_samples=min(min_samples, n_fit),
                sample_size=self.scan_sample_size,
                random_state=self.random_state,
            )
        built = make_estimator(
            algo,
            n_samples=n_fit,
            k=self.k_,
            random_state=self.random_state,
            n_features=d,
            minibatch_threshold=self.minibatch_threshold,
            **params,
        )
        est = built.estimator.fit(Z_fit)
        self.algorithm_ = built.algorithm
        self.params_ = built.params
        lap("fit", 75)

        # -- label every row
        self.core_samples_ = self.core_labels_ = self.core_reach_ = None
        if algo in K_ALGORITHMS:
            if self.algorithm_ == "gmm":
                labels = est.predict(Z)
                self.centroids_ = np.array(est.means_)
            elif hasattr(est, "cluster_centers_"):
                labels = est.labels_ if not sampled else est.predict(Z)
                self.centroids_ = np.array(est.cluster_centers_)
                inertia = float(est.inertia_) if not sampled else float(-est.score(Z))
            else:  # another k-based estimator of the registry: centroids are its members' means
                labels = np.asarray(est.predict(Z))
                self.centroids_ = self._member_means(Z, labels, int(labels.max()) + 1 if len(labels) else 0)
                for attr in ("labels_",):  # per-row: would bloat the artifact
                    if hasattr(est, attr):
                        delattr(est, attr)
            self.estimator_ = est
            self.n_clusters_ = len(self.centroids_)
        else:
            fit_labels = est.labels_
            if algo == "dbscan":
                core = est.core_sample_indices_
                self.core_samples_ = np.ascontiguousarray(Z_fit[core])
                self.core_labels_ = fit_labels[core].astype(np.int32)
                self.core_reach_ = np.full(len(core), self.params_["eps"])
            else:
                members = np.flatnonzero(fit_labels >= 0)
                self.core_samples_ = np.ascontiguousarray(Z_fit[members])
                self.core_labels_ = fit_labels[members].astype(np.int32)
                self.core_reach_ = self._hdbscan_reach(Z_fit, fit_labels, members)
            self.estimator_ = None
            if sampled:
                labels = self._predict_density(Z)
                labels[fit_rows] = fit_labels
            else:
                labels = fit_labels.copy()
            self.n_clusters_ = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
            self.centroids_ = self._member_means(Z, labels, self.n_clusters_)
        labels = np.asarray(labels, dtype=np.int32)
        lap("label", 80)

        # -- 2-D map
        self.map_ = PCA(n_components=min(2, d), random_state=self.random_state).fit(Z)
        self.map_explained_variance_ = [float(v) for v in self.map_.explained_variance_ratio_]
        embedding = self._map(Z)
        lap("map", 85)

        # -- metrics
        sil_rows = sample_indices(n, self.scan_sample_size, rng)
        metrics: dict[str, Any] = label_metrics(Z, labels, silhouette_rows=sil_rows)
        if self.algorithm_ in ("kmeans", "minibatch"):
            metrics["inertia"] = inertia
        if self.algorithm_ == "gmm":
            metrics["bic"] = float(est.bic(Z_fit))
        if algo in DENSITY_ALGORITHMS:
            metrics["noise_share"] = float(np.mean(labels == NOISE_LABEL))
        if algo == "hdbscan":
            metrics["reach_factor"] = self.reach_factor_
        metrics["n_clusters"] = int(self.n_clusters_)
        metrics["n_songs"] = int(n)
        metrics["n_songs_fit"] = int(n_fit)
        self.metrics_ = metrics
        lap("metrics", 92)

        # -- profiles and names (all ten features, real units)
        self.profiles_ = cluster_profiles(
            X_raw,
            labels,
            feature_names=list(self.feature_names),
            X_scaled=Z,
            centroids=self.centroids_,
            n_representatives=self.n_representatives,
            genres=genres,
        )
        self.names_ = name_clusters(self.profiles_)
        self.descriptions_ = {p["label"]: describe_cluster(p, labels=self.feature_labels) for p in self.profiles_}
        # Member means in real units; an empty cluster (possible only when
        # fitted on a sample) falls back to its unscaled centroid.
        by_label = {p["label"]: p for p in self.profiles_}
        fallback = self.preparer_.inverse_transform(self.centroids_) if self.n_clusters_ else None
        self.centroids_real_ = np.array(
            [
                [by_label[c]["centroid"][f] for f in self.features_] if c in by_label else fallback[c]
                for c in range(self.n_clusters_)
            ],
            dtype=np.float64,
        ).reshape(self.n_clusters_, d)
        self.labels_ = labels
        self.embedding_ = embedding
        self.sklearn_version_ = sklearn.__version__
        lap("profile", 99)
        timings["total"] = round(time.perf_counter() - t_start, 3)
        self.timings_ = timings
        report("done", 100)
        return self

    # -------------------------------------------------------------- predict
    def predict(self, X) -> np.ndarray:
        """Cluster label per row of the full (n, 10) matrix in real units.

        kmeans / minibatch: nearest centroid; gmm: most probable component.
        dbscan / hdbscan: the label of a training core sample whose reach
        covers the row, else -1 (noise). Core samples are DBSCAN's core
        samples (reach ``eps``: DBSCAN's own rule for border points) or
        HDBSCAN's clustered points (reach: that point's core distance, the
        distance to its ``min_samples``-th neighbour in the fit sample,
        times ``reach_factor_``, calibrated at fit time so that unseen songs
        fall into noise about as often as HDBSCAN's own training songs; a
        new song joins a cluster only if it sits inside a member's dense
        neighbourhood). The search tries every s-th core sample first, then
        the nearest of all of them; a row within reach of two clusters (a
        border point) may take either, as in DBSCAN itself.
        """
        self._check_fitted()
        with limit_threads(X):
            return self._predict_scaled(self.preparer_.transform(X))

    def predict_details(self, X) -> dict[str, np.ndarray | None]:
        """``labels``; ``distances`` (n, n_clusters_) Euclidean to each centroid in
        scaled space; ``probabilities`` (n, n_clusters_) for gmm, else None;
        ``map`` (n, 2) coordinates on the 2-D map."""
        self._check_fitted()
        with limit_threads(X):
            Z = self.preparer_.transform(X)
            return {
                "labels": self._predict_scaled(Z),
                "distances": euclidean_distances(Z, self.centroids_) if self.n_clusters_ else np.empty((len(Z), 0)),
                "probabilities": self.estimator_.predict_proba(Z) if self.algorithm_ == "gmm" else None,
                "map": self._map(Z),
            }

    def transform_map(self, X) -> np.ndarray:
        """2-D map coordinates of rows of the full (n, 10) matrix."""
        self._check_fitted()
        with limit_threads(X):
            return self._map(self.preparer_.transform(X))

    def pop_training_outputs(self) -> dict[str, np.ndarray]:
        """Remove and return the per-row outputs: ``labels`` and ``embedding``."""
        self._check_fitted()
        if not hasattr(self, "labels_"):
            raise ValueError("training outputs were already popped (or the model was loaded from disk)")
        out = {"labels": self.labels_, "embedding": self.embedding_}
        del self.labels_, self.embedding_
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable run record: algorithm, params, features, metrics, timings, …"""
        self._check_fitted()
        return {
            "algorithm": self.algorithm_,
            "params": self.params_,
            "k": self.k_,
            "n_clusters": int(self.n_clusters_),
            "scaler": self.scaler,
            "features": list(self.features_),
            "metrics": self.metrics_,
            "k_scan": self.k_scan_,
            "k_choice": getattr(self, "k_choice_", None),
            "timings": self.timings_,
            "map_explained_variance": self.map_explained_variance_,
            "sklearn_version": self.sklearn_version_,
        }

    # ------------------------------------------------------------ internals
    def _predict_scaled(self, Z: np.ndarray) -> np.ndarray:
        if self.estimator_ is not None:
            return np.asarray(self.estimator_.predict(Z), dtype=np.int32)
        return self._predict_density(Z)

    def _predict_density(self, Z: np.ndarray) -> np.ndarray:
        labels = np.full(len(Z), NOISE_LABEL, dtype=np.int32)
        if self.core_samples_ is None or not len(self.core_samples_) or not len(Z):
            return labels
        cores, reach, core_labels = self.core_samples_, self.core_reach_, self.core_labels_
        # Two passes, because brute force over ~20k core samples for 1M rows
        # takes a minute on 2 cores (a KD-tree is slower still in 10-D):
        # 1) every s-th core sample (~2k): most rows already lie within reach
        #    of one of them (90 % on a realistic catalog);
        # 2) the rest against every core sample.
        # Capped working memory keeps the distance chunks small (the
        # scikit-learn default of 1 GB would double peak memory at 1M rows).
        with sklearn.config_context(working_memory=64):
            todo = np.arange(len(Z))
            stride = max(1, len(cores) // 2000)
            if stride > 1:
                sub = np.arange(0, len(cores), stride)
                nearest, dist = pairwise_distances_argmin_min(Z, cores[sub])
                inside = dist <= reach[sub][nearest]
                labels[inside] = core_labels[sub][nearest[inside]]
                todo = np.flatnonzero(~inside)
            if len(todo):
                nearest, dist = pairwise_distances_argmin_min(Z[todo], cores)
                inside = dist <= reach[nearest]
                labels[todo[inside]] = core_labels[nearest[inside]]
        return labels

    def _hdbscan_reach(self, Z_fit: np.ndarray, fit_labels: np.ndarray, members: np.ndarray) -> np.ndarray:
        """Reach per clustered point: its core distance times a calibrated factor.

        The core distance (to the ``min_samples``-th neighbour, self counted
        as in scikit-learn) measures how far the point's dense neighbourhood
        extends. Alone it is too strict for unseen songs: in 10-D a new song
        is rarely closer to its nearest member than that member's 5th
        neighbour (measured: 25-45 % of unseen rows became noise while
        HDBSCAN left < 1 % of the fit sample as noise). So the factor is
        calibrated leave-one-out on the fit sample: for each fitted song,
        the ratio of its distance to the nearest *other* member over that
        member's core distance; the factor is the quantile of those ratios
        that leaves HDBSCAN's own noise share outside (at least 1 %, never
        below 1).
        """
        self.reach_factor_ = 1.0
        if not len(members):
            return np.empty(0)
        ms = min(self.params_["min_samples"], len(Z_fit))
        core = NearestNeighbors(n_neighbors=ms, n_jobs=-1).fit(Z_fit).kneighbors(self.core_samples_)[0][:, -1]
        if len(members) < 2:
            return core
        dist, idx = NearestNeighbors(n_neighbors=2, n_jobs=-1).fit(self.core_samples_).kneighbors(Z_fit)
        is_member = fit_labels >= 0
        position = np.full(len(Z_fit), -1)
        position[members] = np.arange(len(members))
        col = (idx[:, 0] == position).astype(np.intp)  # a member's nearest is itself: take the next
        rows = np.arange(len(Z_fit))
        nearest, d = idx[rows, col], dist[rows, col]
        ratio = d / np.where(core[nearest] > 0, core[nearest], np.inf)
        keep = min(1.0 - float(np.mean(~is_member)), 0.99)
        self.reach_factor_ = max(1.0, float(np.quantile(ratio, keep)))
        return core * self.reach_factor_

    def _map(self, Z: np.ndarray) -> np.ndarray:
        coords = self.map_.transform(Z)
        if coords.shape[1] == 1:  # one clustering feature: a line, drawn flat
            coords = np.column_stack([coords, np.zeros(len(coords))])
        return coords

    @staticmethod
    def _member_means(Z: np.ndarray, labels: np.ndarray, n_clusters: int) -> np.ndarray:
        if n_clusters == 0:
            return np.empty((0, Z.shape[1]))
        # Noise (-1) sums into a group of its own past the clusters, dropped.
        counts, sums = group_sums(Z, np.where(labels >= 0, labels, n_clusters), n_clusters + 1)
        return sums[:n_clusters] / np.maximum(counts[:n_clusters], 1)[:, None]

    def _check_fitted(self) -> None:
        if not hasattr(self, "preparer_"):
            raise NotFittedError("ClusterModel is not fitted yet; call fit(X) first")

    def __getstate__(self):
        # Per-row outputs belong in the database, not in the artifact. Copy:
        # object.__getstate__ may hand back the live __dict__ itself.
        state = dict(super().__getstate__())
        for attr in PER_ROW_ATTRIBUTES:
            state.pop(attr, None)
        return state


def match_models(
    old: ClusterModel, new: ClusterModel, *, max_distance: float = DEFAULT_MAX_MATCH_DISTANCE
) -> dict[int, int]:
    """``{new_label: old_label}`` for two fitted runs on the same feature list.

    The old run's centroids (real units) are scaled with the *new* run's
    scaler so both sets live in one space, then :func:`match_clusters`
    pairs them. Raises ValueError when the feature lists differ.
    """
    if list(old.features_) != list(new.features_):
        raise ValueError(f"runs cluster different features ({old.features_} vs {new.features_}); no matching")
    if not old.n_clusters_ or not new.n_clusters_:
        return {}
    # Both sides go through the new scaler from real units, so a nonlinear
    # (quantile) scaler treats them alike.
    old_in_new = new.preparer_.transform_selected(old.centroids_real_)
    new_scaled = new.preparer_.transform_selected(new.centroids_real_)
    return match_clusters(old_in_new, new_scaled, max_distance=max_distance)
