"""Similar songs: the song embedding and its nearest-neighbour index.

Research behind the embedding (docs/SIMILARITY.md): the ten audio
features alone reach ~25 % genre precision@10 whatever the metric; log
transforms of the skewed features plus the release year and popularity
reach ~33 %, and mixing in the artist's mean vector ~44 %. So a song's
vector is ``[B, artist_weight * mean(B over the artist's songs)]`` where
``B`` is the standardised (log) audio features, ``year_weight * year`` and
``popularity_weight * popularity``: a fixed transform plus one mean per
artist, computed once at training time.

The index is faiss's inverted file with fp16 scalar quantisation
(``IndexIVFScalarQuantizer``): k-means cells over the vectors, a query
scans the ``n_probe`` cells nearest to it. Hard filters (``min_*``/``max_*``,
same cluster, genres, excluded artists and songs) are faiss selectors
applied inside the scan (a bitmap of selected rows, or the excluded rows),
and the search widens its probes until k selected rows are found or every
cell was scanned, so a filter never returns too few. A small selection is
searched exactly over the stored float16 vectors (the same values the fp16
codes decode to). Saved as a folder of plain files (:meth:`save`): the faiss
index, read with ``IO_FLAG_MMAP_IFC`` (its codes stay in the mapped file),
and one ``.npy`` per array, read with ``mmap_mode="r"``, so every process
of a machine shares one copy through the page cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.exceptions import NotFittedError

from ._threads import limit_threads, one_search_thread
from .features import FEATURES, block_sums, check_matrix, unique_ints
from .scales import COMPARATIVES, join_words, level_word

# Skewed features (most songs near 0, a long tail): log(x + offset) spreads
# the mass near 0 where the differences between songs actually are.
LOG_OFFSETS = {"speechiness": 0.01, "liveness": 0.01, "acousticness": 0.01, "instrumentalness": 0.001}

# Attributes kept per song for hard filters, targets and explanations:
# the ten features plus these, in this column order.
EXTRA_ATTRIBUTES = ("key", "mode", "popularity", "time_signature")
ATTRIBUTES = (*FEATURES, *EXTRA_ATTRIBUTES)
_FEATURE_POSITION = {f: j for j, f in enumerate(FEATURES)}

# Points of the stored catalog distributions (feature values, 10th-neighbour
# distances): percentiles 0, 1, ... 100.
QUANTILES = np.linspace(0.0, 1.0, 101)
# Two songs are "close in" a feature only when few catalog songs lie between
# them (inclusive): two vocal tracks both at instrumentalness 0 share a
# value that half the catalog has, which says nothing about them.
CLOSE_MAX_SHARE = 0.2
# "This one is livelier" needs the two songs this far apart in catalog
# percentiles.
# Near the catalog floor: below the minimum plus this share of the span from
# the minimum to the 95th percentile (instrumentalness 0.03 on a catalog of
# hits, speechiness 0.05). Two songs both there are alike in lacking it, which
# is no reason to call them close.
FLOOR_SPAN = 0.1
CONTRAST_MIN_PERCENTILES = 0.25
CONTRAST_MIN_STD = 0.75
# Order in which shared levels are named ("both acoustic, slow and quiet").
WORD_ORDER = (
    "speechiness",
    "instrumentalness",
    "acousticness",
    "energy",
    "tempo",
    "loudness",
    "danceability",
    "valence",
    "liveness",
    "duration_ms",
)

# Below this many songs an exact search over every vector is cheaper than cells.
EXACT_BELOW = 20_000
# Rows per block when embedding many songs (bounds the float64 temporaries).
EMBED_BLOCK = 262_144
# A filtered query whose selection is this small is answered exactly.
EXACT_SELECTION = 50_000
# At most this many excluded rows are fetched and dropped after an unmasked
# search (SimilarityIndex.query) rather than excluded by a selector inside it.
DROP_AFTER_ROWS = 64
# Probes multiply by this when the probed cells hold fewer than k selected rows.
WIDEN = 4
# Songs sampled per cell to fit the cells (a few Lloyd iterations): 25
# against 50 built a generated 1M catalog's index in 2.9 s against 3.6 s at
# the same recall@10 (0.9976 and 0.998 at 16 probes; scripts/index_compare.py).
CELL_SAMPLE = 25
# The file layout written by :meth:`SimilarityIndex.save` (meta.json "format").
SAVE_FORMAT = 2
FAISS_FILE = "faiss.index"
META_FILE = "meta.json"
# Scalars and the embedding's weights, kept in meta.json rather than as arrays.
_META_KEYS = ("n_probe", "distance_scale", "emb_weights")


def _top_k(rows: np.ndarray, d2: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k rows of smallest squared distance, ascending, with their distances."""
    top = np.argpartition(d2, k - 1)[:k] if k < len(d2) else np.arange(len(d2))
    top = top[np.argsort(d2[top], kind="stable")]
    return rows[top].astype(np.int64), np.sqrt(np.maximum(d2[top], 0))


def _credit_profiles(artist_ids, sums, sizes, means, pair_artists, pair_members) -> np.ndarray:
    """Each artist's profile as the mean of the profiles of the members its
    credit names, a member's profile being the mean over all its songs."""
    pair_artists = np.asarray(pair_artists, dtype=np.int64)
    pair_members = np.asarray(pair_members, dtype=np.int64)
    pos = np.clip(np.searchsorted(artist_ids, pair_artists), 0, len(artist_ids) - 1)
    known = artist_ids[pos] == pair_artists
    pos, pair_members = pos[known], pair_members[known]
    if not len(pos):
        return means
    _, member = np.unique(pair_members, return_inverse=True)
    n_members = int(member.max()) + 1
    member_size = np.bincount(member, weights=sizes[pos], minlength=n_members)
    d = sums.shape[1]
    member_mean = (
        np.column_stack([np.bincount(member, weights=sums[pos, j], minlength=n_members) for j in range(d)])
        / member_size[:, None]
    )
    n_artists = len(artist_ids)
    named = np.bincount(pos, minlength=n_artists)
    profile = np.column_stack([np.bincount(pos, weights=member_mean[member, j], minlength=n_artists) for j in range(d)])
    return np.where(named[:, None] > 0, profile / np.maximum(named, 1)[:, None], means)


def bounds_mask(attributes: np.ndarray, bounds) -> np.ndarray | None:
    """Rows of ``attributes`` (columns in :data:`ATTRIBUTES` order) within
    every (low, high) bound, inclusive; None when there is no bound. An
    unknown (NaN) attribute fails a bound on it."""
    mask = None
    largest = np.finfo(np.float32).max
    for name, (low, high) in (bounds or {}).items():
        col = attributes[:, ATTRIBUTES.index(name)]
        # Two comparisons, no third pass for finiteness: NaN fails both, and
        # an open side compares with the largest finite float32, which an
        # infinity fails. (A column of a catalog-sized array: each pass over it
        # is what a bound costs, ~4 ms at 10M songs column-major.)
        lo = np.float32(low) - np.float32(1e-6) if low is not None else -largest
        hi = np.float32(high) + np.float32(1e-6) if high is not None else largest
        ok = np.greater_equal(col, lo)
        ok &= col <= hi
        mask = ok if mask is None else mask & ok
    return mask


