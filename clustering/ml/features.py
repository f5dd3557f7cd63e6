"""Feature matrix validation and scaling.

Services hand this package a float64 matrix of shape (n, 10) whose columns
follow :data:`FEATURES`. :class:`FeaturePreparer` selects the clustering
features from it and scales them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import QuantileTransformer, RobustScaler, StandardScaler

FEATURES: tuple[str, ...] = (
    "danceability",
    "energy",
    "loudness",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
    "tempo",
    "duration_ms",
)

SCALERS: tuple[str, ...] = ("standard", "robust", "quantile")


# Rows per block of :func:`column_sums`.
SUM_BLOCK = 262_144


def column_sums(A: np.ndarray, transform=None, *, block: int = SUM_BLOCK) -> np.ndarray:
    """``transform(A).sum(axis=0)`` for a C-ordered matrix, computed by blocks
    of rows: the temporaries hold one block, not a copy of every row (at 10M
    songs a float64 copy of twelve columns is ~1 GB), and the sums are the
    same bit for bit (see :func:`block_sums`). ``transform`` maps a block of
    rows to a block of values (None: the rows)."""
    A = np.asarray(A)
    if not A.flags.c_contiguous or A.ndim != 2 or not len(A):  # another layout sums in another order: as NumPy does
        return (A if transform is None else transform(A)).sum(axis=0)
    blocks = (A[start : start + block] for start in range(0, len(A), block))
    return block_sums(blocks if transform is None else map(transform, blocks))


def group_sums(X: np.ndarray, groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, column sums) of each group of ``X``'s rows, ``groups`` in
    0..n_groups-1: one ``bincount`` per column, no (n, k) temporary and no
    copy of the rows. Counts are float64; sums have shape (n_groups, d)."""
    counts = np.bincount(groups, minlength=n_groups).astype(np.float64)
    sums = np.column_stack([np.bincount(groups, weights=X[:, j], minlength=n_groups) for j in range(X.shape[1])])
    return counts, sums.reshape(n_groups, X.shape[1])


def unique_ints(values, *, return_inverse: bool = False):
    """``np.unique`` of an integer array (flattened), the same values in the
    same dtype, and with ``return_inverse`` their positions, without NumPy's
    own path: since NumPy 2.3 a plain ``np.unique`` finds values through a
    hash table, here 4.0 s for 10M artist ids (1.8 s with
    ``return_inverse``) and 0.27 s for 552k sorted rows. Values spanning a
    range no wider than a few times their count are marked in a table of
    that range (one pass; its inverse is a lookup); others are sorted."""
    a = np.asarray(values).ravel()
    if a.dtype.kind not in "iub":
        raise TypeError(f"unique_ints takes integers, not {a.dtype}")
    if a.size == 0:
        out = a.copy()
        return (out, np.empty(0, dtype=np.intp)) if return_inverse else out
    lo, hi = int(a.min()), int(a.max())
    narrow = max(4 * a.size, 1 << 16)
    if lo >= 0 and hi <= narrow:
        lo = 0  # ids from 1 up: a table from 0, no shifted copy of every value
    if hi - lo <= narrow and hi < 2**62:  # an unsigned value past int64 would not fit a position
        offsets = a.astype(np.intp, copy=False)  # no copy of int64 ids; booleans become positions
        if lo:
            offsets = offsets - lo
        seen = np.zeros(hi - lo + 1, dtype=bool)
        seen[offsets] = True
        present = np.flatnonzero(seen)
        out = (present + lo).astype(a.dtype)
        if not return_inverse:
            return out
        position = np.empty(len(seen), dtype=np.intp)
        position[present] = np.arange(len(present), dtype=np.intp)
        return out, position[offsets]
    order = np.argsort(a, kind="stable") if return_inverse else None
    ordered = a[order] if return_inverse else np.sort(a)
    new = np.empty(a.size, dtype=bool)  # the first of each run of equal values
    new[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    if not return_inverse:
        return ordered[new]
    inverse = np.empty(a.size, dtype=np.intp)
    inverse[order] = np.cumsum(new) - 1
    return ordered[new], inverse


def block_sums(blocks) -> np.ndarray:
    """The column sums of the rows of consecutive blocks (C-ordered 2-D
    arrays, at least one): what ``.sum(axis=0)`` gives for their
    concatenation, bit for bit. NumPy adds the rows of a C-ordered matrix
    along axis 0 one after another, so each block's rows are added after
    the running total."""
    total = None
    for rows in blocks:
        total = np.add.reduce(rows if total is None else np.concatenate([total[None], rows]), axis=0)
    if total is None:
        raise ValueError("no blocks to sum")
    return total


def check_matrix(X, *, feature_names: Sequence[str], name: str = "X") -> np.ndarray:
    """Return ``X`` as a 2-D float64 array with one column per feature name.

    Raises ValueError naming the offending columns when values are NaN or
    infinite, because a silent NaN would poison every centroid.
    """
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_songs, {len(feature_names)}), got {arr.ndim}-D; "
            "use X.reshape(1, -1) for a single song"
        )
    if arr.shape[1] != len(feature_names):
        raise ValueError(
            f"{name} has {arr.shape[1]} columns, expected {len(feature_names)} ({', '.join(feature_names)})"
        )
    finite = np.isfinite(arr)
    if not finite.all():
        bad_rows = (~finite).sum(axis=0)
        cols = ", ".join(f"{feature_names[j]} ({bad_rows[j]} rows)" for j in np.flatnonzero(bad_rows))
        raise ValueError(f"{name} contains NaN or infinite values in column(s): {cols}")
    return arr


