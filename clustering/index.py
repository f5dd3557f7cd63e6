"""Building a run's similar-song index from the catalog.

The index itself is the pure ML core's (:class:`clustering.ml.similarity.SimilarityIndex`);
this module reads what it needs beyond the ten features (artist, year,
popularity, key/mode/time signature, genres, a near-duplicate key per
title) and
saves it with the run's artifacts. pandas is imported here, in the training
process, not in web processes.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from django.db import connection

from songs.models import Artist, Song

from .artifacts import index_write
from .ml.credits import credit_pairs
from .ml.similarity import SimilarityIndex, external_id_hashes
from .ml.titles import MARKED_RE2, title_key


def _catalog_attributes(ids: np.ndarray) -> dict[str, Any]:
    """Per-song data the index needs beyond the ten features, aligned to ``ids``
    (sorted); songs deleted since the features were read are marked missing."""
    n = len(ids)
    out = {
        "found": np.zeros(n, dtype=bool),
        "artist": np.zeros(n, dtype=np.int64),
        "year": np.full(n, np.nan),
        "extra": np.full((n, 4), np.nan),
        "dup": np.zeros(n, dtype=np.int64),
        "key_hash": np.zeros(n, dtype=np.int64),
    }
    genre_rows: list[np.ndarray] = []
    genre_names: list[np.ndarray] = []
    table = Song._meta.db_table
    # Near-duplicates: same artist and the same title once version markers
    # ("Live", "Remastered 2011", "feat. …") are stripped (clustering.ml.titles).
    sql = (
        f"SELECT id, artist_id, name, release_year, popularity, key, mode, time_signature, genres, "
        f"external_id FROM {table} ORDER BY id"
    )
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql)
        while rows := cursor.fetchmany(100_000):
            frame = pd.DataFrame(
                rows,
                columns=[
                    "id",
                    "artist",
                    "name",
                    "year",
                    "popularity",
                    "key",
                    "mode",
                    "time_signature",
                    "genres",
                    "external_id",
                ],
            )
            pos = np.searchsorted(ids, frame["id"].to_numpy(np.int64))
            pos_c = np.clip(pos, 0, max(n - 1, 0))
            hit = (pos < n) & (ids[pos_c] == frame["id"].to_numpy(np.int64)) if n else np.zeros(len(frame), bool)
            frame, pos = frame[hit], pos[hit]
            if not len(frame):
                continue
            out["found"][pos] = True
            out["key_hash"][pos] = external_id_hashes(frame["external_id"].to_numpy(dtype=object))
            artist = frame["artist"].to_numpy(np.int64)
            out["artist"][pos] = artist
            out["year"][pos] = frame["year"].to_numpy(np.float64, na_value=np.nan)
            for j, col in enumerate(["key", "mode", "popularity", "time_signature"]):
                out["extra"][pos, j] = frame[col].to_numpy(np.float64, na_value=np.nan)
            out["dup"][pos] = dup_keys(frame["name"].to_numpy(dtype=object), artist)
            rows_, names_ = _genre_pairs(frame["genres"].to_numpy(dtype=object), pos)
            genre_rows.append(rows_)
            genre_names.append(names_)
    out["genre_rows"] = np.concatenate(genre_rows) if genre_rows else np.empty(0, dtype=np.int64)
    out["genre_names"] = np.concatenate(genre_names) if genre_names else np.empty(0, dtype=object)
    return out


def dup_keys(titles: np.ndarray, artists: np.ndarray) -> np.ndarray:
    """int64 keys equal for near-duplicates: the same artist and the same
    :func:`~clustering.ml.titles.title_key` (stable across processes)."""
    # Most titles carry no version marker: Arrow normalises those in bulk, the
    # others go through title_key (faster than title_key on every title).
    lowered = pc.utf8_trim_whitespace(
        pc.replace_substring_regex(
            pc.utf8_lower(pc.utf8_normalize(pa.array(titles, type=pa.string()), "NFKC")), r"[ \t\n\r\f\v]+", " "
        )
    )
    keys = lowered.to_numpy(zero_copy_only=False).astype(object)
    # Non-ASCII titles too: Python's and Arrow's lower case differ on a few letters ("İ").
    marked = np.flatnonzero(
        pc.match_substring_regex(lowered, MARKED_RE2 + r"|[^\x00-\x7f]").to_numpy(zero_copy_only=False)
    )
    keys[marked] = [title_key(t) for t in np.asarray(titles, dtype=object)[marked]]
    return (pd.util.hash_array(keys).astype(np.int64) ^ (np.asarray(artists, dtype=np.int64) * 0x9E3779B1)).astype(
        np.int64
    )


def _genre_pairs(genres: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, genre) pairs for songs at rows ``pos`` with genre lists ``genres``
    (JSON text or lists). Songs share few distinct lists (an artist's genres),
    so each distinct list is parsed once."""
    keys = np.array([g if isinstance(g, str) else json.dumps(g or []) for g in genres], dtype=object)
    codes, uniques = pd.factorize(keys)
    lists = [[str(x).strip().lower() for x in json.loads(u)] for u in uniques]
    lengths = np.array([len(item) for item in lists], dtype=np.int64)
    flat = np.array([x for item in lists for x in item], dtype=object)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    per_song = lengths[codes]
    total = int(per_song.sum())
    if not total:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=object)
    within = np.arange(total) - np.repeat(np.cumsum(per_song) - per_song, per_song)
    return np.repeat(pos, per_song).astype(np.int64), flat[np.repeat(starts[codes], per_song) + within]