class SongEmbedding(BaseEstimator):
    """Song vectors for similarity: ``[B, artist_weight * artist_mean(B)]``.

    Parameters
    ----------
    year_weight, popularity_weight : weights of the standardised release
        year and popularity appended to the ten standardised features.
    artist_weight : weight of the artist's mean vector (0 drops it).

    Attributes after fit: ``mean_``, ``std_`` (12 base columns),
    ``artist_ids_`` (sorted) and ``artist_means_`` (one row each: the
    artist's profile, the mean of its songs, or for a joint credit the mean
    of the profiles of the artists it names, see :mod:`.credits`),
    ``dim_`` the embedding width.
    """

    def __init__(self, year_weight: float = 3.0, popularity_weight: float = 1.0, artist_weight: float = 3.0):
        self.year_weight = year_weight
        self.popularity_weight = popularity_weight
        self.artist_weight = artist_weight

    @staticmethod
    def _raw_rows(X: np.ndarray, year: np.ndarray, popularity: np.ndarray) -> np.ndarray:
        """The 12 raw base columns of checked rows (log scales where the
        feature is one), written straight into one matrix (no stacking)."""
        raw = np.empty((len(X), len(FEATURES) + 2), dtype=np.float64)
        raw[:, : len(FEATURES)] = X
        for j, name in enumerate(FEATURES):
            if name in LOG_OFFSETS:
                raw[:, j] = np.log(np.clip(raw[:, j], 0, None) + LOG_OFFSETS[name])
            elif name == "duration_ms":
                raw[:, j] = np.log(np.clip(raw[:, j], 1000, None))
        raw[:, -2] = year
        raw[:, -1] = popularity
        return raw

    def _raw_blocks(self, X, year, popularity):
        """The raw base columns by blocks of EMBED_BLOCK rows: a function
        giving a fresh iterator of (start, rows) each time it is called."""
        X = check_matrix(X, feature_names=FEATURES)
        year = np.asarray(year, dtype=np.float64).reshape(len(X))
        popularity = np.asarray(popularity, dtype=np.float64).reshape(len(X))

        def blocks():
            for start in range(0, max(len(X), 1), EMBED_BLOCK):  # one empty block for no rows
                stop = start + EMBED_BLOCK
                yield start, self._raw_rows(X[start:stop], year[start:stop], popularity[start:stop])

        return blocks

    def fit(self, X, year, popularity, artist, members=None) -> SongEmbedding:
        """``members``: optional (artist ids, member codes) pairs naming the
        artists of joint credits (:func:`.credits.credit_pairs`); a member's
        profile is the mean of every song whose credit names it."""
        self._fit_blocks(self._raw_blocks(X, year, popularity), artist, members)
        return self

    def fit_transform(self, X, year, popularity, artist, members=None, *, dtype=np.float32) -> np.ndarray:
        """:meth:`fit`, then :meth:`transform` of the same songs."""
        blocks = self._raw_blocks(X, year, popularity)
        self._fit_blocks(blocks, artist, members)
        return self._embed_blocks(blocks, artist, dtype=dtype)

    def _fit_blocks(self, blocks, artist, members) -> None:
        # Every statistic is summed over blocks of rows, each block's raw
        # columns computed again when read (a log or two per value): no
        # matrix of every song's 12 columns (~1 GB at 10M songs) is ever
        # held, and the sums are those over whole matrices, bit for bit
        # (block_sums; np.add.at adds in order, as np.bincount does).
        width = len(FEATURES) + 2
        counts = np.zeros(width, dtype=np.int64)

        def known_values():
            for _, rows in blocks():
                finite = np.isfinite(rows)
                np.add(counts, finite.sum(axis=0), out=counts)  # integers: exact in any order
                yield np.where(finite, rows, 0)

        known = block_sums(known_values())  # the counts in the same pass
        self.mean_ = np.where(counts > 0, known / np.maximum(counts, 1), 0.0)

        def squares(rows):
            centred = rows - self.mean_
            centred[~np.isfinite(rows)] = 0.0
            return np.square(centred, out=centred)

        std = np.sqrt(block_sums(squares(rows) for _, rows in blocks()) / np.maximum(counts, 1))
        self.std_ = np.where(std > 0, std, 1.0)
        artist = np.asarray(artist, dtype=np.int64)
        self.artist_ids_, codes = unique_ints(artist, return_inverse=True)
        n_artists = len(self.artist_ids_)
        sizes = np.bincount(codes, minlength=n_artists).astype(np.float64)
        sums = np.zeros((n_artists, width))
        for start, rows in blocks():
            base = self._base_of(rows, in_place=True)
            for j in range(width):
                np.add.at(sums[:, j], codes[start : start + len(base)], base[:, j])
        means = sums / sizes[:, None]
        if members is not None and len(members[0]):
            means = _credit_profiles(self.artist_ids_, sums, sizes, means, *members)
        self.artist_means_ = means.astype(np.float32)
        self.dim_ = width * (2 if self.artist_weight else 1)

    def _base_of(self, raw: np.ndarray, *, in_place: bool = False) -> np.ndarray:
        # The values of np.where(finite, (raw - mean) / std, 0), in one copy of
        # raw or (``in_place``) in raw itself.
        unknown = ~np.isfinite(raw)
        if in_place:
            z = raw
            z -= self.mean_
        else:
            z = raw - self.mean_
        z /= self.std_
        z[unknown] = 0.0
        z[:, -2] *= self.year_weight
        z[:, -1] *= self.popularity_weight
        return z

    def base(self, X, year, popularity) -> np.ndarray:
        """The 12 standardised, weighted base columns (missing year/popularity: the mean)."""
        return np.concatenate(
            [self._base_of(rows, in_place=True) for _, rows in self._raw_blocks(X, year, popularity)()]
        )

    def transform(self, X, year, popularity, artist, *, dtype=np.float32) -> np.ndarray:
        """Embedding rows (float32; ``dtype=np.float16``: the float32 values
        rounded to half precision, written without a float32 copy of every
        row). An artist unknown at fit time contributes the song's own base."""
        self._check_fitted()
        return self._embed_blocks(self._raw_blocks(X, year, popularity), artist, dtype=dtype)

    def _embed_blocks(self, blocks, artist, *, dtype=np.float32) -> np.ndarray:
        artist = np.asarray(artist, dtype=np.int64)
        d = len(FEATURES) + 2
        out = None
        # By blocks of rows: the float64 temporaries stay small at 10M songs;
        # each block is float32 first, whatever ``dtype`` it is stored in.
        for start, raw in blocks():
            part = self._base_of(raw, in_place=True)
            if out is None:
                out = np.empty((len(artist), self.dim_), dtype=dtype)
            if not self.artist_weight:
                out[start : start + len(part)] = part.astype(np.float32)
                continue
            profile = part
            if len(self.artist_ids_):
                block = artist[start : start + len(part)]
                pos = np.clip(np.searchsorted(self.artist_ids_, block), 0, len(self.artist_ids_) - 1)
                known = self.artist_ids_[pos] == block
                profile = np.where(known[:, None], self.artist_means_[pos], part)
            rows = np.empty((len(part), 2 * d), dtype=np.float32)
            rows[:, :d] = part
            rows[:, d:] = self.artist_weight * profile
            out[start : start + len(part)] = rows
        return out if out is not None else np.empty((0, self.dim_), dtype=dtype)

    def _check_fitted(self) -> None:
        if not hasattr(self, "mean_"):
            raise NotFittedError("SongEmbedding is not fitted yet; call fit() first")


