"""Per-cluster profiles (size, centroid, z-scores, level shares, top genres,
representatives) and descriptions in words."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import numpy as np

from .features import FEATURES, column_sums, group_sums, unique_ints
from .scales import SHARE_THRESHOLDS, join_words, level_word

NOISE_LABEL = -1


class FeatureZ(TypedDict):
    feature: str
    z: float


class GenreShare(TypedDict):
    genre: str
    share: float  # of the cluster's songs that carry the genre
    lift: float  # share in the cluster / share in the catalog


class ClusterProfile(TypedDict, total=False):
    """JSON-serialisable summary of one cluster (plain Python types only)."""

    label: int  # -1 is noise
    size: int
    share: float  # of all songs
    centroid: dict[str, float]  # mean per feature, real units
    z: dict[str, float]  # (cluster mean - catalog mean) / catalog std
    top_features: list[FeatureZ]  # largest |z| first
    representatives: list[int]  # row indices of the members closest to the centroid
    # Share of members past a documented per-track threshold (scales.SHARE_THRESHOLDS):
    # {"instrumental": 0.1, "spoken": 0.0, ...}.
    levels: dict[str, float]
    # The cluster's most common genres (empty when the catalog has none).
    top_genres: list[GenreShare]


def _group_means(X: np.ndarray, labels: np.ndarray, uniq: np.ndarray) -> np.ndarray:
    counts, sums = group_sums(X, np.searchsorted(uniq, labels), len(uniq))
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
    genres: tuple | None = None,
    n_genres: int = 5,
) -> list[ClusterProfile]:
    """Profile every label present in ``labels`` (clusters ascending, noise last).

    ``X_raw`` holds real units, one column per ``feature_names`` (pass all ten
    features even when clustering used a subset: names read better with the
    full picture). Representatives are the members nearest to their cluster
    centroid in ``X_scaled`` / ``centroids`` (row i = label i) when given,
    else in z-score space of ``X_raw``. Noise gets no representatives.

    ``genres`` = (rows, names): song ``rows[i]`` carries genre ``names[i]``
    (a song appears once per genre), or (rows, codes, distinct names) when
    already factorised; each profile then lists its ``n_genres`` most
    common genres with their share and lift.
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
    # X_raw.std(axis=0), without its centred copy of every row (the same sums)
    std = np.sqrt(column_sums(X_raw, lambda rows: np.square(rows - mean)) / n)
    safe_std = np.where(std > 0, std, 1.0)
    uniq = unique_ints(labels)
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
    levels = _level_shares(X_raw, labels, uniq, names)
    top_genres = _top_genres(labels, uniq, genres, n_genres)

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
                levels=levels[i],
                top_genres=top_genres[i],
            )
        )
    return profiles


def _level_shares(X_raw: np.ndarray, labels: np.ndarray, uniq: np.ndarray, names: list[str]) -> list[dict]:
    idx = np.searchsorted(uniq, labels)
    counts = np.maximum(np.bincount(idx, minlength=len(uniq)), 1)
    out: list[dict] = [{} for _ in uniq]
    for key, (feature, threshold, above) in SHARE_THRESHOLDS.items():
        if feature not in names:
            continue
        col = X_raw[:, names.index(feature)]
        hit = col >= threshold if above else col < threshold
        shares = np.bincount(idx, weights=hit.astype(np.float64), minlength=len(uniq)) / counts
        for i in range(len(uniq)):
            out[i][key] = round(float(shares[i]), 3)
    return out