def catalog_genre_pairs(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, codes, genres): song ``ids[rows[i]]`` carries genre
    ``genres[codes[i]]``, for the sorted song ``ids`` a run trains on (the
    clusters' top genres). Reads only the genre lists, in chunks."""
    n = len(ids)
    rows: list[np.ndarray] = []
    names: list[np.ndarray] = []
    with connection.chunked_cursor() as cursor:
        cursor.execute(f"SELECT id, genres FROM {Song._meta.db_table} ORDER BY id")
        while chunk := cursor.fetchmany(100_000):
            song_ids = np.fromiter((r[0] for r in chunk), dtype=np.int64, count=len(chunk))
            pos = np.searchsorted(ids, song_ids)
            hit = (pos < n) & (ids[np.clip(pos, 0, max(n - 1, 0))] == song_ids) if n else np.zeros(len(chunk), bool)
            if not hit.any():
                continue
            genres = np.array([chunk[i][1] for i in np.flatnonzero(hit)], dtype=object)
            rows_, names_ = _genre_pairs(genres, pos[hit])
            rows.append(rows_)
            names.append(names_)
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0, dtype=object)
    codes, uniques = pd.factorize(np.concatenate(names))
    return np.concatenate(rows), codes.astype(np.int64), np.asarray(uniques, dtype=object)


def artist_credit_pairs(artist_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(artist id, member code) pairs naming the artists of each credit
    among ``artist_ids`` ("Lady Gaga, Bruno Mars": two members)."""
    wanted = np.unique(np.asarray(artist_ids, dtype=np.int64))
    ids: list[int] = []
    names: list[str] = []
    with connection.chunked_cursor() as cursor:
        cursor.execute(f"SELECT id, name FROM {Artist._meta.db_table} ORDER BY id")
        while rows := cursor.fetchmany(100_000):
            chunk = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            pos = np.clip(np.searchsorted(wanted, chunk), 0, max(len(wanted) - 1, 0))
            for i in np.flatnonzero(wanted[pos] == chunk) if len(wanted) else ():
                ids.append(rows[i][0])
                names.append(rows[i][1])
    return credit_pairs(ids, names)


def similarity_index_build(*, run_id: int, ids: np.ndarray, X: np.ndarray, labels: np.ndarray) -> tuple[str, str, dict]:
    """Build and save the similar-song index of a run over the songs it trained on.

    ``ids`` sorted, ``X`` their ten features, ``labels`` their clusters.
    Returns (path, sha256, timings).
    """
    t0 = time.perf_counter()
    data = _catalog_attributes(ids)
    keep = data["found"]
    remap = np.cumsum(keep) - 1  # genre rows follow the kept songs
    genre_keep = keep[data["genre_rows"]] if len(data["genre_rows"]) else np.zeros(0, dtype=bool)
    t1 = time.perf_counter()
    index = SimilarityIndex().fit(
        ids=ids[keep],
        X=X[keep],
        year=data["year"][keep],
        popularity=data["extra"][keep, 2],
        artist=data["artist"][keep],
        dup_keys=data["dup"][keep],
        extra=data["extra"][keep],
        labels=labels[keep],
        genre_rows=remap[data["genre_rows"][genre_keep]],
        genre_names=data["genre_names"][genre_keep],
        key_hashes=data["key_hash"][keep],
        artist_members=artist_credit_pairs(data["artist"][keep]),
    )
    t2 = time.perf_counter()
    path, digest = index_write(index=index, run_id=run_id)
    timings = {"read": t1 - t0, "fit": t2 - t1, "save": time.perf_counter() - t2}
    return path, digest, timings
