"""Discovery: similar songs, recommendations, song paths, radio and
generated playlists, answered from the active run's similar-song index.

The index (built by :mod:`clustering.index`, loaded and cached by
:mod:`clustering.artifacts`) covers the songs the run trained on; songs
imported after it are embedded from their own data when used as seeds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from songs.features import ATTRIBUTE_NAMES
from songs.models import Artist, Song
from songs.selectors import SongRecord, artist_records, song_record_get, song_records

from .artifacts import active_index
from .errors import SimilarityError
from .ml.similarity import ATTRIBUTES, SimilarityIndex, external_id_hashes
from .ml.variety import check_variety, pool_size, varied_pick
from .models import Cluster

assert set(ATTRIBUTE_NAMES) == set(ATTRIBUTES)

MAX_SEEDS = 5
PATH_LENGTH = (3, 50)


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


def seeds_resolve(
    *, index: SimilarityIndex, songs: list[str] = (), artists: list[str] = (), genres: list[str] = ()
) -> list[Seed]:
    """Seeds from external song ids, external artist ids (or exact artist names)
    and genre names; SimilarityError naming every unknown one."""
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


def _mask(
    index: SimilarityIndex,
    bounds: dict[str, tuple[float | None, float | None]],
    *,
    cluster_label: int | None = None,
    exclude_artist: int | None = None,
) -> np.ndarray | None:
    mask = index.attribute_mask(bounds)
    if cluster_label is not None:
        same = index.labels_ == cluster_label
        mask = same if mask is None else mask & same
    if exclude_artist is not None:
        other = index.artists_ != exclude_artist
        mask = other if mask is None else mask & other
    return mask


# --- exclusions (per request, and a signed-in user's blocklist) ---------------------------


def _genre_key(genre: str) -> str:
    return " ".join(str(genre).split()).casefold()


@dataclass
class Exclusions:
    """What a request leaves out: ``rows`` (index rows of excluded songs),
    ``artist_pks`` (artist ids) and ``genres`` (normalised names). Songs and
    artists are dropped candidate by candidate in the index's query (no
    catalog-sized mask); genres are not in the index, so a song carrying one is
    dropped after the songs are read (the services search a few more to make
    up for them)."""

    rows: tuple[int, ...] = ()
    artist_pks: frozenset[int] = frozenset()
    genres: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.rows or self.artist_pks or self.genres)

    def song_ok(self, record: SongRecord) -> bool:
        if record.artist_pk in self.artist_pks:
            return False
        if not self.genres:
            return True
        for genre in record.get("genres") or ():
            # A cell may still hold several genres ("hip hop, pop"): each counts.
            if any(_genre_key(part) in self.genres for part in str(genre).split(",")):
                return False
        return True

    def artist_ok(self, artist: dict) -> bool:
        if artist["pk"] in self.artist_pks:
            return False
        return not any(_genre_key(g) in self.genres for g in artist.get("genres") or ())

    def extra(self, limit: int) -> int:
        """How many more candidates to search when genres are filtered afterwards."""
        return 2 * limit + 20 if self.genres else 0

    def query_kwargs(self, exclude_rows=()) -> dict:
        """The index query's exclude_rows and exclude_artists."""
        return {"exclude_rows": [*exclude_rows, *self.rows], "exclude_artists": self.artist_pks}


def exclusions_resolve(
    *,
    index: SimilarityIndex,
    exclude_artists: Iterable[str] = (),
    exclude_songs: Iterable[str] = (),
    exclude_genres: Iterable[str] = (),
) -> Exclusions:
    """Exclusions from artist external ids (or exact names), song external
    ids and genre names; unknown ones exclude nothing (a blocked song may have
    left the catalog)."""
    artists, songs = sorted(set(exclude_artists)), sorted(set(exclude_songs))
    genres = frozenset(_genre_key(g) for g in exclude_genres if str(g).strip())
    artist_pks: set[int] = set()
    for start in range(0, len(artists), 500):  # under SQLite's bound-parameter limit
        chunk = artists[start : start + 500]
        found = dict(Artist.objects.filter(external_id__in=chunk).values_list("external_id", "pk"))
        artist_pks.update(found.values())
        # Names only for what is not an id (a blocklist holds ids: no scan of the artists by name).
        names = [a for a in chunk if a not in found]
        if names:
            artist_pks.update(Artist.objects.filter(name__in=names).values_list("pk", flat=True))
    song_pks: list[int] = []
    for start in range(0, len(songs), 500):
        song_pks.extend(Song.objects.filter(external_id__in=songs[start : start + 500]).values_list("pk", flat=True))
    rows = index.rows_of(song_pks) if song_pks else np.empty(0, dtype=np.int64)
    return Exclusions(rows=tuple(rows[rows >= 0].tolist()), artist_pks=frozenset(artist_pks), genres=genres)