def _top_genres(labels: np.ndarray, uniq: np.ndarray, genres, n_genres: int) -> list[list[GenreShare]]:
    empty: list[list[GenreShare]] = [[] for _ in uniq]
    if genres is None or n_genres <= 0:
        return empty
    rows = np.asarray(genres[0], dtype=np.int64)
    if not len(rows):
        return empty
    if len(genres) == 3:  # already factorised: (rows, codes, distinct names)
        codes_ = np.asarray(genres[1], dtype=np.int64)
        genre_names = np.asarray(genres[2], dtype=object)
    else:
        codes_, genre_names = _factorize(np.asarray(genres[1], dtype=object))
    if len(rows) != len(codes_):
        raise ValueError(f"genres: {len(rows)} rows but {len(codes_)} genres")
    if rows.min() < 0 or rows.max() >= len(labels):
        raise ValueError(f"genres: rows must lie in 0..{len(labels) - 1}")
    if len(codes_) and (codes_.min() < 0 or codes_.max() >= len(genre_names)):
        raise ValueError(f"genres: codes must lie in 0..{len(genre_names) - 1}")
    # One count per (song, genre): a genre listed twice for a song counts once.
    g = len(genre_names)
    pair = unique_ints(rows * g + codes_)  # not np.unique: its hash path took 12 s on 1.5M
    rows, codes_ = pair // g, pair % g
    cluster = np.searchsorted(uniq, labels[rows])
    counts = np.bincount(cluster * g + codes_, minlength=len(uniq) * g).reshape(len(uniq), g).astype(np.float64)
    sizes = np.bincount(np.searchsorted(uniq, labels), minlength=len(uniq)).astype(np.float64)
    catalog_share = counts.sum(axis=0) / len(labels)
    out = []
    for i in range(len(uniq)):
        share = counts[i] / max(sizes[i], 1.0)
        top = np.lexsort((genre_names, -share))[:n_genres]
        out.append(
            [
                GenreShare(
                    genre=str(genre_names[g]),
                    share=round(float(share[g]), 3),
                    lift=round(float(share[g] / catalog_share[g]), 2) if catalog_share[g] else 0.0,
                )
                for g in top
                if share[g] > 0
            ]
        )
    return out


def _factorize(names: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes and the distinct names, by a hash table: sorting 1.5M strings
    (np.unique) took ~20 s, this ~0.3 s."""
    seen: dict[str, int] = {}
    codes_ = np.fromiter((seen.setdefault(str(x), len(seen)) for x in names), dtype=np.int64, count=len(names))
    return codes_, np.array(list(seen), dtype=object)


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


def value_display(feature: str, value: float) -> str:
    """A feature value as a listener reads it: 0.62, -6.4 dB, 121 BPM, 3:35."""
    if feature == "duration_ms":
        seconds = round(value / 1000)
        return f"{seconds // 60}:{seconds % 60:02d}"
    if feature == "loudness":
        return f"{value:.1f} dB".replace("-", "−")
    if feature == "tempo":
        return f"{value:.0f} BPM"
    return f"{value:.2f}"


# Order of the level words in a description (what a listener notices first).
DESCRIBE_ORDER = (
    "speechiness",
    "instrumentalness",
    "acousticness",
    "energy",
    "loudness",
    "tempo",
    "danceability",
    "valence",
    "liveness",
    "duration_ms",
)


def describe_cluster(
    profile: ClusterProfile,
    *,
    threshold: float = 0.5,
    max_features: int = 3,
    labels: dict[str, str] | None = None,
) -> str:
    """What the cluster sounds like, then how it differs from the catalog.

    E.g. "Energetic (0.81), loud (−4.9 dB) and danceable (0.74). Against the
    catalog: high danceability (+1.4σ) and energy (+1.1σ), low acoustic
    sound (−1.2σ)." The first sentence uses the words of the documented
    Spotify scales for the cluster's mean (:mod:`.scales`); the second only
    features with |z| >= ``threshold``, strongest first. (Genres are the
    profile's ``top_genres``, shown beside the description.) ``labels`` maps
    feature names to what a listener calls them ("length" for duration_ms).
    """
    if profile["label"] == NOISE_LABEL:
        return "Songs in low-density regions that the algorithm left outside every cluster."
    labels = labels or {}
    sentences = []
    centroid = profile.get("centroid") or {}
    words = []
    for f in DESCRIBE_ORDER:
        value = centroid.get(f)
        word = level_word(f, value)
        if word:
            words.append(f"{word} ({value_display(f, value)})")
    if words:
        sentences.append(join_words(words[:4]))

    z = profile["z"]
    strong = sorted((f for f in z if abs(z[f]) >= threshold), key=lambda f: -abs(z[f]))[:max_features]

    def part(f: str) -> str:
        return f"{labels.get(f, f)} ({'+' if z[f] >= 0 else '−'}{abs(z[f]):.1f}σ)"

    if strong:
        highs = [f for f in strong if z[f] > 0]
        lows = [f for f in strong if z[f] < 0]
        clauses = []
        if highs:
            clauses.append("high " + join_words([part(f) for f in highs]))
        if lows:
            clauses.append("low " + join_words([part(f) for f in lows]))
        if strong[0] in lows:
            clauses.reverse()  # lead with the strongest trait
        relative = ", ".join(clauses)
        sentences.append(("against the catalog: " if sentences else "") + relative)
    else:
        sentences.append("close to the catalog average on every feature")

    return " ".join(s[0].upper() + s[1:] + "." for s in sentences)
