"""Songs imported after the active run trained, searched beside its index.

The run's similar-song index holds the songs it trained on. Songs imported
since (ids above the index's largest) form a small *delta*: read from the
database, embedded with the run's own embedding, labelled with the run's
model, and searched exactly beside the index; the next retrain folds them
into the index. Each process keeps one delta, keyed by (run id, index
sha256), and checks at most every MODEL_RECHECK_SECONDS whether the
songs above the index changed (their largest id, count and last update:
one query over the primary key's tail); a change rebuilds it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db.models import Count, Max

from songs.features import FEATURE_NAMES
from songs.models import Song

from .artifacts import model_load
from .errors import ArtifactError
from .ml.similarity import SimilarityIndex, bounds_mask
from .models import TrainingRun

logger = logging.getLogger(__name__)

# A delta larger than this is cut to its first songs (by id): past it an
# exact search per request costs more than it brings; retrain.
DELTA_MAX_SONGS = 100_000


@dataclass
class Delta:
    """The songs above ``after_id``: ``pks``, ``vectors`` (float32, the run's
    embedding), ``attributes`` (:data:`ATTRIBUTES` order), ``artists``,
    ``labels`` (the run's model's prediction, -1 without a model),
    ``genres`` (each song's genre names, lower case)."""

    key: tuple
    mark: tuple
    after_id: int
    pks: np.ndarray
    vectors: np.ndarray
    attributes: np.ndarray
    artists: np.ndarray
    labels: np.ndarray
    genres: list[frozenset]

    def __len__(self) -> int:
        return len(self.pks)

    def search(
        self,
        vector,
        *,
        k: int,
        bounds: dict | None = None,
        label: int | None = None,
        exclude_pks=(),
        exclude_artists=(),
        genres: frozenset = frozenset(),
        exclude_genres: frozenset = frozenset(),
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(positions, song ids, distances) of the k nearest delta songs that
        pass every filter, ascending (exact: the delta is small)."""
        if not len(self) or k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        in_bounds = bounds_mask(self.attributes, bounds)
        keep = np.ones(len(self), dtype=bool) if in_bounds is None else in_bounds.copy()
        if label is not None:
            keep &= self.labels == label
        if len(exclude_pks):
            keep &= ~np.isin(self.pks, np.asarray(list(exclude_pks), dtype=np.int64))
        if len(exclude_artists):
            keep &= ~np.isin(self.artists, np.asarray(list(exclude_artists), dtype=np.int64))
        if genres or exclude_genres:
            for i in np.flatnonzero(keep).tolist():
                have = self.genres[i]
                if (genres and not have & genres) or (exclude_genres and have & exclude_genres):
                    keep[i] = False
        pos = np.flatnonzero(keep)
        if not len(pos):
            return pos, np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        d2 = ((self.vectors[pos] - q) ** 2).sum(axis=1)
        k = min(int(k), len(pos))
        top = np.argpartition(d2, k - 1)[:k] if k < len(pos) else np.arange(len(pos))
        top = top[np.argsort(d2[top], kind="stable")]
        return pos[top], self.pks[pos[top]], np.sqrt(d2[top]).astype(np.float32)


_lock = threading.Lock()
_state: dict = {"delta": None, "checked": -1e9}


def cache_clear() -> None:
    with _lock:
        _state.update(delta=None, checked=-1e9)


def _mark(after_id: int) -> tuple:
    found = Song.objects.filter(id__gt=after_id).aggregate(top=Max("id"), n=Count("id"), changed=Max("updated_at"))
    return (found["top"] or 0, found["n"], found["changed"])


def delta_for(run: TrainingRun, index: SimilarityIndex) -> Delta:
    """The delta of the active run's index in this process (built or rebuilt
    when the catalog above the index changed)."""
    key = (run.pk, run.index_sha256)
    now = time.monotonic()
    delta = _state["delta"]
    if delta is not None and delta.key == key and now - _state["checked"] < settings.MODEL_RECHECK_SECONDS:
        return delta
    if delta is not None and delta.key == key:
        after_id = delta.after_id
    else:  # a pass over the index's ids: once per run and process
        after_id = int(index.ids_.max()) if len(index.ids_) else 0
    mark = _mark(after_id)
    if delta is None or delta.key != key or delta.mark != mark:
        delta = _build(run, index, key=key, mark=mark, after_id=after_id)
    with _lock:
        _state.update(delta=delta, checked=now)
    return delta


def _build(run: TrainingRun, index: SimilarityIndex, *, key: tuple, mark: tuple, after_id: int) -> Delta:
    columns = [
        "id",
        "artist_id",
        "release_year",
        "popularity",
        "genres",
        *FEATURE_NAMES,
        "key",
        "mode",
        "time_signature",
    ]
    rows = list(Song.objects.filter(id__gt=after_id).order_by("id").values_list(*columns)[:DELTA_MAX_SONGS])
    n = len(rows)
    if mark[1] > DELTA_MAX_SONGS:
        logger.warning(
            "%s songs were imported after run #%s trained; similar songs search the first %s: retrain",
            mark[1],
            run.pk,
            DELTA_MAX_SONGS,
        )
    if not n:
        empty = np.empty(0, dtype=np.int64)
        return Delta(key, mark, after_id, empty, np.empty((0, 1), np.float32), np.empty((0, 14)), empty, empty, [])

    def col(name, dtype=np.float64):
        j = columns.index(name)
        return np.array([np.nan if r[j] is None else r[j] for r in rows], dtype=dtype)

    pks = col("id", np.int64)
    artists = col("artist_id", np.int64)
    X = np.column_stack([col(name) for name in FEATURE_NAMES])
    year, popularity = col("release_year"), col("popularity")
    vectors = index.embed(X=X, year=year, popularity=popularity, artist=artists)
    extra = np.column_stack([col("key"), col("mode"), popularity, col("time_signature")])
    attributes = np.hstack([X, extra]).astype(np.float32)
    labels = np.full(n, -1, dtype=np.int64)
    try:
        labels = np.asarray(model_load(run).predict(X), dtype=np.int64)
    except ArtifactError as exc:  # no usable model: the delta serves every filter but "same cluster"
        logger.warning("the delta of run #%s is not labelled: %s", run.pk, exc)
    g = columns.index("genres")
    genres = [frozenset(str(x).strip().lower() for x in (r[g] or ())) for r in rows]
    return Delta(key, mark, after_id, pks, vectors, attributes, artists, labels, genres)
