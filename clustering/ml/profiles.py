"""Per-cluster profiles (size, centroid, z-scores, representatives) and descriptions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import numpy as np

from .features import FEATURES

NOISE_LABEL = -1


class FeatureZ(TypedDict):
    feature: str
    z: float


class ClusterProfile(TypedDict):
    """JSON-serialisable summary of one cluster (plain Python types only)."""

    label: int  # -1 is noise
    size: int
    share: float  # of all songs
    centroid: dict[str, float]  # mean per feature, real units
    z: dict[str, float]  # (cluster mean - catalog mean) / catalog std
    top_features: list[FeatureZ]  # largest |z| first
    representatives: list[int]  # row indices of the members closest to the centroid


def _group_means(X: np.ndarray, labels: np.ndarray, uniq: np.ndarray) -> np.ndarray:
    # bincount per column: one pass over the data, no (n, k) temporaries.
    idx = np.searchsorted(uniq, labels)
    counts = np.bincount(idx, minlength=len(uniq)).astype(np.float64)
    sums = np.column_stack([np.bincount(idx, weights=X[:, j], minlength=len(uniq)) for j in range(X.shape[1])])
    return sums / counts[:, None]


def cluster_profiles(
    X_raw,
    labels,
    *,
    feature_names: Sequence[str] = FEATURES,
    X_scaled=None,
    centroids=None,
    n_representatives: int = 10,
    n_top: int = 3,
) -> list[ClusterProfile]:
    """Profile every label present in ``labels`` (clusters ascending, noise last).

    ``X_raw`` holds real units, one column per ``feature_names`` (pass all ten
    features even when clustering used a subset: names read better with the
    full picture). Representatives are the members nearest to their cluster
    centroid in ``X_scaled`` / ``centroids`` (row i = label i) when given,
    else in z-score space of ``X_raw``. Noise gets no representatives.
    """
    X_raw = np.asarray(X_raw, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64, copy=False)
    names = list(feature_names)
    if X_raw.ndim != 2 or X_raw.shape[1] != len(names):
        raise ValueError(f"X_raw must have shape (n, {len(names)}), got {X_raw.shape}")
    if labels.shape != (X_raw.shape[0],):
        raise ValueError(f"labels must have shape ({X_raw.shape[0]},), got {labels.shape}")
    n = len(labels)
    if n == 0:
        return []

    mean = X_raw.mean(axis=0)
    std = X_raw.std(axis=0)
    safe_std = np.where(std > 0, std, 1.0)
    uniq = np.unique(labels)
    means = _group_means(X_raw, labels, uniq)
    counts = np.bincount(np.searchsorted(uniq, labels), minlength=len(uniq))
    zs = (means - mean) / safe_std

    if X_scaled is None or centroids is None:
        space = (X_raw - mean) / safe_std
        centres = {lab: (means[i] - mean) / safe_std for i, lab in enumerate(uniq)}
    else:
        space = np.asarray(X_scaled, dtype=np.float64)
        cents = np.asarray(centroids, dtype=np.float64)
        centres = {lab: cents[lab] for lab in uniq if 0 <= lab < len(cents)}
    reps = _representatives(space, labels, centres, n_representatives)

    profiles: list[ClusterProfile] = []
    order = [i for i, lab in enumerate(uniq) if lab != NOISE_LABEL] + [
        i for i, lab in enumerate(uniq) if lab == NOISE_LABEL
    ]
    for i in order:
        lab = int(uniq[i])
        z = {f: round(float(zs[i, j]), 3) for j, f in enumerate(names)}
        top = sorted(names, key=lambda f: -abs(z[f]))[:n_top]
        profiles.append(
            ClusterProfile(
                label=lab,
                size=int(counts[i]),
                share=float(counts[i] / n),
                centroid={f: float(means[i, j]) for j, f in enumerate(names)},
                z=z,
                top_features=[FeatureZ(feature=f, z=z[f]) for f in top],
                representatives=reps.get(lab, []),
            )
        )
    return profiles


def _representatives(space: np.ndarray, labels: np.ndarray, centres: dict, n_rep: int) -> dict[int, list[int]]:
    if n_rep <= 0:
        return {}
    out: dict[int, list[int]] = {}
    for lab, c in centres.items():
        if lab == NOISE_LABEL:
            continue
        members = np.flatnonzero(labels == lab)
        d = np.einsum("ij,ij->i", space[members] - c, space[members] - c)
        take = min(n_rep, len(members))
        nearest = np.argpartition(d, take - 1)[:take]
        out[int(lab)] = [int(i) for i in members[nearest[np.argsort(d[nearest], kind="stable")]]]
    return out


# How a feature reads in a sentence.
FEATURE_LABELS = {"duration_ms": "duration"}


def describe_cluster(profile: ClusterProfile, *, threshold: float = 0.5, max_features: int = 3) -> str:
    """One sentence naming the features that set the cluster apart.

    E.g. "High danceability (+1.4σ) and energy (+1.1σ), low acousticness (−1.2σ)."
    Only features with |z| >= ``threshold`` are mentioned, strongest first.
    """
    if profile["label"] == NOISE_LABEL:
        return "Songs in low-density regions that the algorithm left outside every cluster."
    z = profile["z"]
    strong = sorted((f for f in z if abs(z[f]) >= threshold), key=lambda f: -abs(z[f]))[:max_features]
    if not strong:
        return "Close to the catalog average on every feature."

    def part(f: str) -> str:
        return f"{FEATURE_LABELS.get(f, f)} ({'+' if z[f] >= 0 else '−'}{abs(z[f]):.1f}σ)"

    def clause(word: str, feats: list[str]) -> str:
        items = [part(f) for f in feats]
        joined = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
        return f"{word} {joined}"

    highs = [f for f in strong if z[f] > 0]
    lows = [f for f in strong if z[f] < 0]
    clauses = []
    if highs:
        clauses.append(clause("high", highs))
    if lows:
        clauses.append(clause("low", lows))
    if strong[0] in lows:
        clauses.reverse()  # lead with the strongest trait
    sentence = ", ".join(clauses)
    return sentence[0].upper() + sentence[1:] + "."
