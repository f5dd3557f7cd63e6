"""Building a run's similar-song index from the run's read of the catalog.

The index itself is the pure ML core's (:class:`clustering.ml.similarity.SimilarityIndex`);
this module derives what it needs beyond the columns the run read
(:mod:`clustering.catalog_read`: a near-duplicate key per title, a hash per
public id, the artists of joint credits) and saves it with the run's
artifacts.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from songs.hashing import public_id_hashes, string_hashes

from .artifacts import index_write
from .catalog_read import CatalogColumns, artist_names
from .ml.credits import credit_pairs
from .ml.similarity import SimilarityIndex
from .ml.titles import MARKED_RE2, title_key

# Titles and public ids become Python strings this many at a time (at 10M
# songs, all at once they were ~1.5 GB: the retrain's peak).
TEXT_BLOCK = 500_000


def _text_blocks(texts) -> list[pa.Array]:
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    elif not isinstance(texts, pa.Array):
        texts = pa.array(texts, type=pa.string())
    return [texts.slice(start, TEXT_BLOCK) for start in range(0, len(texts), TEXT_BLOCK)] or [texts]


def dup_keys(titles: np.ndarray, artists: np.ndarray) -> np.ndarray:
    """int64 keys equal for near-duplicates: the same artist and the same
    :func:`~clustering.ml.titles.title_key` (stable across processes)."""
    artists = np.asarray(artists, dtype=np.int64)
    keys, start = [], 0
    for block in _text_blocks(titles):  # each key depends on its own title only
        keys.append(_dup_keys_block(block, artists[start : start + len(block)]))
        start += len(block)
    return np.concatenate(keys)


def _dup_keys_block(titles: pa.Array, artists: np.ndarray) -> np.ndarray:
    # Most titles carry no version marker: Arrow normalises those in bulk, the
    # others go through title_key (faster than title_key on every title).
    lowered = pc.utf8_lower(pc.utf8_normalize(titles, "NFKC"))
    # Runs of whitespace become one space: rewritten only in the titles that
    # have such a run (the rewrite of every title was 40 % of the keys' time).
    spaced = pc.match_substring_regex(lowered, r"[\t\n\r\f\v]|  ")
    if pc.any(spaced).as_py():
        collapsed = pc.replace_substring_regex(lowered.filter(spaced), r"[ \t\n\r\f\v]+", " ")
        lowered = pc.replace_with_mask(lowered, spaced, collapsed)
    lowered = pc.utf8_trim_whitespace(lowered)
    # Hashed from Arrow's buffers: no Python string per title.
    hashes = string_hashes(lowered)
    # Non-ASCII titles too: Python's and Arrow's lower case differ on a few letters ("İ").
    marked = np.flatnonzero(
        pc.match_substring_regex(lowered, MARKED_RE2 + r"|[^\x00-\x7f]").to_numpy(zero_copy_only=False)
    )
    if len(marked):
        # Each distinct marked title once ("Intro (Live)" recurs across artists).
        encoded = pc.dictionary_encode(titles.take(pa.array(marked, pa.int64())))
        distinct = string_hashes(pa.array([title_key(t) for t in encoded.dictionary.to_pylist()], pa.string()))
        hashes[marked] = distinct[encoded.indices.to_numpy(zero_copy_only=False)]
    return hashes.view(np.int64) ^ (np.asarray(artists, dtype=np.int64) * 0x9E3779B1)


def artist_credit_pairs(artist_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(artist id, member code) pairs naming the artists of each credit
    among ``artist_ids`` ("Lady Gaga, Bruno Mars": two members)."""
    ids, names = artist_names(artist_ids)
    return credit_pairs(ids, names)


def similarity_index_fit(
    *, catalog: CatalogColumns, labels: np.ndarray | None = None, release: bool = False
) -> tuple[SimilarityIndex, dict]:
    """The similar-song index over the songs a run read (``catalog``), with
    their clusters when ``labels`` is given (else set later with
    :meth:`~clustering.ml.similarity.SimilarityIndex.labels_set`). With
    ``release`` the catalog's titles and public ids are let go once keyed,
    and its feature matrix is handed to the index fit, which lets it go once
    read (the run's peak memory is the index fit beside the clustering; the
    run's fit must hold its own reference). Returns (index, timings)."""
    t0 = time.perf_counter()
    # Near-duplicates: same artist and the same title once version markers
    # ("Live", "Remastered 2011", "feat. …") are stripped (clustering.ml.titles).
    dup = dup_keys(catalog.name, catalog.artist_id)
    t1 = time.perf_counter()
    key_hashes = public_id_hashes(catalog.external_id)
    if release:
        catalog.texts_release()
    t2 = time.perf_counter()
    members = artist_credit_pairs(catalog.artist_id)
    t3 = time.perf_counter()
    index = SimilarityIndex().fit(
        ids=catalog.ids,
        X=catalog.features_take() if release else catalog.X,
        year=catalog.release_year,
        popularity=catalog.popularity,
        artist=catalog.artist_id,
        dup_keys=dup,
        # float32 (what the index stores), not a float64 copy of four columns
        extra=np.column_stack(
            [
                np.asarray(c, dtype=np.float32)
                for c in (catalog.key, catalog.mode, catalog.popularity, catalog.time_signature)
            ]
        ),
        labels=labels,
        genre_rows=catalog.genre_rows,
        genre_names=catalog.genre_names,
        genre_codes=catalog.genre_codes,
        key_hashes=key_hashes,
        artist_members=members,
    )
    timings = {"dup_keys": t1 - t0, "key_hashes": t2 - t1, "credits": t3 - t2, "fit": time.perf_counter() - t3}
    return index, timings


def similarity_index_save(*, run_id: int, index: SimilarityIndex) -> tuple[str, str]:
    """Save a run's index with its artifacts: (path, sha256)."""
    return index_write(index=index, run_id=run_id)


def similarity_index_build(*, run_id: int, catalog: CatalogColumns, labels: np.ndarray) -> tuple[str, str, dict]:
    """Build and save the similar-song index of a run over the songs it
    trained on: ``catalog`` the run's one read of the catalog, ``labels``
    their clusters. Returns (path, sha256, timings)."""
    index, timings = similarity_index_fit(catalog=catalog, labels=labels)
    t = time.perf_counter()
    path, digest = similarity_index_save(run_id=run_id, index=index)
    timings["save"] = time.perf_counter() - t
    return path, digest, timings