def song_similar(
    *,
    external_id: str,
    limit: int = 10,
    same_cluster: bool = False,
    max_per_artist: int | None = None,
    exclude_artist: bool = False,
    bounds: dict | None = None,
    exclude_artists: Iterable[str] = (),
    exclude_songs: Iterable[str] = (),
    exclude_genres: Iterable[str] = (),
    _trust_index: bool = True,
) -> dict[str, Any] | None:
    """The songs nearest to the song ``external_id`` in the active model's
    index, with a similarity in (0, 1] and the features closest to / furthest
    from it; ``{"seed", "run", "results"}``, or None when no song has that id.
    Never the song itself nor an exact duplicate (same artist and title),
    nor a song of ``exclude_artists`` (external ids or names), ``exclude_songs``
    (external ids) or carrying one of ``exclude_genres``.

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
    excluded = exclusions_resolve(
        index=index, exclude_artists=exclude_artists, exclude_songs=exclude_songs, exclude_genres=exclude_genres
    )
    keys = [seed.dup_key] if seed.dup_key is not None else []
    rows, dist = index.query(
        seed.vector,
        k=limit + 5 + excluded.extra(limit),
        mask=mask,
        exclude_keys=keys,
        max_per_artist=max_per_artist,
        **excluded.query_kwargs([seed.row] if seed.row >= 0 else []),
    )
    seed_pk = int(index.ids_[row]) if record is None else None
    records = song_records(ids=[*([seed_pk] if seed_pk is not None else []), *index.ids_[rows].tolist()])
    if record is None:
        record = records.get(seed_pk)
        if record is None or record["id"] != external_id:  # deleted since training, or a hash collision
            return song_similar(
                external_id=external_id,
                limit=limit,
                same_cluster=same_cluster,
                max_per_artist=max_per_artist,
                exclude_artist=exclude_artist,
                bounds=bounds,
                exclude_artists=exclude_artists,
                exclude_songs=exclude_songs,
                exclude_genres=exclude_genres,
                _trust_index=False,
            )
    by_row = {
        int(r): records[i]
        for r, i in zip(rows.tolist(), index.ids_[rows].tolist())
        if i in records and _within(records[i], bounds) and excluded.song_ok(records[i])
    }
    # A duplicate of a song not in the index has no key there: compare by data.
    title = record["name"].strip().lower()
    pairs = [
        (r, d)
        for r, d in zip(rows.tolist(), dist.tolist())
        if r in by_row and not (by_row[r].artist_pk == artist_pk and by_row[r]["name"].strip().lower() == title)
    ][:limit]
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


def recommendations_get(
    *,
    seed_songs: list[str] = (),
    seed_artists: list[str] = (),
    seed_genres: list[str] = (),
    limit: int = 20,
    bounds: dict | None = None,
    targets: dict[str, float] | None = None,
    max_per_artist: int | None = 3,
    exclude_artists: Iterable[str] = (),
    exclude_songs: Iterable[str] = (),
    exclude_genres: Iterable[str] = (),
) -> dict[str, Any]:
    """Spotify-style recommendations: songs near the seeds that satisfy every
    min/max bound, ranked by closeness to the nearest seed plus the mean
    distance to the targets (each target weighed equally, in catalog
    standard deviations). Seeds are never returned, nor excluded artists,
    songs and genres (``exclude_*``, as :func:`song_similar`)."""
    n_seeds = len(seed_songs) + len(seed_artists) + len(seed_genres)
    if not 1 <= n_seeds <= MAX_SEEDS:
        raise SimilarityError(
            f"give between 1 and {MAX_SEEDS} seeds in all (seed_songs, seed_artists, seed_genres); got {n_seeds}"
        )
    run, index = active_index()
    seeds = seeds_resolve(index=index, songs=list(seed_songs), artists=list(seed_artists), genres=list(seed_genres))
    excluded = exclusions_resolve(
        index=index, exclude_artists=exclude_artists, exclude_songs=exclude_songs, exclude_genres=exclude_genres
    )
    mask = _mask(index, bounds or {})
    exclude_rows = [s.row for s in seeds if s.row >= 0]
    exclude_keys = [s.dup_key for s in seeds if s.dup_key is not None]
    pool = max(100, 5 * limit) + excluded.extra(limit)
    candidates: dict[int, float] = {}
    seed_info = []
    for seed in seeds:
        near, _ = index.search(seed.vector, k=pool)
        passing = near if mask is None else near[mask[near]]
        seed_info.append(
            {
                "id": seed.id,
                "type": seed.kind.upper(),
                "href": None,
                "initialPoolSize": len(near),
                "afterFilteringSize": len(passing),
            }
        )
        rows, dist = index.query(
            seed.vector, k=pool, mask=mask, exclude_keys=exclude_keys, **excluded.query_kwargs(exclude_rows)
        )
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
        if len(chosen) >= limit + 5 + excluded.extra(limit):
            break
    by_row = _songs_by_row(index, np.asarray(chosen, dtype=np.int64))
    seed_ids = set(seed_songs)
    tracks = [
        by_row[r]
        for r in chosen
        if r in by_row
        and by_row[r]["id"] not in seed_ids
        and _within(by_row[r], bounds)
        and excluded.song_ok(by_row[r])
    ][:limit]
    return {"run": run.pk, "seeds": seed_info, "tracks": tracks}


def genre_seeds() -> dict[str, int]:
    """{genre: songs} of the genres usable as seed_genres, from the active model's index."""
    _, index = active_index()
    return dict(zip(index.genres_.tolist(), index.genre_sizes_.tolist()))