def select_features(features: Sequence[str] | None, feature_names: Sequence[str]) -> list[str]:
    """Validate a feature subset (None = all) against the matrix's column names."""
    names = list(feature_names)
    if len(set(names)) != len(names):
        raise ValueError(f"feature_names contains duplicates: {names}")
    if features is None:
        return names
    if isinstance(features, str):
        raise ValueError(f"features must be a list of names, not the string {features!r}")
    chosen = list(features)
    if not chosen:
        raise ValueError("features must name at least one feature")
    unknown = [f for f in chosen if f not in names]
    if unknown:
        raise ValueError(f"unknown feature(s): {', '.join(map(str, unknown))}; known: {', '.join(names)}")
    dupes = sorted({f for f in chosen if chosen.count(f) > 1})
    if dupes:
        raise ValueError(f"feature(s) listed twice: {', '.join(dupes)}")
    return chosen


class FeaturePreparer(TransformerMixin, BaseEstimator):
    """Select clustering features from the full matrix and scale them.

    Parameters
    ----------
    scaler : "standard" | "robust" | "quantile"
        StandardScaler (z-scores), RobustScaler (median / IQR, resists
        outliers such as 40-minute tracks) or QuantileTransformer with a
        normal output (rank-based; makes skewed features like speechiness
        and duration comparable).
    features : list of names or None
        Subset of ``feature_names`` to cluster on; None keeps all.
    feature_names : column names of the input matrix, in order.
    random_state : seed for the quantile scaler's subsampling.

    Attributes
    ----------
    features_ : selected feature names, in output column order.
    feature_index_ : their column indices in the input matrix.
    scaler_ : the fitted scikit-learn scaler.
    feature_mean_, feature_std_ : per selected feature, catalog mean and
        standard deviation in real units (for z-scores and profiles).
    n_features_in_ : number of input columns.
    """

    def __init__(
        self,
        scaler: str = "standard",
        features: Sequence[str] | None = None,
        feature_names: Sequence[str] = FEATURES,
        random_state: int | None = 0,
    ):
        self.scaler = scaler
        self.features = features
        self.feature_names = feature_names
        self.random_state = random_state

    def _make_scaler(self, n_samples: int):
        if self.scaler == "standard":
            return StandardScaler()
        if self.scaler == "robust":
            return RobustScaler()
        if self.scaler == "quantile":
            # Normal output keeps distances on a z-like scale, comparable to
            # the standard scaler; subsample bounds fit time on 1M rows.
            return QuantileTransformer(
                n_quantiles=min(1000, n_samples),
                output_distribution="normal",
                subsample=100_000,
                random_state=self.random_state,
            )
        raise ValueError(f"unknown scaler {self.scaler!r}; choose one of {', '.join(SCALERS)}")

    def fit(self, X, y=None) -> FeaturePreparer:
        """Learn the scaling (and catalog statistics) of the selected features."""
        self._fit(X)
        return self

    def fit_transform(self, X, y=None, **fit_params) -> np.ndarray:
        """Fit, then return the scaled subset (validates X once)."""
        return self._fit(X)

    def _fit(self, X) -> np.ndarray:
        names = list(self.feature_names)
        selected = select_features(self.features, names)
        if self.scaler not in SCALERS:
            raise ValueError(f"unknown scaler {self.scaler!r}; choose one of {', '.join(SCALERS)}")
        arr = check_matrix(X, feature_names=names)
        if arr.shape[0] < 2:
            raise ValueError(f"need at least 2 songs to fit, got {arr.shape[0]}")
        self.features_ = selected
        self.feature_index_ = np.array([names.index(f) for f in selected], dtype=np.intp)
        self.n_features_in_ = len(names)
        raw = arr[:, self.feature_index_]
        self.feature_mean_ = raw.mean(axis=0)
        self.feature_std_ = raw.std(axis=0)
        self.scaler_ = self._make_scaler(arr.shape[0])
        return self.scaler_.fit_transform(raw)

    def transform(self, X) -> np.ndarray:
        """Return the scaled selected features of the full (n, 10) matrix."""
        self._check_fitted()
        arr = check_matrix(X, feature_names=list(self.feature_names))
        return self.scaler_.transform(arr[:, self.feature_index_])

    def transform_selected(self, X_selected) -> np.ndarray:
        """Scale a matrix that already holds only the selected features (in real units)."""
        self._check_fitted()
        arr = check_matrix(X_selected, feature_names=self.features_, name="X_selected")
        return self.scaler_.transform(arr)

    def inverse_transform(self, Z) -> np.ndarray:
        """Map scaled values back to real units of the selected features."""
        self._check_fitted()
        return self.scaler_.inverse_transform(np.asarray(Z, dtype=np.float64))

    def zscores(self, X_selected) -> np.ndarray:
        """Z-scores of real-unit values of the selected features vs the catalog."""
        self._check_fitted()
        std = np.where(self.feature_std_ > 0, self.feature_std_, 1.0)
        return (np.asarray(X_selected, dtype=np.float64) - self.feature_mean_) / std

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        self._check_fitted()
        return np.asarray(self.features_, dtype=object)

    def _check_fitted(self) -> None:
        if not hasattr(self, "scaler_"):
            raise NotFittedError("FeaturePreparer is not fitted yet; call fit(X) first")
