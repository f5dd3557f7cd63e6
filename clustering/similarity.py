"""Discovery: similar songs, recommendations, song paths, radio and
generated playlists, answered from the active run's similar-song index.

The index (built by :mod:`clustering.index`, loaded and cached by
:mod:`clustering.artifacts`) covers the songs the run trained on; songs
imported after it are embedded from their own data when used as seeds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import DatabaseError

from songs.features import ATTRIBUTE_LABELS, ATTRIBUTE_NAMES
from songs.hashing import public_id_hash
from songs.models import Artist
from songs.selectors import (
    SongRecord,
    artist_pks,
    artist_records,
    genre_counts,
    genre_names_normalise,
    song_ids_with_genres,
    song_pks,
    song_record_get,
    song_records,
)

from .artifacts import active_index
from .delta import Delta, delta_for
from .errors import SimilarityError
from .index_labels import records_labelled
from .ml.features import unique_ints
from .ml.paths import smooth_path
from .ml.similarity import ATTRIBUTES, SimilarityIndex, external_id_hashes
from .ml.titles import title_key
from .ml.variety import check_variety, pool_size, varied_pick
from .models import Cluster

assert set(ATTRIBUTE_NAMES) == set(ATTRIBUTES)

logger = logging.getLogger(__name__)

MAX_SEEDS = 5
PATH_LENGTH = (3, 50)
# Default artist caps (the API's parameters change them): similar songs and
# recommendations at most 2 songs of one artist, so that neighbours are not
# "more by this artist" (31 % of similar songs were by the seed's artist on
# a real top-hits export with no cap); a radio one song per artist, the
# seed's own artist included (it already has the seed).
SIMILAR_MAX_PER_ARTIST = 2
RECOMMENDATIONS_MAX_PER_ARTIST = 2
RADIO_MAX_PER_ARTIST = 1


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
        rows = index.rows_of_artists([artist.pk]) if artist is not None else np.empty(0)
        if artist is None or not len(rows):
            unknown.append(f"artist {aid!r}" + ("" if artist is None else " (no songs in the active model)"))
            continue
        seeds.append(Seed("artist", aid, index.vector(rows).mean(axis=0)))
    for genre in genres:
        names = genre_names_normalise([genre])
        vector = None
        if len(names) == 1:
            vector = index.genre_vector(names[0])
            if vector is None and not index.has_genre_members:
                # An index saved before genre lists were split: the catalog knows the members.
                rows = _genre_member_rows(index, names)
                vector = index.vector(rows).mean(axis=0) if len(rows) else None
        if vector is None:
            unknown.append(f"genre {genre!r}")
        else:
            seeds.append(Seed("genre", names[0], vector))
    if unknown:
        raise SimilarityError(f"unknown seed(s): {', '.join(unknown)}")
    return seeds


# --- filters ---------------------------------------------------------------------


def _genre_member_rows(index: SimilarityIndex, names: list[str]) -> np.ndarray:
    """Index rows of the songs carrying any of the genres ``names`` (as stored)."""
    if index.has_genre_members:
        return index.genre_rows(names)
    # An index saved before genre membership was kept: the catalog answers (GIN index on Postgres).
    rows = index.rows_of(song_ids_with_genres(genres=names))
    return unique_ints(rows[rows >= 0])


def _genre_known(index: SimilarityIndex, name: str) -> bool:
    if index.has_genre_members:
        return index.genre_vector(name) is not None
    return len(_genre_member_rows(index, [name])) > 0


def _and(mask: np.ndarray | None, other: np.ndarray | None) -> np.ndarray | None:
    if other is None:
        return mask
    return other if mask is None else mask & other


@dataclass
class Filters:
    """Per-request filters, resolved once by :func:`filters_resolve`.

    ``mask`` is a row mask of the index for the genre filters (None: every
    row). Excluded artists (``artist_pks``) and songs (the near-duplicate
    keys ``exclude_keys``) are not a mask: :meth:`SimilarityIndex.query`
    drops them candidate by candidate (:meth:`query_kwargs`), which costs
    nothing per song of the catalog where a catalog-sized mask costs a pass
    over every song per request (docs/PERFORMANCE.md, "A listener's
    exclusions"). ``genre_names`` are the excluded genres as stored, for the
    artists' own genres (:meth:`artist_ok`)."""

    mask: np.ndarray | None = None
    exclude_keys: tuple[int, ...] = ()
    artist_pks: tuple[int, ...] = ()
    genre_names: frozenset[str] = frozenset()
    # For the songs outside the index (the delta): the required genres as
    # stored, and the excluded songs' ids.
    genres_in: frozenset[str] = frozenset()
    song_pks: tuple[int, ...] = ()

    def query_kwargs(self) -> dict:
        """The exclusions as :meth:`SimilarityIndex.query` arguments (add the caller's own keys to ``exclude_keys``)."""
        return {"exclude_keys": list(self.exclude_keys), "exclude_artists": self.artist_pks}

    def full_mask(self, index: SimilarityIndex) -> np.ndarray | None:
        """Every filter as one row mask, for the callers that must see the
        whole selection (the path's search, the genre seeds' eligible songs)."""
        mask = self.mask
        if self.artist_pks or self.exclude_keys:
            # The excluded rows by binary search in the index's lookups, not a pass over every song.
            rows = np.concatenate([index.rows_of_artists(self.artist_pks), index.rows_of_keys(self.exclude_keys)])
            mask = np.ones(len(index.ids_), dtype=bool) if mask is None else mask.copy()
            mask[rows] = False
        return mask

    def artist_ok(self, artist: dict) -> bool:
        """Whether an artist (as :func:`songs.selectors.artist_records` gives
        it) is neither excluded nor carries an excluded genre."""
        if artist["pk"] in self.artist_pks:
            return False
        return not (self.genre_names and set(genre_names_normalise(artist.get("genres") or ())) & self.genre_names)


def filters_resolve(
    *,
    index: SimilarityIndex,
    genres: list[str] = (),
    exclude_genres: list[str] = (),
    exclude_artists: list[str] = (),
    exclude_songs: list[str] = (),
) -> Filters:
    """The filters every discovery service takes, applied before the top-k cut:
    ``genres`` keeps songs carrying any of these genres (SimilarityError for
    an unknown one), ``exclude_genres`` drops songs carrying any of them,
    ``exclude_artists`` (external ids or exact names) their songs,
    ``exclude_songs`` (external ids) those songs and their near-duplicates.
    Unknown exclusions exclude nothing (a blocked song may have left the
    catalog). A signed-in listener's blocklist reaches the services as these
    same parameters (:func:`clustering.api.excludes_for`)."""
    mask = None
    genres_in: frozenset[str] = frozenset()
    if genres:
        names = genre_names_normalise(genres)
        genres_in = frozenset(names)
        unknown = [name for name in names if not _genre_known(index, name)]
        if unknown or not names:
            raise SimilarityError(f"unknown genre(s) in genres: {', '.join(repr(g) for g in unknown or genres)}")
        mask = index.rows_mask(_genre_member_rows(index, names))
    excluded_genres = frozenset(genre_names_normalise(exclude_genres)) if exclude_genres else frozenset()
    if excluded_genres:
        rows = _genre_member_rows(index, sorted(excluded_genres))
        if len(rows):
            mask = _and(mask, ~index.rows_mask(rows))
    pks: tuple[int, ...] = ()
    if exclude_artists:
        pks = tuple(sorted(artist_pks(keys=list(exclude_artists))))
    keys: tuple[int, ...] = ()
    excluded_pks: tuple[int, ...] = ()
    if exclude_songs:
        excluded_pks = tuple(sorted(song_pks(external_ids=list(exclude_songs))))
        rows = index.rows_of(list(excluded_pks))
        rows = rows[rows >= 0]
        if len(rows):
            keys = tuple(int(k) for k in np.unique(index.dup_keys_[rows]))
    return Filters(
        mask=mask,
        exclude_keys=keys,
        artist_pks=pks,
        genre_names=excluded_genres,
        genres_in=genres_in,
        song_pks=excluded_pks,
    )


def _distinct(records: list[SongRecord], *, seen: set | None = None) -> list[SongRecord]:
    """Records without near-duplicates (same artist, same title once version
    markers are stripped), the first of each kept; ``seen`` holds the
    (artist, title key) pairs already used (a seed)."""
    seen = set() if seen is None else seen
    out = []
    for record in records:
        key = (record.artist_pk, title_key(record["name"]))
        if key not in seen:
            seen.add(key)
            out.append(record)
    return out


# --- results ---------------------------------------------------------------------


def _delta(run, index: SimilarityIndex) -> Delta:
    """The active run's delta (songs imported since it trained); an empty
    one, logged, when the catalog cannot be read for it."""
    try:
        return delta_for(run, index)
    except DatabaseError:
        logger.exception("the songs imported after run #%s cannot be read", run.pk)
        return Delta((), (), 0, *(np.empty(0, dtype=np.int64),) * 4, np.empty(0, dtype=np.int64), [])


def _songs_by_row(index: SimilarityIndex, rows: np.ndarray, run) -> dict[int, SongRecord]:
    """{row: SongRecord} for index rows, labelled as in ``run`` (the index's
    run); songs deleted since the run trained are left out."""
    ids = index.ids_[rows].tolist()
    records = records_labelled(index=index, run=run, ids=ids, rows=dict(zip(ids, rows.tolist())))
    return {int(r): records[i] for r, i in zip(rows.tolist(), ids) if i in records}


def _row_of_public_id(index: SimilarityIndex, external_id: str) -> int:
    """The index row of the song ``external_id`` by the key of its id
    (:func:`songs.hashing.public_id_hash`), -1 when the index holds no such
    key (the caller confirms the id: keys can collide). An index built before
    2026-12-07 keyed ids with blake2b
    (:func:`~clustering.ml.similarity.external_id_hashes`): looked up that way
    when the key misses, until such runs are pruned."""
    row = index.row_of_key_hash(public_id_hash(external_id))
    if row < 0:
        row = index.row_of_key_hash(int(external_id_hashes([external_id])[0]))
    return row


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


def song_similar(
    *,
    external_id: str,
    limit: int = 10,
    same_cluster: bool = False,
    max_per_artist: int | None = SIMILAR_MAX_PER_ARTIST,
    exclude_artist: bool = False,
    bounds: dict | None = None,
    genres: list[str] = (),
    exclude_genres: list[str] = (),
    exclude_artists: list[str] = (),
    exclude_songs: list[str] = (),
    _trust_index: bool = True,
) -> dict[str, Any] | None:
    """The songs nearest to the song ``external_id`` in the active model's
    index, with a similarity in [0, 1] and an explanation in words
    (:meth:`SimilarityIndex.similarity`, :meth:`SimilarityIndex.explain`):
    ``{"seed", "run", "results"}``, or None when no song has that id.
    Never the song itself nor a near-duplicate of it or of another result
    (same artist and title once version markers are stripped:
    :mod:`clustering.ml.titles`); at most ``max_per_artist`` songs of one
    artist (None: no cap); the filters of :func:`filters_resolve`.

    A song of the index is found by the hash of its id, and the seed is read
    with the results in one query; a song imported after the run trained is
    read first and embedded from its own data.
    """
    run, index = active_index()
    row = _row_of_public_id(index, external_id) if _trust_index else -1
    record = None
    if row >= 0:
        seed = Seed("song", external_id, index.vector(row), index.attributes_[row], row, int(index.dup_keys_[row]))
        artist_pk = int(index.artists_[row])
    else:
        # Its cluster in the run whose index is searched (the previous run's while a new one loads).
        record = song_record_get(external_id=external_id, run=run.pk)
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
    filters = filters_resolve(
        index=index,
        genres=genres,
        exclude_genres=exclude_genres,
        exclude_artists=exclude_artists,
        exclude_songs=exclude_songs,
    )
    mask = _and(
        _mask(index, bounds or {}, cluster_label=label, exclude_artist=artist_pk if exclude_artist else None),
        filters.mask,
    )
    keys = [seed.dup_key] if seed.dup_key is not None else []
    rows, dist = index.query(
        seed.vector,
        k=limit + 5,
        mask=mask,
        exclude_rows=[seed.row] if seed.row >= 0 else [],
        exclude_keys=[*keys, *filters.exclude_keys],
        exclude_artists=filters.artist_pks,
        max_per_artist=max_per_artist,
    )
    # Songs imported after the run trained: the delta, searched exactly beside the index.
    delta = _delta(run, index)
    d_pos, d_pks, d_dist = delta.search(
        seed.vector,
        k=limit + 5,
        bounds=bounds,
        label=label,
        exclude_pks=[*filters.song_pks, *([record.pk] if record is not None else [])],
        exclude_artists=[*filters.artist_pks, *([artist_pk] if exclude_artist else [])],
        genres=filters.genres_in,
        exclude_genres=filters.genre_names,
    )
    # (distance, song id, attributes, artist, index row or -1), nearest first, the artist cap over both.
    merged = sorted(
        [
            (d, int(index.ids_[r]), index.attributes_[r], int(index.artists_[r]), r)
            for r, d in zip(rows.tolist(), dist.tolist())
        ]
        + [
            (d, int(p), delta.attributes[i], int(delta.artists[i]), -1)
            for i, p, d in zip(d_pos.tolist(), d_pks.tolist(), d_dist.tolist())
        ],
        key=lambda c: c[0],
    )
    if max_per_artist and len(d_pos):
        per_artist: dict[int, int] = {}
        capped = []
        for c in merged:
            if per_artist.get(c[3], 0) < max_per_artist:
                per_artist[c[3]] = per_artist.get(c[3], 0) + 1
                capped.append(c)
        merged = capped
    seed_pk = int(index.ids_[row]) if record is None else None
    records = records_labelled(
        index=index,
        run=run,
        ids=[*([seed_pk] if seed_pk is not None else []), *(c[1] for c in merged)],
        rows={**({seed_pk: row} if seed_pk is not None else {}), **{c[1]: c[4] for c in merged if c[4] >= 0}},
    )
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
                genres=genres,
                exclude_genres=exclude_genres,
                exclude_artists=exclude_artists,
                exclude_songs=exclude_songs,
                _trust_index=False,
            )
    merged = [c for c in merged if c[1] in records and _within(records[c[1]], bounds)]
    # Near-duplicates by data as well as by the index's keys: the seed may not
    # be in the index, a delta song has no key there, and an index built
    # before near-duplicate keys compared exact titles only.
    distinct = {
        id(r) for r in _distinct([records[c[1]] for c in merged], seen={(artist_pk, title_key(record["name"]))})
    }
    chosen = [c for c in merged if id(records[c[1]]) in distinct][:limit]
    explanations = (
        index.explain(seed.attributes, None, values=np.array([c[2] for c in chosen]), labels=ATTRIBUTE_LABELS)
        if chosen
        else []
    )
    similarity = index.similarity([c[0] for c in chosen])
    return {
        "seed": record,
        "run": run.pk,
        "results": [
            {
                "song": records[c[1]],
                "similarity": round(float(s), 4),
                "distance": round(float(c[0]), 4),
                "explanation": e,
            }
            for c, s, e in zip(chosen, similarity, explanations)
        ],
    }


