"""Similar songs, recommendations, song paths and generated playlists.

The index (clustering.ml.similarity) is built when a run trains, saved
beside the model artifact (numpy arrays, `*.part` then rename, sha256 on
the run) and loaded once per process, cached by (run id, sha256) like the
model: activating another run is picked up by the next request of every
web process. Songs imported after the run trained are not in its index
until the next retrain; as seeds they are embedded from their own data.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection

from songs.features import FEATURE_NAMES
from songs.models import Song

from .ml.similarity import ATTRIBUTES, SimilarityIndex
from .models import Cluster, TrainingRun
from .services import ArtifactError, TrainingError, _sha256, active_run

# Attribute bounds accepted by similar songs and recommendations, in Spotify's
# units (duration in ms, loudness in dB, tempo in BPM, popularity 0-100).
ATTRIBUTE_RANGES: dict[str, tuple[float, float]] = {
    "acousticness": (0, 1), "danceability": (0, 1), "energy": (0, 1), "instrumentalness": (0, 1),
    "liveness": (0, 1), "loudness": (-60, 5), "speechiness": (0, 1), "tempo": (0, 300), "valence": (0, 1),
    "duration_ms": (0, 3_600_000), "key": (0, 11), "mode": (0, 1), "popularity": (0, 100),
    "time_signature": (0, 11),
}
assert set(ATTRIBUTE_RANGES) == set(ATTRIBUTES)

MAX_SEEDS = 5
PATH_LENGTH = (3, 50)


class SimilarityError(Exception):
    """A request the index cannot answer as asked (message says why)."""


# --- building and loading ------------------------------------------------------


def external_id_hashes(external_ids) -> np.ndarray:
    """int64 hashes of public song ids, the same in every process (blake2b:
    ~1 µs per id, where pandas' hash_array costs ~1 ms for a single one)."""
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(str(e).encode(), digest_size=8).digest(), "little", signed=True)
         for e in external_ids),
        dtype=np.int64, count=len(external_ids),
    )


def _catalog_attributes(ids: np.ndarray) -> dict[str, Any]:
    """Per-song data the index needs beyond the ten features, aligned to ``ids``
    (sorted); songs deleted since the features were read are marked missing."""
    n = len(ids)
    out = {
        "found": np.zeros(n, dtype=bool), "artist": np.zeros(n, dtype=np.int64),
        "year": np.full(n, np.nan), "extra": np.full((n, 4), np.nan), "dup": np.zeros(n, dtype=np.int64),
        "key_hash": np.zeros(n, dtype=np.int64),
    }
    genre_rows: list[np.ndarray] = []
    genre_names: list[np.ndarray] = []
    table = Song._meta.db_table
    # Exact duplicates: same artist and the same title up to case and spaces.
    # Postgres hashes the titles itself rather than shipping a million strings.
    title = "hashtextextended(lower(btrim(name)), artist_id)" if connection.vendor == "postgresql" else "name"
    sql = (f"SELECT id, artist_id, {title}, release_year, popularity, key, mode, time_signature, genres, "
           f"external_id FROM {table} ORDER BY id")
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql)
        while rows := cursor.fetchmany(100_000):
            frame = pd.DataFrame(rows, columns=["id", "artist", "name", "year", "popularity", "key", "mode",
                                                "time_signature", "genres", "external_id"])
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
            if connection.vendor == "postgresql":
                out["dup"][pos] = frame["name"].to_numpy(np.int64)
            else:
                title = frame["name"].astype(str).str.strip().str.lower().to_numpy(dtype=object)
                out["dup"][pos] = (pd.util.hash_array(title).astype(np.int64) ^ (artist * 0x9E3779B1)).astype(np.int64)
            rows_, names_ = _genre_pairs(frame["genres"].to_numpy(dtype=object), pos)
            genre_rows.append(rows_)
            genre_names.append(names_)
    out["genre_rows"] = np.concatenate(genre_rows) if genre_rows else np.empty(0, dtype=np.int64)
    out["genre_names"] = np.concatenate(genre_names) if genre_names else np.empty(0, dtype=object)
    return out


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
        ids=ids[keep], X=X[keep], year=data["year"][keep], popularity=data["extra"][keep, 2],
        artist=data["artist"][keep], dup_keys=data["dup"][keep], extra=data["extra"][keep], labels=labels[keep],
        genre_rows=remap[data["genre_rows"][genre_keep]], genre_names=data["genre_names"][genre_keep],
        key_hashes=data["key_hash"][keep],
    )
    t2 = time.perf_counter()
    model_dir = Path(settings.MODEL_DIR)
    model_dir.mkdir(parents=True, exist_ok=True)
    final = model_dir / f"run-{run_id}.index.npz"
    part = model_dir / f"run-{run_id}.index.npz.part"
    with open(part, "wb") as fh:
        np.savez(fh, **index.to_arrays())
        fh.flush()
        os.fsync(fh.fileno())
    digest = _sha256(part)
    os.replace(part, final)
    timings = {"read": t1 - t0, "fit": t2 - t1, "save": time.perf_counter() - t2}
    return str(final), digest, timings