class SimilarityIndex(BaseEstimator):
    """Nearest songs in the embedding space, with per-song attributes for filters.

    Parameters
    ----------
    embedding : an unfitted :class:`SongEmbedding` (default weights).
    n_cells : IVF cells (None: about sqrt(n), none below EXACT_BELOW songs).
    n_probe : cells scanned per query.
    random_state : seeds the cell k-means.

    Attributes after fit (rows sorted by cell; ``row`` below means a row
    of these arrays, not a song id, and is the id faiss holds):
    ``ids_`` song ids; ``vectors_`` float16 embedding; ``attributes_``
    float32 (n, 14) in :data:`ATTRIBUTES` order (NaN when unknown);
    ``artists_`` artist ids; ``dup_keys_`` (artist, normalised title) keys;
    ``labels_`` cluster label at training time; ``map_`` (n, 2) float64
    map positions at training time (NaN: off the map), or None when the
    index was not given the ones its run stored (:meth:`labels_set`); ``faiss_`` the faiss
    ``IndexIVFScalarQuantizer`` over the rows (None below EXACT_BELOW songs:
    every search is exact); ``artist_rows_`` / ``dup_rows_`` the rows sorted
    by artist / by duplicate key (the excluded rows of a query, found by
    binary search); ``id_order_`` argsort of ``ids_``;
    ``genres_`` sorted genre names, ``genre_vectors_`` their mean
    embedding, ``genre_members_`` the rows carrying each genre (genre i's
    are ``genre_members_[genre_starts_[i]:genre_starts_[i + 1]]``); ``attribute_mean_``, ``attribute_std_`` catalog statistics;
    ``distance_scale_`` the median distance of a song to its 10th
    neighbour; ``nn_distance_quantiles_`` the percentiles 0-100 of that
    distance over a sample of songs (what :meth:`similarity` reads);
    ``feature_quantiles_`` (101, 10) the percentiles of each feature (what
    :meth:`explain` reads).
    """

    def __init__(
        self,
        embedding: SongEmbedding | None = None,
        n_cells: int | None = None,
        n_probe: int = 16,
        random_state: int | None = 0,
    ):
        self.embedding = embedding
        self.n_cells = n_cells
        self.n_probe = n_probe
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        *,
        ids,
        X,
        year,
        popularity,
        artist,
        dup_keys,
        extra,
        labels=None,
        genre_rows: Sequence[int] = (),
        genre_names: Sequence[str] = (),
        key_hashes=None,
        artist_members=None,
        genre_codes=None,
    ) -> SimilarityIndex:
        """Build the index.

        ids (n,), X (n, 10) real units, year / popularity (n,) with NaN for
        unknown, artist (n,) artist ids, dup_keys (n,) int64 equal for
        exact duplicates, extra (n, 4) :data:`EXTRA_ATTRIBUTES` (NaN when
        unknown), labels (n,) cluster labels, key_hashes (n,) int64 hashes of
        the songs' public ids (so a lookup needs no database round trip). ``genre_rows[i]`` is a row
        of song i's genre ``genre_names[i]`` (a song may appear once per genre); or, with
        ``genre_codes``, of genre ``genre_names[genre_codes[i]]`` (``genre_names`` then distinct:
        no sort of a string per pair). ``artist_members``:
        (artist ids, member codes) pairs of joint credits for the artist profiles (:mod:`.credits`).
        """
        ids = np.asarray(ids, dtype=np.int64)
        n = len(ids)
        if n == 0:
            raise ValueError("cannot build a similarity index over an empty catalog")
        emb = self.embedding or SongEmbedding()
        # float16 halves the largest array (48 MB instead of 96 at 1M songs),
        # which exact searches and lookups read; faiss encodes its own fp16
        # codes (each song's residual to its cell) from these values.
        if hasattr(emb, "mean_"):
            vectors16 = emb.transform(X, year, popularity, artist, dtype=np.float16)
        else:
            vectors16 = emb.fit_transform(X, year, popularity, artist, members=artist_members, dtype=np.float16)
        self.embedding_ = emb
        labels = np.full(n, -1) if labels is None else np.asarray(labels)

        # -- cells
        n_cells = self.n_cells if self.n_cells is not None else (0 if n < EXACT_BELOW else int(np.sqrt(n)))
        n_cells = int(min(max(n_cells, 0), n))
        build_threads = faiss.omp_get_max_threads()
        # The build runs beside the run's labelling and the database: every
        # core but one (on 2 cores, 1 thread built 1M songs in 26 s, 2 threads
        # in 30 s with the machine busy: OpenMP threads wait for a busy sibling).
        faiss.omp_set_num_threads(max(1, (os.cpu_count() or 1) - 1))
        if n_cells > 1:
            # Cells need only be roughly even, not optimal: a few Lloyd
            # iterations on a sample. scikit-learn's k-means fits them (~1 s
            # at 1M songs, faster than faiss's own training in the faiss-cpu
            # build this machine loads, no AVX2); faiss's flat search assigns
            # each song its nearest cell (3x faster than k-means' predict on
            # one thread: 0.7 s against 1.7 s at 1M songs and 1,000 cells,
            # 1.9 s against 5.6 s at 3,162, the cell count of 10M songs; the
            # same cells), then stores it there.
            rng = np.random.default_rng(self.random_state)
            sample = vectors16[rng.choice(n, size=min(n, CELL_SAMPLE * n_cells), replace=False)].astype(np.float32)
            km = KMeans(n_clusters=n_cells, init="random", n_init=1, max_iter=10, random_state=self.random_state)
            km.fit(sample)
            index = _ivf(km.cluster_centers_)
            cell = np.empty(n, dtype=np.int64)
            for start in range(0, n, 200_000):
                part = vectors16[start : start + 200_000].astype(np.float32)
                cell[start : start + len(part)] = index.quantizer.search(part, 1)[1][:, 0]
        else:
            index = None
            cell = np.zeros(n, dtype=np.int64)
        # Fewer than 2**15 cells: a 16-bit key sorts by radix (the same stable order, ~20x faster).
        order = np.argsort(cell.astype(np.int16) if n_cells < 2**15 else cell, kind="stable")
        self.ids_ = ids[order]
        self.vectors_ = vectors16[order]
        del vectors16
        self.sq_norms_ = np.empty(n, dtype=np.float32)
        for start in range(0, n, EMBED_BLOCK):  # by blocks: no float32 copy of every vector
            block = self.vectors_[start : start + EMBED_BLOCK].astype(np.float32)
            self.sq_norms_[start : start + len(block)] = (block**2).sum(axis=1)
        if index is not None:
            # faiss ids are rows; the cells are known, so no second assignment.
            _ivf_fill(index, np.searchsorted(cell[order], np.arange(n_cells + 1)), self.vectors_)
            del cell
            index.nprobe = int(self.n_probe)
        faiss.omp_set_num_threads(build_threads)
        self.faiss_ = index
        # Written in row order column by column (float32, NaN when unknown):
        # no unordered copy of every row beside the vectors while they are built.
        X = np.asarray(X)
        extra = np.asarray(extra).reshape(n, len(EXTRA_ATTRIBUTES))
        # Column-major: a min_*/max_* bound reads one attribute of every song,
        # 40 MB in one piece at 10M songs where a row-major column strides
        # over all 560 MB (82 against 7 ms a bound; a row's read, 14 values,
        # costs the same either way).
        self.attributes_ = np.empty((n, len(ATTRIBUTES)), dtype=np.float32, order="F")
        for j in range(len(ATTRIBUTES)):
            column = X[:, j] if j < X.shape[1] else extra[:, j - X.shape[1]]
            self.attributes_[:, j] = column[order]
        del X, extra, column  # read for the last time (a caller that handed them over lets them go)
        self.artists_ = np.asarray(artist, dtype=np.int64)[order]
        if n and self.artists_.max() < 2**31 and self.artists_.min() >= -(2**31):
            self.artists_ = self.artists_.astype(np.int32)
        self.dup_keys_ = np.asarray(dup_keys, dtype=np.int64)[order]
        self.labels_ = labels[order].astype(np.int16)
        self.map_ = None
        self._build_exclusion_lookups()
        # intp: searchsorted copies a sorter of any other type on every call.
        if n < 2 or bool((ids[1:] > ids[:-1]).all()):
            # Ids given in order (a run's read): the row of the i-th id is where order put it.
            self.id_order_ = np.empty(n, dtype=np.intp)
            self.id_order_[order] = np.arange(n, dtype=np.intp)
        else:
            self.id_order_ = np.argsort(self.ids_, kind="stable").astype(np.intp)
        if key_hashes is not None:
            hashes = np.asarray(key_hashes, dtype=np.int64)[order]
            by_hash = np.argsort(hashes, kind="stable")
            self.key_hashes_, self.key_rows_ = hashes[by_hash], by_hash.astype(np.int32 if n < 2**31 else np.int64)
        else:
            self.key_hashes_ = self.key_rows_ = np.empty(0, dtype=np.int64)

        # -- catalog statistics for targets and explanations
        finite = np.isfinite(self.attributes_)
        self.attribute_mean_ = np.array(
            [self.attributes_[finite[:, j], j].mean() if finite[:, j].any() else 0.0 for j in range(len(ATTRIBUTES))]
        )
        std = np.array(
            [self.attributes_[finite[:, j], j].std() if finite[:, j].any() else 1.0 for j in range(len(ATTRIBUTES))]
        )
        self.attribute_std_ = np.where(std > 0, std, 1.0)
        # Feature percentiles for explanations, from a sample (a float64 copy of
        # every row would take 800 MB at 10M songs; 200k rows place each
        # percentile within ~0.2 points).
        n_feat = len(FEATURES)
        rows = np.random.default_rng(self.random_state).choice(n, size=min(n, 200_000), replace=False)
        self.feature_quantiles_ = np.quantile(self.attributes_[rows, :n_feat].astype(np.float64), QUANTILES, axis=0)

        # -- genre seeds: the mean vector of each genre's songs
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        genre_rows = np.asarray(genre_rows, dtype=np.int64)
        names = np.asarray(genre_names, dtype=object)
        if len(genre_rows):
            if genre_codes is not None:
                # Sort the distinct names only (a few thousand), not a name per pair.
                genre_codes = np.asarray(genre_codes, dtype=np.int64)
                used = np.flatnonzero(np.bincount(genre_codes, minlength=len(names)))
                by_name = used[np.argsort(names[used].astype(str), kind="stable")]
                rank_of = np.full(len(names), -1, dtype=np.int64)
                rank_of[by_name] = np.arange(len(by_name))
                self.genres_, codes = names[by_name].astype(str), rank_of[genre_codes]
            else:
                self.genres_, codes = np.unique(names.astype(str), return_inverse=True)
            counts = np.bincount(codes, minlength=len(self.genres_)).astype(np.float64)
            rows = rank[genre_rows]
            self.genre_vectors_ = (
                np.column_stack(
                    [
                        np.bincount(
                            codes, weights=self.vectors_[rows, j].astype(np.float64), minlength=len(self.genres_)
                        )
                        for j in range(self.vectors_.shape[1])
                    ]
                )
                / counts[:, None]
            ).astype(np.float32)
            self.genre_sizes_ = counts.astype(np.int64)
            # Members of each genre: rows sorted by (genre, row), one slice per genre.
            by_genre = np.lexsort((rows, codes))
            self.genre_members_ = rows[by_genre].astype(np.int32 if n < 2**31 else np.int64)
            self.genre_starts_ = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        else:
            self.genres_ = np.empty(0, dtype=str)
            self.genre_vectors_ = np.empty((0, self.vectors_.shape[1]), dtype=np.float32)
            self.genre_sizes_ = np.empty(0, dtype=np.int64)
            self.genre_members_ = np.empty(0, dtype=np.int32)
            self.genre_starts_ = np.zeros(1, dtype=np.int64)

        # -- similarity scale: the distribution of a song's distance to its
        # 10th neighbour (a sample of songs; ~0.1 s at 1M songs)
        rng = np.random.default_rng(self.random_state)
        probe = rng.choice(n, size=min(n, 400), replace=False)
        tenth = []
        for r in probe:
            rows, dist = self.search(self.vector(r), k=11)
            if len(dist) > 1:
                tenth.append(dist[-1])
        self.distance_scale_ = float(np.median(tenth)) if tenth and np.median(tenth) > 0 else 1.0
        self.nn_distance_quantiles_ = np.quantile(tenth, QUANTILES) if tenth else None
        return self

    def labels_set(self, song_ids, labels, map_positions=None) -> SimilarityIndex:
        """Set the cluster labels of songs (``labels[i]`` of ``song_ids[i]``)
        after the fit, for an index built before its run's clusters were
        known; songs not given keep -1. With ``map_positions`` ((n, 2), the
        run's stored map positions of the same songs), the index holds the
        songs' stored labels (``map_``): a reader may take a result's cluster
        and map position from it rather than from the database."""
        self._check_fitted()
        rows = self.rows_of(song_ids)
        known = rows >= 0
        labels_ = np.full(len(self.ids_), -1, dtype=np.int16)
        labels_[rows[known]] = np.asarray(labels)[known]
        self.labels_ = labels_
        self.map_ = None
        if map_positions is not None:
            self.map_ = np.full((len(self.ids_), 2), np.nan)
            positions = np.asarray(map_positions, dtype=np.float64).reshape(-1, 2)
            self.map_[rows[known]] = positions if known.all() else positions[known]
        return self

    def cluster_centre(self, label: int) -> np.ndarray | None:
        """The mean vector of the rows labelled ``label`` (float32), None when
        no row is: computed once per labelling and kept (a cluster of 1.25M
        songs at 10M takes ~190 ms to gather and average)."""
        labels = self.labels_
        cache = getattr(self, "_centres", None)
        if cache is None or cache[0] is not labels:
            cache = self._centres = (labels, {})
        if label not in cache[1]:
            members = labels == label
            cache[1][label] = np.mean(self.vectors_[members], axis=0, dtype=np.float32) if members.any() else None
        return cache[1][label]

    # --------------------------------------------------------------- lookup
    def rows_of(self, song_ids) -> np.ndarray:
        """Row of each song id, -1 when the song is not in the index."""
        self._check_fitted()
        song_ids = np.asarray(song_ids, dtype=np.int64).reshape(-1)
        pos = np.searchsorted(self.ids_, song_ids, sorter=self.id_order_)
        pos = np.clip(pos, 0, len(self.ids_) - 1)
        rows = self.id_order_[pos]
        return np.where(self.ids_[rows] == song_ids, rows, -1)

    def row_of_key_hash(self, key_hash: int) -> int:
        """The row whose public-id hash is ``key_hash``, -1 when none (the
        caller confirms the id itself: a hash can collide)."""
        pos = int(np.searchsorted(self.key_hashes_, np.int64(key_hash)))
        if pos < len(self.key_hashes_) and self.key_hashes_[pos] == key_hash:
            return int(self.key_rows_[pos])
        return -1

    def vector(self, rows) -> np.ndarray:
        """Stored vectors of index rows, as float32 (one row or an array of them)."""
        return self.vectors_[rows].astype(np.float32)

    def embed(self, *, X, year, popularity, artist) -> np.ndarray:
        """Vectors for songs given by their data (e.g. not in the index yet)."""
        self._check_fitted()
        return self.embedding_.transform(X, year, popularity, artist)

    def attribute_mask(self, bounds: dict[str, tuple[float | None, float | None]]) -> np.ndarray | None:
        """Rows whose attributes lie within every (low, high) bound (inclusive);
        None when there is no bound. A song with an unknown attribute fails a bound on it."""
        self._check_fitted()
        return bounds_mask(self.attributes_, bounds)

    def search(
        self, query, *, k: int, mask: np.ndarray | None = None, n_probe: int | None = None, exclude_rows=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(rows, distances) of the k nearest rows to ``query`` (one vector),
        ascending, among rows where ``mask`` is True (all rows when None) and
        not in ``exclude_rows``.

        Exact when the catalog or the selection is small, else faiss through
        the ``n_probe`` nearest cells with the filter as a selector inside the
        scan; if the probed cells hold fewer than k selected rows, the probes
        widen (x :data:`WIDEN`) up to every cell: fewer than k only when the
        selection itself holds fewer.
        """
        self._check_fitted()
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        k = int(k)
        if k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        excluded = None
        if exclude_rows is not None and len(exclude_rows):
            excluded = np.unique(np.asarray(exclude_rows, dtype=np.int64))
        if mask is not None and excluded is not None:
            mask = mask.copy()
            mask[excluded] = False
            excluded = None
        if mask is not None:
            n_selected = int(np.count_nonzero(mask))
            if self.faiss_ is None or n_selected <= EXACT_SELECTION:
                return self._exact(q, np.flatnonzero(mask), k)
        elif self.faiss_ is None:
            if excluded is None:
                return self._exact(q, None, k)
            keep = np.ones(len(self.ids_), dtype=bool)
            keep[excluded] = False
            return self._exact(q, np.flatnonzero(keep), k)
        else:
            n_selected = len(self.ids_) - (0 if excluded is None else len(excluded))
        k = min(k, n_selected)
        if k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        # The selector reads these arrays during the search: keep them referenced.
        keep_alive: list = []
        selector = None
        if mask is not None:
            bitmap = np.packbits(mask, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bitmap))
            keep_alive.append(bitmap)
        elif excluded is not None:
            batch = faiss.IDSelectorBatch(len(excluded), faiss.swig_ptr(excluded))
            selector = faiss.IDSelectorNot(batch)
            keep_alive += [excluded, batch]
        one_search_thread()
        n_cells = self.faiss_.nlist
        probe = n_probe or self.n_probe
        if mask is not None:
            # A selection of a share s of the rows: s of each probed cell's
            # rows count, so probe 1/s as many cells (up to 16x) for the same
            # number of candidates, the recall of an unfiltered search.
            probe = int(np.ceil(probe * min(len(mask) / max(n_selected, 1), 16.0)))
        probe = int(min(n_cells, probe))
        q2 = q[None, :]
        while True:
            # Per-call parameters: the index object is shared by a process's threads.
            params = faiss.SearchParametersIVF(nprobe=probe, sel=selector) if selector else _probes(probe)
            d2, rows = self.faiss_.search(q2, k, params=params)
            found = rows[0] >= 0
            if found.all() or probe >= n_cells:
                del keep_alive
                rows, d2 = rows[0][found], d2[0][found]
                return rows.astype(np.int64), np.sqrt(np.maximum(d2, 0)).astype(np.float32)
            probe = min(n_cells, probe * WIDEN)

    def query(
        self,
        vector,
        *,
        k: int,
        mask: np.ndarray | None = None,
        exclude_rows=(),
        exclude_keys=(),
        max_per_artist: int | None = None,
        exclude_artists=(),
    ) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`search`, without excluded rows, rows of
        ``exclude_artists`` (artist ids) and rows whose ``dup_keys_`` value is
        in ``exclude_keys`` (these three as a selector inside the search), then
        drops exact duplicates (a key seen before) and rows past
        ``max_per_artist`` results of one artist; widens the search until k
        rows remain or the selection is exhausted."""
        self._check_fitted()
        k = int(k)
        excluded_rows = {int(r) for r in exclude_rows}
        excluded_artists = {int(a) for a in exclude_artists}
        selector_rows = self._excluded_rows(exclude_rows, exclude_artists, exclude_keys)
        fetch = max(2 * k, k + 20)
        if mask is None and selector_rows is not None and len(selector_rows) <= DROP_AFTER_ROWS:
            # A few rows (the seed and its versions): fetched and dropped
            # below instead of a selector inside the search, which tests every
            # scanned vector one at a time (1M songs, 16 probes: 0.30-0.39 ms
            # a search against 0.14). The same rows come out.
            fetch += len(selector_rows)
            selector_rows = None
        n = len(self.ids_)
        while True:
            rows, dist = self.search(vector, k=fetch, mask=mask, exclude_rows=selector_rows)
            keep, kept_dist = [], []
            seen = {int(key) for key in exclude_keys}
            per_artist: dict[int, int] = {}
            # The keys and artists are checked again here: an index changed in
            # place (tests) or loaded without its lookups still drops them.
            for r, d in zip(rows.tolist(), dist.tolist()):
                key = int(self.dup_keys_[r])
                if r in excluded_rows or key in seen:
                    continue
                artist = int(self.artists_[r])
                if artist in excluded_artists or (max_per_artist and per_artist.get(artist, 0) >= max_per_artist):
                    continue
                seen.add(key)
                per_artist[artist] = per_artist.get(artist, 0) + 1
                keep.append(r)
                kept_dist.append(d)
                if len(keep) == k:
                    break
            if len(keep) == k or len(rows) < fetch or fetch >= n:
                return np.asarray(keep, dtype=np.int64), np.asarray(kept_dist, dtype=np.float32)
            fetch = min(n, fetch * 4)

    def rows_of_artists(self, artists) -> np.ndarray:
        """Rows of the songs of ``artists`` (artist ids), ascending."""
        self._check_fitted()
        return self._rows_by(self.artist_rows_, self.artists_, artists)

    def rows_of_keys(self, keys) -> np.ndarray:
        """Rows whose near-duplicate key is one of ``keys``, ascending."""
        self._check_fitted()
        return self._rows_by(self.dup_rows_, self.dup_keys_, keys)

    def similarity(self, distances) -> np.ndarray:
        """Similarity in [0, 1] of results at ``distances``: the share of the
        catalog's songs whose 10th-nearest neighbour is farther away.

        0.9 reads "closer than the 10th neighbour of 90 % of songs": a good
        neighbour reads high, a typical 10th neighbour about 0.5, a song from
        the other end of the catalog 0. The distribution is sampled when the
        index is built (``nn_distance_quantiles_``). An index built before it
        was stored falls back to ``1 / (1 + d / median 10th distance)``.
        """
        d = np.asarray(distances, dtype=np.float64)
        q = getattr(self, "nn_distance_quantiles_", None)
        if q is None or not len(q) or q[-1] <= 0:
            return 1.0 / (1.0 + d / self.distance_scale_)
        # Percentile p at the distance q[p]; (0, 0) below the sample's nearest.
        xs = np.concatenate([[0.0], q]) if q[0] > 0 else np.asarray(q, dtype=np.float64)
        ps = np.concatenate([[0.0], QUANTILES]) if q[0] > 0 else QUANTILES
        # np.interp needs increasing x: repeated quantiles (ties) keep their last share.
        xs, last = np.unique(xs[::-1], return_index=True)
        ps = ps[::-1][last]
        return 1.0 - np.interp(d, xs, ps, left=0.0, right=1.0)

    def explain(
        self,
        seed_attributes,
        rows,
        *,
        labels: dict[str, str] | None = None,
        n_close: int = 2,
        n_far: int = 1,
        values=None,
    ) -> list[dict[str, Any]]:
        """Per result row, why it is near the seed, in a listener's words.

        - ``shared``: the levels both songs reach, in the words of the
          documented Spotify scales (:mod:`.scales`): "acoustic", "slow",
          "quiet" (none for an unremarkable middle value);
        - ``closest``: up to ``n_close`` other features on which the two songs are
          close *and* few catalog songs lie between them (at most
          :data:`CLOSE_MAX_SHARE`): two vocal tracks both at instrumentalness
          0 share a value half the catalog has, so it is never named, nor
          is a feature where both sit near the catalog's floor
          (:data:`FLOOR_SPAN`);
        - ``furthest``: the ``n_far`` features furthest from the seed's in
          catalog standard deviations;
        - ``contrast``: the largest difference a listener hears, as a word
          ("livelier", "slower"): among features at least
          :data:`CONTRAST_MIN_PERCENTILES` apart in catalog percentiles and
          :data:`CONTRAST_MIN_STD` standard deviations, the furthest; None
          when there is none;
        - ``text``: "Both acoustic, slow and quiet; close in mood and length;
          this one is livelier."

        ``labels`` maps feature names to what a listener calls them
        ("length" for duration_ms); missing ones read as the name.
        """
        self._check_fitted()
        labels = labels or {}
        n_feat = len(FEATURES)
        seed = np.asarray(seed_attributes, dtype=np.float64)[:n_feat]
        # ``values``: the results' attributes given directly (songs not in the index).
        source = self.attributes_[rows] if values is None else np.asarray(values)
        values = np.atleast_2d(np.atleast_2d(source)[:, :n_feat].astype(np.float64))
        std = self.attribute_std_[:n_feat]
        q = getattr(self, "feature_quantiles_", None)
        if q is not None:
            # Percentile positions of the seed and every row at once: how many
            # percentile points lie below (``left``) and at or below
            # (``right``) each value, per feature, in one comparison (what a
            # search per feature gives on these sorted columns, without 40
            # numpy calls per request).
            left, right = _ranks(q, np.vstack([seed, values]))
            n_q = len(q)
            # The points between the two songs' values: a count is monotone in the value.
            between_all = (np.maximum(right[0], right[1:]) - np.minimum(left[0], left[1:])) / n_q
            mid = (left + right) / (2 * n_q)
            mid_seed, mid_all = mid[0], mid[1:]
            floor = q[0] + FLOOR_SPAN * (q[95] - q[0])
        # Every row's comparisons at once; only the words are per row.
        gap = np.abs(values - seed) / std
        if q is not None:
            between = between_all
            between[(seed <= floor) & (values <= floor)] = 1.0
            apart = np.abs(mid_all - mid_seed)
        else:  # an index built before the quantiles were stored
            between = apart = np.minimum(gap / 4, 1.0)
        far = np.argsort(-gap, axis=1, kind="stable")[:, : max(n_far, 1)].tolist()
        # A feature already named as a shared level is not repeated as "close in".
        order = np.lexsort((gap, between), axis=-1).tolist()
        closeable = (between <= CLOSE_MAX_SHARE).tolist()
        # The contrast a listener hears: far apart in catalog percentiles
        # *and* in standard deviations (percentiles alone make a small
        # step in a crowded range look big).
        audible = (apart >= CONTRAST_MIN_PERCENTILES) & (gap >= CONTRAST_MIN_STD)
        contrast_j = np.argmax(np.where(audible, gap, -np.inf), axis=1).tolist()
        has_contrast = audible.any(axis=1).tolist()
        louder = (values > seed).tolist()
        # The seed's words, once: a row shares a word only where the seed has one.
        seed_words = [
            (f, w, _FEATURE_POSITION[f]) for f in WORD_ORDER if (w := level_word(f, seed[_FEATURE_POSITION[f]]))
        ]
        rows_values = values.tolist()
        out = []
        for i, b in enumerate(rows_values):
            worded = [f for f, w, j in seed_words if level_word(f, b[j]) == w][:3]
            shared = [w for f, w, _ in seed_words if f in worded]
            far_j = far[i][0]
            close = [FEATURES[j] for j in order[i] if closeable[i][j] and j != far_j and FEATURES[j] not in worded][
                :n_close
            ]
            contrast = None
            if has_contrast[i]:
                more, less = COMPARATIVES[FEATURES[contrast_j[i]]]
                contrast = more if louder[i][contrast_j[i]] else less
            parts = []
            if shared:
                parts.append(f"both {join_words(shared)}")
            if close:
                parts.append(f"close in {join_words([labels.get(f, f) for f in close])}")
            if contrast:
                parts.append(f"this one is {contrast}")
            text = "; ".join(parts) if parts else "a similar sound overall"
            out.append(
                {
                    "closest": close,
                    "furthest": [FEATURES[j] for j in far[i]],
                    "shared": shared,
                    "contrast": contrast,
                    "text": text[0].upper() + text[1:] + ".",
                }
            )
        return out

    def artists_near(self, artist: int, *, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(artist ids, distances) of the k artists nearest to ``artist``,
        ascending, by their mean vectors over their songs in the index (the
        embedding's ``artist_means_``: an artist's mean of full song vectors
        is that mean repeated and weighed, so the order is the same); empty
        when the artist has no song in the index."""
        self._check_fitted()
        emb = self.embedding_
        ids, means = emb.artist_ids_, emb.artist_means_
        pos = int(np.searchsorted(ids, artist))
        if k <= 0 or pos >= len(ids) or ids[pos] != artist:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        d2 = ((means - means[pos]) ** 2).sum(axis=1)
        d2[pos] = np.inf
        k = min(int(k), len(ids) - 1)
        if k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        top = np.argpartition(d2, k - 1)[:k] if k < len(ids) - 1 else np.flatnonzero(np.isfinite(d2))
        top = top[np.lexsort((ids[top], d2[top]))]
        return ids[top].astype(np.int64), np.sqrt(d2[top]).astype(np.float32)

    def genre_vector(self, genre: str) -> np.ndarray | None:
        self._check_fitted()
        pos = self._genre_position(genre)
        return None if pos < 0 else self.genre_vectors_[pos]

    def _genre_position(self, genre: str) -> int:
        pos = int(np.searchsorted(self.genres_, genre))
        return pos if pos < len(self.genres_) and self.genres_[pos] == genre else -1

    @property
    def has_genre_members(self) -> bool:
        """Whether the index knows which rows carry each genre (indexes built
        before genre lists were split only know each genre's mean vector)."""
        return getattr(self, "genre_starts_", None) is not None

    def genre_rows(self, genres: Sequence[str]) -> np.ndarray:
        """Rows carrying any of ``genres`` (names as indexed), ascending; unknown names add none."""
        self._check_fitted()
        if not self.has_genre_members:
            raise ValueError("this index predates genre membership; retrain to rebuild it")
        parts = []
        for genre in genres:
            pos = self._genre_position(genre)
            if pos >= 0:
                parts.append(self.genre_members_[self.genre_starts_[pos] : self.genre_starts_[pos + 1]])
        if not parts:
            return np.empty(0, dtype=np.int64)
        if len(parts) == 1:  # one genre's members are sorted and distinct already
            return parts[0].astype(np.int64)
        return unique_ints(np.concatenate(parts)).astype(np.int64)

    def rows_mask(self, rows) -> np.ndarray:
        """A boolean row mask, True at ``rows``."""
        mask = np.zeros(len(self.ids_), dtype=bool)
        mask[np.asarray(rows, dtype=np.int64)] = True
        return mask

    @property
    def n_cells_(self) -> int:
        """Cells of the inverted file (1: every search is exact)."""
        return 1 if self.faiss_ is None else int(self.faiss_.nlist)

    def to_arrays(self, *, with_faiss: bool = True) -> dict[str, np.ndarray]:
        """Everything the index needs, as plain arrays (no pickle); the faiss
        index as its serialised bytes (``faiss_index``) unless ``with_faiss``
        is off (a copy of every code: ~0.6 GB at 10M songs)."""
        self._check_fitted()
        emb = self.embedding_
        arrays = {
            "ids": self.ids_,
            "vectors": self.vectors_,
            "sq_norms": self.sq_norms_,
            "attributes": self.attributes_,
            "artists": self.artists_,
            "dup_keys": self.dup_keys_,
            "labels": self.labels_,
            **({"map": self.map_} if self.map_ is not None else {}),
            "artist_rows": self.artist_rows_,
            "dup_rows": self.dup_rows_,
            "id_order": self.id_order_,
            "key_hashes": self.key_hashes_,
            "key_rows": self.key_rows_,
            "attribute_mean": self.attribute_mean_,
            "attribute_std": self.attribute_std_,
            "genres": np.asarray(self.genres_).astype(str),
            "genre_vectors": self.genre_vectors_,
            "genre_sizes": self.genre_sizes_,
            **(
                {"genre_members": self.genre_members_, "genre_starts": self.genre_starts_}
                if self.has_genre_members
                else {}
            ),
            "distance_scale": np.array([self.distance_scale_]),
            "nn_distance_quantiles": (
                self.nn_distance_quantiles_ if self.nn_distance_quantiles_ is not None else np.empty(0)
            ),
            "feature_quantiles": self.feature_quantiles_,
            "n_probe": np.array([self.n_probe]),
            "emb_weights": np.array([emb.year_weight, emb.popularity_weight, emb.artist_weight]),
            "emb_mean": emb.mean_,
            "emb_std": emb.std_,
            "emb_artist_ids": emb.artist_ids_,
            "emb_artist_means": emb.artist_means_,
        }
        if with_faiss and self.faiss_ is not None:
            arrays["faiss_index"] = faiss.serialize_index(self.faiss_)
        return arrays

    @classmethod
    def from_arrays(cls, arrays, *, faiss_index=None) -> SimilarityIndex:
        """The index from :meth:`to_arrays` (or from a folder's files, with the
        faiss index already read). An index saved before faiss (``.npz`` with
        ``cells`` and ``cell_starts``) gets its faiss index rebuilt in memory
        from its own cells and vectors, so an upgraded site still serves."""
        a = {key: arrays[key] for key in arrays}
        yw, pw, aw = (float(v) for v in a["emb_weights"])
        emb = SongEmbedding(year_weight=yw, popularity_weight=pw, artist_weight=aw)
        emb.mean_, emb.std_ = a["emb_mean"], a["emb_std"]
        emb.artist_ids_, emb.artist_means_ = a["emb_artist_ids"], a["emb_artist_means"]
        emb.dim_ = a["vectors"].shape[1]
        index = cls(embedding=emb, n_probe=int(a["n_probe"][0]))
        index.embedding_ = emb
        index.ids_, index.vectors_, index.sq_norms_ = a["ids"], a["vectors"], a["sq_norms"]
        index.attributes_, index.artists_, index.dup_keys_ = a["attributes"], a["artists"], a["dup_keys"]
        index.labels_ = a["labels"]
        index.map_ = a.get("map")  # absent: an index saved before it held the stored map positions
        index.id_order_ = np.asarray(a["id_order"]).astype(np.intp, copy=False)
        index.key_hashes_ = a.get("key_hashes", np.empty(0, dtype=np.int64))
        index.key_rows_ = a.get("key_rows", np.empty(0, dtype=np.int64))
        index.attribute_mean_, index.attribute_std_ = a["attribute_mean"], a["attribute_std"]
        index.genres_, index.genre_vectors_, index.genre_sizes_ = a["genres"], a["genre_vectors"], a["genre_sizes"]
        # Absent from indexes saved before genre membership was kept.
        index.genre_members_, index.genre_starts_ = a.get("genre_members"), a.get("genre_starts")
        index.distance_scale_ = float(a["distance_scale"][0])
        # Indexes saved before these statistics existed explain and score the old way.
        nn = a.get("nn_distance_quantiles")
        index.nn_distance_quantiles_ = nn if nn is not None and len(nn) else None
        index.feature_quantiles_ = a.get("feature_quantiles")
        if faiss_index is None and "faiss_index" in a:
            faiss_index = faiss.deserialize_index(np.asarray(a["faiss_index"]))
        if faiss_index is None and "cells" in a and len(a["cells"]) > 1:
            faiss_index = _ivf_from_cells(a["cells"], a["cell_starts"], index.vectors_)
        if faiss_index is not None:
            faiss_index.nprobe = index.n_probe
        index.faiss_ = faiss_index
        if "artist_rows" in a and "dup_rows" in a:
            index.artist_rows_, index.dup_rows_ = a["artist_rows"], a["dup_rows"]
        else:
            index._build_exclusion_lookups()
        return index

    def save(self, directory: str | os.PathLike) -> list[str]:
        """Write the index into ``directory`` (which must exist) as files a
        process can memory-map: ``faiss.index`` and one ``.npy`` per array,
        scalars in ``meta.json``. Returns the names written. (Durability and
        atomicity are the caller's: :mod:`clustering.artifacts`.)"""
        directory = Path(directory)
        # The faiss index is written by faiss itself (below), not serialised
        # into memory first: that copy was the peak of a 10M-song retrain.
        arrays = self.to_arrays(with_faiss=False)
        names = []
        meta = {"format": SAVE_FORMAT, "arrays": []}
        for key in _META_KEYS:
            meta[key] = np.asarray(arrays.pop(key)).tolist()
        for key, value in arrays.items():
            value = np.asarray(value)
            if value.dtype.kind == "U" and value.size == 0:
                value = value.astype("<U1")
            if not value.flags.f_contiguous:  # column-major arrays stay so (np.load maps either)
                value = np.ascontiguousarray(value)
            np.save(directory / f"{key}.npy", value, allow_pickle=False)
            meta["arrays"].append(key)
            names.append(f"{key}.npy")
        if self.faiss_ is not None:
            faiss.write_index(self.faiss_, str(directory / FAISS_FILE))
            names.append(FAISS_FILE)
        meta["faiss"] = self.faiss_ is not None
        (directory / META_FILE).write_text(json.dumps(meta))
        names.append(META_FILE)
        return names

    @classmethod
    def load(cls, directory: str | os.PathLike, *, mmap: bool = True) -> SimilarityIndex:
        """An index written by :meth:`save`. With ``mmap`` the arrays and the
        faiss codes stay in the files, mapped read-only: processes that load
        the same files share their pages."""
        directory = Path(directory)
        meta = json.loads((directory / META_FILE).read_text())
        if meta.get("format") != SAVE_FORMAT:
            raise ValueError(f"unknown similarity index format {meta.get('format')!r}")
        arrays: dict[str, Any] = {
            key: np.asarray(np.load(directory / f"{key}.npy", mmap_mode="r" if mmap else None, allow_pickle=False))
            for key in meta["arrays"]
        }
        for key in _META_KEYS:
            arrays[key] = np.atleast_1d(np.asarray(meta[key]))
        faiss_index = None
        if meta.get("faiss"):
            flags = faiss.IO_FLAG_MMAP_IFC if mmap else 0
            faiss_index = faiss.read_index(str(directory / FAISS_FILE), flags)
        return cls.from_arrays(arrays, faiss_index=faiss_index)

    # ------------------------------------------------------------ internals
    def _build_exclusion_lookups(self) -> None:
        small = np.int32 if len(self.ids_) < 2**31 else np.int64
        self.artist_rows_ = np.argsort(self.artists_, kind="stable").astype(small)
        self.dup_rows_ = np.argsort(self.dup_keys_, kind="stable").astype(small)

    @staticmethod
    def _rows_by(order: np.ndarray, values: np.ndarray, wanted) -> np.ndarray:
        wanted = unique_ints(np.asarray(list(wanted) if not isinstance(wanted, np.ndarray) else wanted, dtype=np.int64))
        if not len(wanted) or not len(order):
            return np.empty(0, dtype=np.int64)
        # values[order] is sorted; its bounds are read row by row, not copied.
        sorted_values = _SortedView(values, order)
        lo = np.array([sorted_values.bound(w, "left") for w in wanted.tolist()])
        hi = np.array([sorted_values.bound(w, "right") for w in wanted.tolist()])
        parts = [order[a:b] for a, b in zip(lo.tolist(), hi.tolist()) if b > a]
        if not parts:
            return np.empty(0, dtype=np.int64)
        return np.sort(np.concatenate(parts).astype(np.int64))

    def _excluded_rows(self, rows, artists, keys) -> np.ndarray | None:
        parts = [np.asarray(list(rows), dtype=np.int64)]
        if len(artists):
            parts.append(self._rows_by(self.artist_rows_, self.artists_, artists))
        if len(keys):
            parts.append(self._rows_by(self.dup_rows_, self.dup_keys_, keys))
        out = np.concatenate(parts)
        out = out[out >= 0]
        return unique_ints(out) if len(out) else None

    def _exact(self, q: np.ndarray, rows: np.ndarray | None, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest of ``rows`` (None: every row), in chunks so that the
        float32 copy of float16 vectors stays small."""
        total = len(self.ids_) if rows is None else len(rows)
        if not total:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        with limit_threads(0):  # one BLAS thread: a request's exact search
            return self._exact_chunks(q, rows, k, total)

    def _exact_chunks(self, q, rows, k, total) -> tuple[np.ndarray, np.ndarray]:
        qq = np.float32(q @ q)
        best_rows, best_d2 = [], []
        for start in range(0, total, 100_000):
            part = np.arange(start, min(total, start + 100_000)) if rows is None else rows[start : start + 100_000]
            d2 = self.sq_norms_[part] - 2 * (self.vectors_[part].astype(np.float32) @ q) + qq
            kk = min(k, len(d2))
            top = np.argpartition(d2, kk - 1)[:kk] if kk < len(d2) else np.arange(len(d2))
            best_rows.append(part[top])
            best_d2.append(d2[top])
        return _top_k(np.concatenate(best_rows), np.concatenate(best_d2), k)

    def _check_fitted(self) -> None:
        if not hasattr(self, "ids_"):
            raise NotFittedError("SimilarityIndex is not fitted yet; call fit() first")


_PROBES: dict[int, Any] = {}


def _probes(n: int):
    """Search parameters with ``n`` probes and no selector (made once per count)."""
    params = _PROBES.get(n)
    if params is None:
        params = _PROBES[n] = faiss.SearchParametersIVF(nprobe=n)
    return params


class _SortedView:
    """Binary search over ``values[order]`` without building it (a few dozen
    reads per bound, where the sorted copy of a 1M-row column costs 8 MB)."""

    def __init__(self, values: np.ndarray, order: np.ndarray):
        self.values, self.order = values, order

    def bound(self, x: int, side: str) -> int:
        lo, hi = 0, len(self.order)
        while lo < hi:
            mid = (lo + hi) // 2
            v = int(self.values[self.order[mid]])
            if v < x or (side == "right" and v == x):
                lo = mid + 1
            else:
                hi = mid
        return lo


def _ivf(cells: np.ndarray):
    """An empty faiss IVF with fp16 codes over the given cell centroids."""
    cells = np.ascontiguousarray(cells, dtype=np.float32)
    dim = cells.shape[1]
    quantizer = faiss.IndexFlatL2(dim)
    quantizer.add(cells)
    index = faiss.IndexIVFScalarQuantizer(quantizer, dim, len(cells), faiss.ScalarQuantizer.QT_fp16)
    index.is_trained = True  # the fp16 quantiser needs no training; the cells are given
    return index


def _ivf_from_cells(cells: np.ndarray, cell_starts: np.ndarray, vectors: np.ndarray):
    """A faiss IVF (fp16) over ``vectors`` laid out by an index saved before
    faiss: rows sorted by cell, cell c's rows ``cell_starts[c]:cell_starts[c+1]``."""
    index = _ivf(cells)
    _ivf_fill(index, cell_starts, vectors)
    return index


def _ivf_fill(index, cell_starts: np.ndarray, vectors: np.ndarray) -> None:
    """Give each cell of an empty IVF (fp16) its rows at once: ids are rows,
    sorted by cell (cell c's are ``cell_starts[c]:cell_starts[c+1]``), each
    list encoded by faiss (the residuals to its cell, as ``add`` would) and
    appended in one piece, which sizes it exactly: adding by batches of rows
    grew every list by doubling (up to twice its codes)."""
    starts = np.asarray(cell_starts, dtype=np.int64)
    lists = index.invlists
    for c in np.flatnonzero(np.diff(starts)).tolist():
        lo, hi = int(starts[c]), int(starts[c + 1])
        part = np.ascontiguousarray(vectors[lo:hi], dtype=np.float32)
        rows = np.arange(lo, hi, dtype=np.int64)
        cell = np.full(hi - lo, c, dtype=np.int64)  # held: swig_ptr keeps no reference
        codes = np.empty((hi - lo, index.code_size), dtype=np.uint8)
        index.encode_vectors(hi - lo, faiss.swig_ptr(part), faiss.swig_ptr(cell), faiss.swig_ptr(codes))
        lists.add_entries(c, hi - lo, faiss.swig_ptr(rows), faiss.swig_ptr(codes))
    index.ntotal = len(vectors)


def _ranks(q: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows ``x`` (n, features) and per-feature percentile points ``q``
    (points, features), sorted along each column: how many points lie
    below each value and how many at or below it, (n, features) each
    (``np.searchsorted`` per column, "left" and "right"). Their mean over
    ``len(q)`` is the value's catalog percentile; a value many songs share
    (a pile at 0) sits in the middle of its pile."""
    x = x[:, None, :]
    return (q < x).sum(axis=1), (q <= x).sum(axis=1)


def external_id_hashes(external_ids) -> np.ndarray:
    """int64 hashes of public song ids with blake2b, the same in every
    process: the keys of indexes built before 2026-12-07 (newer ones take
    ``songs.hashing.public_id_hashes``, given to :meth:`SimilarityIndex.fit`)."""
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(str(e).encode(), digest_size=8).digest(), "little", signed=True)
            for e in external_ids
        ),
        dtype=np.int64,
        count=len(external_ids),
    )