def artists_related(
    *,
    external_id: str,
    limit: int = 20,
    exclude_artists: Iterable[str] = (),
    exclude_genres: Iterable[str] = (),
) -> dict[str, Any] | None:
    """Artists nearest to the artist ``external_id`` by the mean vector of
    their songs in the active model's index: ``{"artist", "run", "related"}``
    (artists as :func:`songs.selectors.artist_records` gives them, each with
    ``similarity`` in (0, 1]), or None when no artist has that id. An artist
    without songs in the index has no related artists. Artists of
    ``exclude_artists`` (external ids or names) or with a genre of
    ``exclude_genres`` are left out."""
    artist = artist_records(external_ids=[external_id]).get(external_id)
    if artist is None:
        return None
    run, index = active_index()
    excluded = exclusions_resolve(index=index, exclude_artists=exclude_artists, exclude_genres=exclude_genres)
    pks, dist = index.artists_near(artist["pk"], k=limit + len(excluded.artist_pks) + excluded.extra(limit))
    found = artist_records(ids=pks.tolist())
    # Two artists' mean song vectors are [m, w * m] for their mean base m and
    # the artist weight w: sqrt(1 + w²) times the distance of the means, on
    # the songs' scale, so the similarity reads like a song's.
    weight = float(index.embedding_.artist_weight or 0.0)
    sims = index.similarity(dist * np.sqrt(1.0 + weight**2))
    related = []
    for pk, sim in zip(pks.tolist(), sims.tolist()):
        if pk in found and excluded.artist_ok(found[pk]):
            related.append({**found[pk], "similarity": round(float(sim), 4)})
    return {"artist": artist, "run": run.pk, "related": related[:limit]}


def _rows_genre_ok(index: SimilarityIndex, rows: list[int], excluded: Exclusions, known: dict[int, bool]) -> list[int]:
    """The rows whose songs carry no excluded genre (read from the database
    once per row; ``known`` caches the answers)."""
    if not excluded.genres:
        return rows
    missing = [r for r in rows if r not in known]
    if missing:
        by_row = _songs_by_row(index, np.asarray(missing, dtype=np.int64))
        known.update((r, r in by_row and excluded.song_ok(by_row[r])) for r in missing)
    return [r for r in rows if known[r]]