_INDEX_CACHE: dict[tuple[int, str], SimilarityIndex] = {}


def similarity_index_load(run: TrainingRun) -> SimilarityIndex:
    """The run's index, loaded once per process and cached by (run id, sha256)."""
    key = (run.pk, run.index_sha256)
    cached = _INDEX_CACHE.get(key)  # one read: another thread may clear the cache
    if cached is not None:
        return cached
    path = Path(run.index_path) if run.index_path else None
    if path is None or not path.is_file():
        raise ArtifactError(
            f"the similar-song index of run #{run.pk} is missing ({run.index_path or 'never built'}); retrain"
        )
    digest = _sha256(path)
    if digest != run.index_sha256:
        raise ArtifactError(
            f"the similar-song index of run #{run.pk} was altered: sha256 {digest[:12]}… but the run "
            f"recorded {run.index_sha256[:12]}…"
        )
    try:
        with np.load(path, allow_pickle=False) as arrays:
            index = SimilarityIndex.from_arrays(arrays)
    except (OSError, ValueError, KeyError) as exc:
        raise ArtifactError(f"the similar-song index of run #{run.pk} cannot be read: {exc}") from None
    _INDEX_CACHE.clear()  # one active index per process
    _INDEX_CACHE[key] = index
    return index


_ACTIVE: dict[str, Any] = {"run": None, "checked": -1e9}


def active_index() -> tuple[TrainingRun, SimilarityIndex]:
    """The active run and its index; TrainingError without a model, ArtifactError when unreadable.

    Which run is active is asked of the database at most every
    MODEL_RECHECK_SECONDS per process (default 1 s): a query saved on every
    request of the hot path, and an activation still reaches every process
    within a second, without a restart.
    """
    now = time.monotonic()
    run = _ACTIVE["run"]
    if run is None or now - _ACTIVE["checked"] >= settings.MODEL_RECHECK_SECONDS:
        run = active_run()
        _ACTIVE.update(run=run, checked=now)
    if run is None:
        raise TrainingError("no model is active yet: train one first")
    return run, similarity_index_load(run)


# --- songs as the API shows them -----------------------------------------------

_FEATURES_SQL = ", ".join(f"s.{name}" for name in FEATURE_NAMES)


class SongRecord(dict):
    """A song in the API's shape (the fields of songs.api.SongSerializer), read
    with one raw query; ``pk`` and ``artist_pk`` ride along. The similar-songs
    path is latency-bound: model instances plus DRF serialisation cost more
    than the search itself."""

    __slots__ = ("pk", "artist_pk")

    def feature_vector(self) -> list[float]:
        return [self[name] for name in FEATURE_NAMES]