def _enough(index: SimilarityIndex, rows: np.ndarray, *, limit: int, max_per_artist: int | None) -> bool:
    """Whether ``rows`` hold ``limit`` songs once near-duplicates and the artist cap are applied."""
    if len(rows) < limit:
        return False
    # More rows never hold fewer songs: a prefix that holds enough answers for
    # all of them (a genre of 552k songs at 10M: no sort of every row).
    prefix = 20 * limit
    if len(rows) > 2 * prefix and _enough(index, rows[:prefix], limit=limit, max_per_artist=max_per_artist):
        return True
    _, first = np.unique(index.dup_keys_[rows], return_index=True)
    if not max_per_artist:
        return len(first) >= limit
    _, per_artist = np.unique(index.artists_[rows[first]], return_counts=True)
    return int(np.minimum(per_artist, max_per_artist).sum()) >= limit


def recommendations_get(
    *,
    seed_songs: list[str] = (),
    seed_artists: list[str] = (),
    seed_genres: list[str] = (),
    limit: int = 20,
    bounds: dict | None = None,
    targets: dict[str, float] | None = None,
    max_per_artist: int | None = RECOMMENDATIONS_MAX_PER_ARTIST,
    genres: list[str] = (),
    exclude_genres: list[str] = (),
    exclude_artists: list[str] = (),
    exclude_songs: list[str] = (),
) -> dict[str, Any]:
    """Spotify-style recommendations: songs near the seeds that satisfy every
    min/max bound and the filters of :func:`filters_resolve`, ranked by
    closeness to the nearest seed plus the mean distance to the targets (each
    target weighed equally, in catalog standard deviations). Seeds and their
    near-duplicates are never returned; at most ``max_per_artist`` songs of
    one artist (None: no cap).

    Genre seeds pull towards songs that carry the genre, not only towards its
    mean sound: when enough songs carrying a seed genre pass the filters
    (``limit`` of them), only they are recommended; otherwise they come first."""
    n_seeds = len(seed_songs) + len(seed_artists) + len(seed_genres)
    if not 1 <= n_seeds <= MAX_SEEDS:
        raise SimilarityError(
            f"give between 1 and {MAX_SEEDS} seeds in all (seed_songs, seed_artists, seed_genres); got {n_seeds}"
        )
    run, index = active_index()
    seeds = seeds_resolve(index=index, songs=list(seed_songs), artists=list(seed_artists), genres=list(seed_genres))
    filters = filters_resolve(
        index=index,
        genres=genres,
        exclude_genres=exclude_genres,
        exclude_artists=exclude_artists,
        exclude_songs=exclude_songs,
    )
    mask = _and(_mask(index, bounds or {}), filters.mask)
    exclude_rows = [s.row for s in seeds if s.row >= 0]
    exclude_keys = [s.dup_key for s in seeds if s.dup_key is not None] + list(filters.exclude_keys)
    # Genre seeds: the songs carrying one of them, within the filters.
    preferred = None  # songs of the seed genres, when too few to fill the list alone
    genre_names = [s.id for s in seeds if s.kind == "genre"]
    if genre_names:
        eligible = _and(index.rows_mask(_genre_member_rows(index, genre_names)), mask)
        eligible[exclude_rows] = False
        if exclude_keys:
            eligible &= ~np.isin(index.dup_keys_, np.asarray(exclude_keys, dtype=np.int64))
        if filters.artist_pks:
            eligible &= ~np.isin(index.artists_, np.asarray(filters.artist_pks, dtype=np.int64))
        if _enough(index, np.flatnonzero(eligible), limit=limit, max_per_artist=max_per_artist):
            mask = eligible  # enough of them: only songs of the seed genres
        elif eligible.any():
            preferred = eligible  # they rank first, the nearest others fill up
    pool = max(100, 5 * limit)
    candidates: dict[int, float] = {}
    seed_info = []
    for seed in seeds:
        near, _ = index.search(seed.vector, k=pool)
        passing = near if mask is None else near[mask[near]]
        passing = passing[~np.isin(index.artists_[passing], np.asarray(filters.artist_pks, dtype=np.int64))]
        passing = passing[~np.isin(index.dup_keys_[passing], np.asarray(filters.exclude_keys, dtype=np.int64))]
        seed_info.append(
            {
                "id": seed.id,
                "type": seed.kind.upper(),
                "href": None,
                "initialPoolSize": len(near),
                "afterFilteringSize": len(passing),
            }
        )
        for search_mask in [mask] if preferred is None else [mask, preferred]:
            rows, dist = index.query(
                seed.vector,
                k=pool,
                mask=search_mask,
                exclude_rows=exclude_rows,
                exclude_keys=exclude_keys,
                exclude_artists=filters.artist_pks,
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
    # Songs of the seed genres first when they are preferred rather than required.
    order = np.argsort(score, kind="stable") if preferred is None else np.lexsort((score, ~preferred[rows]))
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
    by_row = _songs_by_row(index, np.asarray(chosen, dtype=np.int64), run)
    seed_ids = set(seed_songs)
    seed_records = song_records(external_ids=list(seed_songs)).values() if seed_songs else []
    tracks = _distinct(
        [by_row[r] for r in chosen if r in by_row and by_row[r]["id"] not in seed_ids and _within(by_row[r], bounds)],
        seen={(rec.artist_pk, title_key(rec["name"])) for rec in seed_records},
    )[:limit]
    return {"run": run.pk, "seeds": seed_info, "tracks": tracks}


def genre_seeds() -> dict[str, int]:
    """{genre: songs} of the genres usable as seed_genres (single genres), from
    the active model's index, or from the catalog for an index saved before
    genre lists were split."""
    _, index = active_index()
    if not index.has_genre_members:
        return dict(sorted(genre_counts().items()))
    return dict(zip(index.genres_.tolist(), index.genre_sizes_.tolist()))


def artists_related(
    *,
    external_id: str,
    limit: int = 20,
    exclude_artists: list[str] = (),
    exclude_genres: list[str] = (),
) -> dict[str, Any] | None:
    """Artists nearest to the artist ``external_id`` by the mean vector of
    their songs in the active model's index: ``{"artist", "run", "related"}``
    (artists as :func:`songs.selectors.artist_records` gives them, each with
    ``similarity`` in [0, 1] on the songs' scale), or None when no artist has
    that id. An artist without songs in the index has no related artists.
    Artists of ``exclude_artists`` (external ids or exact names) or with a
    genre of ``exclude_genres`` are left out (:func:`filters_resolve`)."""
    artist = artist_records(external_ids=[external_id]).get(external_id)
    if artist is None:
        return None
    run, index = active_index()
    filters = filters_resolve(index=index, exclude_artists=exclude_artists, exclude_genres=exclude_genres)
    extra = len(filters.artist_pks) + (2 * limit + 20 if filters.genre_names else 0)
    pks, dist = index.artists_near(artist["pk"], k=limit + extra)
    found = artist_records(ids=pks.tolist())
    # Two artists' mean song vectors are [m, w * m] for their mean base m and
    # the artist weight w: sqrt(1 + w²) times the distance of the means, on
    # the songs' scale, so the similarity reads like a song's.
    weight = float(index.embedding_.artist_weight or 0.0)
    sims = index.similarity(dist * np.sqrt(1.0 + weight**2))
    related = [
        {**found[pk], "similarity": round(float(sim), 4)}
        for pk, sim in zip(pks.tolist(), sims.tolist())
        if pk in found and filters.artist_ok(found[pk])
    ]
    return {"artist": artist, "run": run.pk, "related": related[:limit]}


def song_path(
    *,
    source: SongRecord,
    target: SongRecord,
    length: int = 10,
    max_per_artist: int = 1,
    genres: list[str] = (),
    exclude_genres: list[str] = (),
    exclude_artists: list[str] = (),
    exclude_songs: list[str] = (),
) -> dict[str, Any]:
    """Songs moving smoothly from ``source`` to ``target`` in sound
    (:func:`clustering.ml.paths.smooth_path`, docs/PATHS.md): near evenly
    spaced points on the line between them, consecutive songs close to each
    other, never stepping back along the line, crossing clusters in one
    direction; no song (or near-duplicate) twice, each artist at most
    ``max_per_artist`` times counting the two ends (the ends' artists never
    appear in between) and never twice in a row; the songs between the ends
    pass the filters of :func:`filters_resolve`."""
    low, high = PATH_LENGTH
    if not low <= length <= high:
        raise SimilarityError(f"length must be between {low} and {high}, got {length}")
    if source.pk == target.pk:
        raise SimilarityError("from and to are the same song")
    run, index = active_index()
    filters = filters_resolve(
        index=index,
        genres=genres,
        exclude_genres=exclude_genres,
        exclude_artists=exclude_artists,
        exclude_songs=exclude_songs,
    )
    a, b = _song_seed(index, source), _song_seed(index, target)
    steps = smooth_path(
        X=index.attributes_,
        std=index.attribute_std_,
        artists=index.artists_,
        dup_keys=index.dup_keys_,
        labels=index.labels_,
        start=a.attributes,
        end=b.attributes,
        length=length,
        start_artist=source.artist_pk,
        end_artist=target.artist_pk,
        start_label=int(index.labels_[a.row]) if a.row >= 0 else -1,
        end_label=int(index.labels_[b.row]) if b.row >= 0 else -1,
        exclude_rows=[r for r in (a.row, b.row) if r >= 0],
        exclude_keys=[k for k in (a.dup_key, b.dup_key) if k is not None] + list(filters.exclude_keys),
        max_per_artist=max_per_artist,
        mask=filters.full_mask(index),
    )
    by_row = _songs_by_row(index, np.asarray(steps, dtype=np.int64), run)
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
    by_row = _songs_by_row(index, rows, run)
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
    genres: list[str] = (),
    exclude_genres: list[str] = (),
    exclude_artists: list[str] = (),
    exclude_songs: list[str] = (),
) -> list[SongRecord]:
    """Representative songs of a cluster: nearest to its centre (the mean of
    its songs' vectors), at most ``max_per_artist`` per artist, no
    near-duplicates, within the filters of :func:`filters_resolve`."""
    run, index = active_index()
    if cluster.run_id != run.pk:  # the previous run's index while the new one loads: wait for it
        run, index = active_index(wait=True)
    if cluster.run_id != run.pk:
        raise SimilarityError(f"cluster {cluster.pk} belongs to run #{cluster.run_id}, not the active run #{run.pk}")
    centre = index.cluster_centre(cluster.label)  # kept by the index: the same for every request
    if centre is None:
        return []
    members = index.labels_ == cluster.label
    filters = filters_resolve(
        index=index,
        genres=genres,
        exclude_genres=exclude_genres,
        exclude_artists=exclude_artists,
        exclude_songs=exclude_songs,
    )
    mask = _and(members, filters.mask)
    if not mask.any():
        return []
    rows, _ = index.query(centre, k=limit + 5, mask=mask, max_per_artist=max_per_artist, **filters.query_kwargs())
    by_row = _songs_by_row(index, rows, run)
    return _distinct([by_row[r] for r in rows.tolist() if r in by_row])[:limit]