def song_path(
    *,
    source: SongRecord,
    target: SongRecord,
    length: int = 10,
    max_per_artist: int = 1,
    exclude_artists: Iterable[str] = (),
    exclude_songs: Iterable[str] = (),
    exclude_genres: Iterable[str] = (),
) -> dict[str, Any]:
    """Songs moving smoothly from ``source`` to ``target``: the nearest unused
    song to evenly spaced points on the line between them, no song (or exact
    duplicate) twice, an artist at most ``max_per_artist`` times between the
    two ends and never twice in a row; no excluded artist, song or genre
    (``exclude_*``, as :func:`song_similar`) in between."""
    low, high = PATH_LENGTH
    if not low <= length <= high:
        raise SimilarityError(f"length must be between {low} and {high}, got {length}")
    if source.pk == target.pk:
        raise SimilarityError("from and to are the same song")
    run, index = active_index()
    a, b = _song_seed(index, source), _song_seed(index, target)
    excluded = exclusions_resolve(
        index=index, exclude_artists=exclude_artists, exclude_songs=exclude_songs, exclude_genres=exclude_genres
    )
    genre_ok: dict[int, bool] = {}
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
        rows, _ = index.query(point, k=30, exclude_keys=used_keys, **excluded.query_kwargs(used_rows))
        allowed = [r for r in rows.tolist() if int(index.artists_[r]) not in banned]
        allowed = _rows_genre_ok(index, allowed, excluded, genre_ok)
        if not allowed:
            # The 30 nearest are all by artists already used up: search again
            # among the other artists' songs only (rules before closeness).
            mask = ~np.isin(index.artists_, np.fromiter(banned, dtype=np.int64))
            k = 1 + excluded.extra(1)
            allowed, _ = index.query(point, k=k, mask=mask, exclude_keys=used_keys, **excluded.query_kwargs(used_rows))
            allowed = _rows_genre_ok(index, allowed.tolist(), excluded, genre_ok)
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
    _, index = active_index()
    n = len(X)
    vectors = index.embed(X=X, year=np.full(n, np.nan), popularity=np.full(n, np.nan), artist=np.full(n, -1))
    found = [index.query(v, k=k) for v in vectors]
    rows = np.concatenate([r for r, _ in found]) if found else np.empty(0, dtype=np.int64)
    by_row = _songs_by_row(index, rows)
    return [
        [
            (by_row[r], round(float(d), 4), round(float(index.similarity(d)), 4))
            for r, d in zip(r_.tolist(), d_.tolist())
            if r in by_row
        ]
        for r_, d_ in found
    ]


def cluster_playlist(
    *,
    cluster: Cluster,
    limit: int = 50,
    max_per_artist: int = 2,
    exclude_artists: Iterable[str] = (),
    exclude_songs: Iterable[str] = (),
    exclude_genres: Iterable[str] = (),
) -> list[SongRecord]:
    """Representative songs of a cluster: nearest to its centre (the mean of
    its songs' vectors), at most ``max_per_artist`` per artist, none of the
    excluded artists, songs and genres (``exclude_*``, as :func:`song_similar`)."""
    run, index = active_index()
    if cluster.run_id != run.pk:
        raise SimilarityError(f"cluster {cluster.pk} belongs to run #{cluster.run_id}, not the active run #{run.pk}")
    mask = index.labels_ == cluster.label
    if not mask.any():
        return []
    centre = np.mean(index.vectors_[mask], axis=0, dtype=np.float32)
    excluded = exclusions_resolve(
        index=index, exclude_artists=exclude_artists, exclude_songs=exclude_songs, exclude_genres=exclude_genres
    )
    rows, _ = index.query(
        centre, k=limit + 5 + excluded.extra(limit), mask=mask, max_per_artist=max_per_artist, **excluded.query_kwargs()
    )
    by_row = _songs_by_row(index, rows)
    return [by_row[r] for r in rows.tolist() if r in by_row and excluded.song_ok(by_row[r])][:limit]


def song_radio(
    *,
    song: SongRecord,
    limit: int = 25,
    variety: float = 0.0,
    seed: int | None = None,
    exclude_artists: Iterable[str] = (),
    exclude_songs: Iterable[str] = (),
    exclude_genres: Iterable[str] = (),
) -> list[SongRecord]:
    """A radio from a seed song: the seed, then similar songs with one song per
    artist apart from the seed's own (variety over sameness), none of the
    excluded artists, songs and genres.

    ``variety`` (0-1) reaches further down the similar songs: at 0 the
    nearest ones in order; above it, ``limit - 1`` songs drawn from the
    ``pool_size`` nearest, weighed towards the nearer ones
    (:mod:`clustering.ml.variety`), kept in order of closeness. The draw
    depends on ``seed`` (None counts as 0): the same song, variety and seed
    on the same catalog and model give the same radio.
    """
    try:
        check_variety(variety)
        n = max(int(limit) - 1, 0)
        pool = pool_size(n, variety)
        if seed is not None:
            varied_pick(0, 0, variety=variety, seed=seed)  # validates the seed
    except ValueError as exc:
        raise SimilarityError(str(exc)) from None
    similar = song_similar(
        external_id=song["id"],
        limit=max(pool, 1),
        max_per_artist=1,
        exclude_artists=exclude_artists,
        exclude_songs=exclude_songs,
        exclude_genres=exclude_genres,
    )
    results = similar["results"] if similar else []
    picks = varied_pick(len(results), n, variety=variety, seed=0 if seed is None else int(seed))
    return [song, *[results[i]["song"] for i in picks.tolist()]]