def song_records(*, ids=None, external_ids=None) -> dict:
    """{song id: SongRecord} for song ids, or {external id: SongRecord} for external ids."""
    by_external = external_ids is not None
    keys = list(external_ids if by_external else ids)
    if not keys:
        return {}
    column = "s.external_id" if by_external else "s.id"
    sql = (
        f"SELECT s.id, s.artist_id, s.external_id, s.name, a.name, a.external_id, s.album, s.genres, s.popularity, "
        f"s.explicit, s.release_date, s.release_year, {_FEATURES_SQL}, s.key, s.mode, s.time_signature, "
        f"s.cluster_id, c.name, s.map_x, s.map_y "
        f"FROM {Song._meta.db_table} s JOIN songs_artist a ON a.id = s.artist_id "
        f"LEFT JOIN {Cluster._meta.db_table} c ON c.id = s.cluster_id "
        f"WHERE {column} IN ({', '.join(['%s'] * len(keys))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [str(k) if by_external else int(k) for k in keys])
        rows = cursor.fetchall()
    out = {}
    n_feat = len(FEATURE_NAMES)
    for row in rows:
        (pk, artist_pk, external_id, name, artist, artist_id, album, genres, popularity, explicit, released,
         year) = row[:12]
        features = row[12:12 + n_feat]
        key, mode, time_signature, cluster_id, cluster_name, map_x, map_y = row[12 + n_feat:]
        record = SongRecord(
            id=external_id, name=name, artist=artist, artist_id=artist_id, album=album,
            genres=json.loads(genres) if isinstance(genres, str) else (genres or []),
            popularity=popularity, explicit=None if explicit is None else bool(explicit),
            release_date=released if released is None or isinstance(released, str) else released.isoformat(),
            release_year=year,
        )
        record.update(zip(FEATURE_NAMES, features))
        record.update(key=key, mode=mode, time_signature=time_signature,
                      cluster=None if cluster_id is None else {"id": cluster_id, "name": cluster_name},
                      map_x=map_x, map_y=map_y)
        record.pk, record.artist_pk = pk, artist_pk
        out[external_id if by_external else pk] = record
    return out


def song_record_get(*, external_id: str) -> SongRecord | None:
    return song_records(external_ids=[external_id]).get(external_id)


def songs_for_export(records: list[SongRecord]) -> list[Song]:
    """The Song objects (artist and cluster selected) behind records, in order: playlist files want models."""
    songs = Song.objects.select_related("artist", "cluster").in_bulk([r.pk for r in records])
    return [songs[r.pk] for r in records if r.pk in songs]


# --- seeds -----------------------------------------------------------------------


@dataclass
class Seed:
    kind: str  # song | artist | genre
    id: str
    vector: np.ndarray
    attributes: np.ndarray | None = None
    row: int = -1
    dup_key: int | None = None


def _song_seed(index: SimilarityIndex, song: SongRecord) -> Seed:
    row = int(index.rows_of([song.pk])[0])
    if row >= 0:
        return Seed("song", song["id"], index.vector(row), index.attributes_[row], row, int(index.dup_keys_[row]))
    # Imported after the run trained: embed it from its own data.
    X = np.array([song.feature_vector()], dtype=np.float64)
    missing = [np.nan if song[name] is None else song[name] for name in ("release_year", "popularity")]
    vector = index.embed(X=X, year=[missing[0]], popularity=[missing[1]], artist=[song.artist_pk])[0]
    extra = [song[name] for name in ("key", "mode", "popularity", "time_signature")]
    attributes = np.array([*X[0], *[np.nan if v is None else v for v in extra]], dtype=np.float32)
    return Seed("song", song["id"], vector, attributes)


def seeds_resolve(*, index: SimilarityIndex, songs: list[str] = (), artists: list[str] = (),
                  genres: list[str] = ()) -> list[Seed]:
    """Seeds from external song ids, external artist ids (or exact artist names)
    and genre names; SimilarityError naming every unknown one."""
    from songs.models import Artist

    seeds: list[Seed] = []
    unknown: list[str] = []
    found = song_records(external_ids=list(songs))
    for sid in songs:
        if sid in found:
            seeds.append(_song_seed(index, found[sid]))
        else:
            unknown.append(f"song {sid!r}")
    for aid in artists:
        artist = Artist.objects.filter(external_id=aid).first() or Artist.objects.filter(name=aid).first()
        rows = np.flatnonzero(index.artists_ == artist.pk) if artist is not None else np.empty(0)
        if artist is None or not len(rows):
            unknown.append(f"artist {aid!r}" + ("" if artist is None else " (no songs in the active model)"))
            continue
        seeds.append(Seed("artist", aid, index.vector(rows).mean(axis=0)))
    for genre in genres:
        vector = index.genre_vector(genre.strip().casefold())
        if vector is None:
            unknown.append(f"genre {genre!r}")
        else:
            seeds.append(Seed("genre", genre, vector))
    if unknown:
        raise SimilarityError(f"unknown seed(s): {', '.join(unknown)}")
    return seeds


# --- results ---------------------------------------------------------------------


def _songs_by_row(index: SimilarityIndex, rows: np.ndarray) -> dict[int, SongRecord]:
    """{row: SongRecord} for index rows; songs deleted since the run trained are left out."""
    ids = index.ids_[rows].tolist()
    records = song_records(ids=ids)
    return {int(r): records[i] for r, i in zip(rows.tolist(), ids) if i in records}


def _within(record: SongRecord, bounds: dict | None) -> bool:
    """The database's values meet every bound: the index's mask compares
    float32 copies, which may round a value across a bound by ~1e-7."""
    for name, (low, high) in (bounds or {}).items():
        value = record[name]
        if value is None or (low is not None and value < low) or (high is not None and value > high):
            return False
    return True


def _mask(index: SimilarityIndex, bounds: dict[str, tuple[float | None, float | None]], *,
          cluster_label: int | None = None, exclude_artist: int | None = None) -> np.ndarray | None:
    mask = index.attribute_mask(bounds)
    if cluster_label is not None:
        same = index.labels_ == cluster_label
        mask = same if mask is None else mask & same
    if exclude_artist is not None:
        other = index.artists_ != exclude_artist
        mask = other if mask is None else mask & other
    return mask


def song_similar(*, external_id: str, limit: int = 10, same_cluster: bool = False,
                 max_per_artist: int | None = None, exclude_artist: bool = False, bounds: dict | None = None,
                 _trust_index: bool = True) -> dict[str, Any] | None:
    """The songs nearest to the song ``external_id`` in the active model's
    index, with a similarity in (0, 1] and the features closest to / furthest
    from it; ``{"seed", "run", "results"}``, or None when no song has that id.
    Never the song itself nor an exact duplicate (same artist and title).

    A song of the index is found by the hash of its id, and the seed is read
    with the results in one query; a song imported after the run trained is
    read first and embedded from its own data.
    """
    run, index = active_index()
    row = index.row_of_key_hash(int(external_id_hashes([external_id])[0])) if _trust_index else -1
    record = None
    if row >= 0:
        seed = Seed("song", external_id, index.vector(row), index.attributes_[row], row, int(index.dup_keys_[row]))
        artist_pk = int(index.artists_[row])
    else:
        record = song_record_get(external_id=external_id)
        if record is None:
            return None
        seed = _song_seed(index, record)
        artist_pk = record.artist_pk
    label = None
    if same_cluster:
        if seed.row >= 0:
            label = int(index.labels_[seed.row])
        else:
            cluster = Cluster.objects.filter(pk=record["cluster"]["id"]).first() if record["cluster"] else None
            label = cluster.label if cluster is not None and cluster.run_id == run.pk else -2
    mask = _mask(index, bounds or {}, cluster_label=label, exclude_artist=artist_pk if exclude_artist else None)
    keys = [seed.dup_key] if seed.dup_key is not None else []
    rows, dist = index.query(seed.vector, k=limit + 5, mask=mask, exclude_rows=[seed.row] if seed.row >= 0 else [],
                             exclude_keys=keys, max_per_artist=max_per_artist)
    seed_pk = int(index.ids_[row]) if record is None else None
    records = song_records(ids=[*([seed_pk] if seed_pk is not None else []), *index.ids_[rows].tolist()])
    if record is None:
        record = records.get(seed_pk)
        if record is None or record["id"] != external_id:  # deleted since training, or a hash collision
            return song_similar(external_id=external_id, limit=limit, same_cluster=same_cluster,
                                max_per_artist=max_per_artist, exclude_artist=exclude_artist, bounds=bounds,
                                _trust_index=False)
    by_row = {int(r): records[i] for r, i in zip(rows.tolist(), index.ids_[rows].tolist())
              if i in records and _within(records[i], bounds)}
    # A duplicate of a song not in the index has no key there: compare by data.
    title = record["name"].strip().lower()
    pairs = [(r, d) for r, d in zip(rows.tolist(), dist.tolist()) if r in by_row and not (
        by_row[r].artist_pk == artist_pk and by_row[r]["name"].strip().lower() == title)][:limit]
    explanations = index.explain(seed.attributes, [r for r, _ in pairs]) if pairs else []
    similarity = index.similarity([d for _, d in pairs])
    return {
        "seed": record,
        "run": run.pk,
        "results": [
            {"song": by_row[r], "similarity": round(float(s), 4), "distance": round(float(d), 4), "explanation": e}
            for (r, d), s, e in zip(pairs, similarity, explanations)
        ],
    }


def recommendations_get(*, seed_songs: list[str] = (), seed_artists: list[str] = (), seed_genres: list[str] = (),
                        limit: int = 20, bounds: dict | None = None, targets: dict[str, float] | None = None,
                        max_per_artist: int | None = 3) -> dict[str, Any]:
    """Spotify-style recommendations: songs near the seeds that satisfy every
    min/max bound, ranked by closeness to the nearest seed plus the mean
    distance to the targets (each target weighed equally, in catalog
    standard deviations). Seeds are never returned."""
    n_seeds = len(seed_songs) + len(seed_artists) + len(seed_genres)
    if not 1 <= n_seeds <= MAX_SEEDS:
        raise SimilarityError(f"give between 1 and {MAX_SEEDS} seeds in all (seed_songs, seed_artists, "
                              f"seed_genres); got {n_seeds}")
    run, index = active_index()
    seeds = seeds_resolve(index=index, songs=list(seed_songs), artists=list(seed_artists), genres=list(seed_genres))
    mask = _mask(index, bounds or {})
    exclude_rows = [s.row for s in seeds if s.row >= 0]
    exclude_keys = [s.dup_key for s in seeds if s.dup_key is not None]
    pool = max(100, 5 * limit)
    candidates: dict[int, float] = {}
    seed_info = []
    for seed in seeds:
        near, _ = index.search(seed.vector, k=pool)
        passing = near if mask is None else near[mask[near]]
        seed_info.append({"id": seed.id, "type": seed.kind.upper(), "href": None,
                          "initialPoolSize": int(len(near)), "afterFilteringSize": int(len(passing))})
        rows, dist = index.query(seed.vector, k=pool, mask=mask, exclude_rows=exclude_rows, exclude_keys=exclude_keys)
        for r, d in zip(rows.tolist(), dist.tolist()):
            candidates[r] = min(candidates.get(r, np.inf), d / index.distance_scale_)
    if not candidates:
        return {"run": run.pk, "seeds": seed_info, "tracks": []}
    rows = np.fromiter(candidates, dtype=np.int64, count=len(candidates))
    score = np.fromiter(candidates.values(), dtype=np.float64, count=len(candidates))
    if targets:
        cols = [ATTRIBUTES.index(name) for name in targets]
        want = np.array(list(targets.values()), dtype=np.float64)
        values = index.attributes_[rows][:, cols].astype(np.float64)
        gap = np.abs(values - want) / index.attribute_std_[cols]
        score = score + np.nanmean(np.where(np.isfinite(gap), gap, 3.0), axis=1)
    order = np.argsort(score, kind="stable")
    chosen: list[int] = []
    per_artist: dict[int, int] = {}
    seen = set(exclude_keys)
    for r in rows[order].tolist():
        key, artist = int(index.dup_keys_[r]), int(index.artists_[r])
        if key in seen or (max_per_artist and per_artist.get(artist, 0) >= max_per_artist):
            continue
        seen.add(key)
        per_artist[artist] = per_artist.get(artist, 0) + 1
        chosen.append(r)
        if len(chosen) >= limit + 5:
            break
    by_row = _songs_by_row(index, np.asarray(chosen, dtype=np.int64))
    seed_ids = set(seed_songs)
    tracks = [by_row[r] for r in chosen
              if r in by_row and by_row[r]["id"] not in seed_ids and _within(by_row[r], bounds)][:limit]
    return {"run": run.pk, "seeds": seed_info, "tracks": tracks}


def song_path(*, source: SongRecord, target: SongRecord, length: int = 10, max_per_artist: int = 1) -> dict[str, Any]:
    """Songs moving smoothly from ``source`` to ``target``: the nearest unused
    song to evenly spaced points on the line between them, no song (or exact
    duplicate) twice, an artist at most ``max_per_artist`` times between the
    two ends and never twice in a row."""
    low, high = PATH_LENGTH
    if not low <= length <= high:
        raise SimilarityError(f"length must be between {low} and {high}, got {length}")
    if source.pk == target.pk:
        raise SimilarityError("from and to are the same song")
    run, index = active_index()
    a, b = _song_seed(index, source), _song_seed(index, target)
    used_rows = [r for r in (a.row, b.row) if r >= 0]
    used_keys = [k for k in (a.dup_key, b.dup_key) if k is not None]
    artist_count: dict[int, int] = {}
    previous_artist = source.artist_pk
    steps: list[int] = []
    for i in range(1, length - 1):
        point = a.vector + (b.vector - a.vector) * (i / (length - 1))
        banned = {a for a, c in artist_count.items() if c >= max_per_artist} | {previous_artist}
        if i == length - 2:
            banned.add(target.artist_pk)
        rows, _ = index.query(point, k=30, exclude_rows=used_rows, exclude_keys=used_keys)
        allowed = [r for r in rows.tolist() if int(index.artists_[r]) not in banned]
        if not allowed:
            # The 30 nearest are all by artists already used up: search again
            # among the other artists' songs only (rules before closeness).
            mask = ~np.isin(index.artists_, np.fromiter(banned, dtype=np.int64))
            allowed, _ = index.query(point, k=1, mask=mask, exclude_rows=used_rows, exclude_keys=used_keys)
            allowed = allowed.tolist()
        if not allowed:
            break  # the catalog has no song left that keeps the rules
        pick = int(allowed[0])
        steps.append(pick)
        used_rows.append(pick)
        used_keys.append(int(index.dup_keys_[pick]))
        artist = int(index.artists_[pick])
        artist_count[artist] = artist_count.get(artist, 0) + 1
        previous_artist = artist
    by_row = _songs_by_row(index, np.asarray(steps, dtype=np.int64))
    middle = [by_row[r] for r in steps if r in by_row]
    vectors = [a.vector] + [index.vector(r) for r in steps if r in by_row] + [b.vector]
    gaps = [float(np.linalg.norm(vectors[i + 1] - vectors[i])) / index.distance_scale_ for i in range(len(vectors) - 1)]
    return {"run": run.pk, "songs": [source, *middle, target], "steps": [round(g, 3) for g in gaps]}


def songs_nearest_features(*, X: np.ndarray, k: int) -> list[list[tuple[SongRecord, float, float]]]:
    """For each feature vector (FEATURE_NAMES order, real units; no artist,
    year or popularity: those count as the catalog mean), the k nearest songs
    of the index as (song, distance, similarity)."""
    run, index = active_index()
    n = len(X)
    vectors = index.embed(X=X, year=np.full(n, np.nan), popularity=np.full(n, np.nan), artist=np.full(n, -1))
    found = [index.query(v, k=k) for v in vectors]
    rows = np.concatenate([r for r, _ in found]) if found else np.empty(0, dtype=np.int64)
    by_row = _songs_by_row(index, rows)
    return [
        [(by_row[r], round(float(d), 4), round(float(index.similarity(d)), 4))
         for r, d in zip(r_.tolist(), d_.tolist()) if r in by_row]
        for r_, d_ in found
    ]


def cluster_playlist(*, cluster: Cluster, limit: int = 50, max_per_artist: int = 2) -> list[SongRecord]:
    """Representative songs of a cluster: nearest to its centre (the mean of
    its songs' vectors), at most ``max_per_artist`` per artist."""
    run, index = active_index()
    if cluster.run_id != run.pk:
        raise SimilarityError(f"cluster {cluster.pk} belongs to run #{cluster.run_id}, not the active run #{run.pk}")
    mask = index.labels_ == cluster.label
    if not mask.any():
        return []
    centre = np.mean(index.vectors_[mask], axis=0, dtype=np.float32)
    rows, _ = index.query(centre, k=limit + 5, mask=mask, max_per_artist=max_per_artist)
    by_row = _songs_by_row(index, rows)
    return [by_row[r] for r in rows.tolist() if r in by_row][:limit]


def song_radio(*, song: SongRecord, limit: int = 25) -> list[SongRecord]:
    """A radio from a seed song: the seed, then similar songs with one song per
    artist apart from the seed's own (variety over sameness)."""
    similar = song_similar(external_id=song["id"], limit=limit - 1, max_per_artist=1)
    return [song, *[item["song"] for item in similar["results"]]]


# --- a cluster's songs, in order, from the index ------------------------------------


def _ordered_slice(vals: np.ndarray, ids: np.ndarray, key: tuple | None, descending: bool,
                   size: int) -> np.ndarray:
    """Positions of the first ``size`` items after ``key`` = (value, id) in
    (value, id) order (reversed when descending), without sorting everything:
    a partition finds the cut, a sort orders the few rows before it."""
    if descending:
        vals, ids = -vals, -ids
        key = None if key is None else (-key[0], -key[1])
    candidates = np.arange(len(vals))
    if key is not None:
        v, i = key
        candidates = np.flatnonzero((vals > v) | ((vals == v) & (ids > i)))
    if len(candidates) > size:
        cut = np.partition(vals[candidates], size - 1)[size - 1]
        candidates = candidates[vals[candidates] <= cut]
    order = np.lexsort((ids[candidates], vals[candidates]))
    return candidates[order[:size]]


def cluster_song_keys(*, cluster_id: int, sort: str, desc: bool, after: tuple | None, before: tuple | None,
                      size: int) -> tuple[list[tuple[Any, int]], bool] | None:
    """One keyset page of a cluster's songs ordered by (sort, id), from the
    active run's index: [(sort value, song id)] and whether more rows follow
    in the walking direction. ``sort`` is "id" or a feature. None when the
    index cannot answer (no model, the cluster of another run): the caller
    falls back to the database. At 1M songs this takes a few ms where the
    database needs an index per sortable column (every one of them slowing
    the import and the activation)."""
    try:
        run, index = active_index()
    except (TrainingError, ArtifactError):
        return None
    if not run.index_labels_current:
        return None  # the songs' clusters were predicted anew (a rollback): the database knows them
    label = Cluster.objects.filter(pk=cluster_id, run_id=run.pk).values_list("label", flat=True).first()
    if label is None or (sort != "id" and sort not in FEATURE_NAMES):
        return None
    rows = np.flatnonzero(index.labels_ == label)
    ids = index.ids_[rows]
    vals = ids.astype(np.float64) if sort == "id" else index.attributes_[rows, ATTRIBUTES.index(sort)].astype(np.float64)
    backwards = before is not None and after is None
    key = before if backwards else after
    if key is not None:
        key = (float(np.float32(key[0])) if sort != "id" else float(key[1]), int(key[1]))
    picked = _ordered_slice(vals, ids, key, desc != backwards, size + 1)
    more = len(picked) > size
    picked = picked[:size]
    keys = [(int(ids[p]) if sort == "id" else float(vals[p]), int(ids[p])) for p in picked]
    if backwards:
        keys.reverse()
    return keys, more