def song_radio(
    *,
    song: SongRecord,
    limit: int = 25,
    max_per_artist: int = RADIO_MAX_PER_ARTIST,
    variety: float = 0.0,
    seed: int | None = None,
    genres: list[str] = (),
    exclude_genres: list[str] = (),
    exclude_artists: list[str] = (),
    exclude_songs: list[str] = (),
) -> list[SongRecord]:
    """A radio from a seed song: the seed, then similar songs, at most
    ``max_per_artist`` songs of one artist with the seed counted for its
    own (one per artist by default: the seed's artist never comes back),
    no near-duplicates, within the filters of :func:`filters_resolve`.

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
    own = max(0, max_per_artist - 1)  # more songs of the seed's artist after the seed
    similar = song_similar(
        external_id=song["id"],
        limit=max(pool, 1) + own,
        max_per_artist=max_per_artist,
        exclude_artist=own == 0,
        genres=genres,
        exclude_genres=exclude_genres,
        exclude_artists=exclude_artists,
        exclude_songs=exclude_songs,
    )
    songs, kept_own = [], 0
    for item in similar["results"] if similar else []:
        if item["song"].artist_pk == song.artist_pk:
            if kept_own >= own:
                continue
            kept_own += 1
        songs.append(item["song"])
    songs = songs[:pool]
    picks = varied_pick(len(songs), n, variety=variety, seed=0 if seed is None else int(seed))
    return [song, *[songs[i] for i in picks.tolist()]]
