"""Read queries of the engine: runs, clusters, the catalog as a matrix, and
the browsing reads that need the active run (a cluster's songs, the map,
feature statistics).

Like the catalog's selectors these stay fast on a million songs: stored
sizes instead of COUNT(*), keyset pages instead of OFFSET, a bounded map
sample drawn by primary key.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Max, Min, QuerySet
from django.db.models.expressions import RawSQL

from songs.features import FEATURE_NAMES
from songs.models import Artist, Song
from songs.selectors import (
    PAGE_SIZE,
    SORTS,
    KeysetPage,
    decode_cursor,
    encode_key,
    genre_names_normalise,
    keyset_page,
    search_filter,
    songs_with_genres_sql,
)

from .artifacts import active_index_or_none
from .ml.features import unique_ints
from .ml.selection import explain_k_choice
from .ml.similarity import ATTRIBUTES
from .models import BlockedItem, Cluster, Playlist, SongLabel, TrainingRun

MAP_SAMPLE_SIZE = 5_000
# The sample only changes with the active run (part of the key); new imports
# show up within the hour.
MAP_SAMPLE_SECONDS = 3600
RUNS_SHOWN = 50


# --- runs and clusters ------------------------------------------------------------------


def active_run() -> TrainingRun | None:
    return TrainingRun.objects.active()


def run_clusters(run: TrainingRun | None) -> list[Cluster]:
    """The clusters of ``run`` by label (none without a run)."""
    return list(run.clusters.order_by("label")) if run else []


def cluster_get(*, pk: int) -> Cluster | None:
    return Cluster.objects.select_related("run").filter(pk=pk).first()


def runs_recent(*, limit: int = RUNS_SHOWN) -> list[TrainingRun]:
    return list(TrainingRun.objects.select_related("created_by").order_by("-created_at")[:limit])


# --- the catalog as a matrix ----------------------------------------------------------------


def song_feature_matrix(*, id_range: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ids, X): the songs' ids and their ten features in FEATURE_NAMES order,
    for the whole catalog or the ids in an inclusive range (on Postgres one
    binary COPY, :func:`clustering.catalog_read.feature_matrix_binary`)."""
    if connection.vendor == "postgresql":
        from .catalog_read import feature_matrix_binary  # Arrow loads where a run reads, not at start-up

        return feature_matrix_binary(id_range=id_range)
    where, params = ("WHERE id BETWEEN %s AND %s", list(id_range)) if id_range else ("", [])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, {', '.join(FEATURE_NAMES)} FROM {Song._meta.db_table} {where} ORDER BY id", params)
        rows = cursor.fetchall()
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty((0, len(FEATURE_NAMES)))
    data = np.asarray(rows, dtype=np.float64)
    return data[:, 0].astype(np.int64), data[:, 1:]


def song_features_of(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ids, X) of the songs with these ids (sorted; missing ones left out).
    Many ids are read as the id range they span (an import's new songs are
    consecutive), a few by key."""
    ids = unique_ints(np.asarray(ids, dtype=np.int64))
    if not len(ids):
        return ids, np.empty((0, len(FEATURE_NAMES)))
    if len(ids) > 5_000:
        found, X = song_feature_matrix(id_range=(int(ids[0]), int(ids[-1])))
        keep = np.isin(found, ids)
        return found[keep], X[keep]
    rows: list[tuple] = []
    with connection.cursor() as cursor:
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900].tolist()
            cursor.execute(
                f"SELECT id, {', '.join(FEATURE_NAMES)} FROM {Song._meta.db_table} "
                f"WHERE id IN ({', '.join(['%s'] * len(chunk))}) ORDER BY id",
                chunk,
            )
            rows.extend(cursor.fetchall())
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty((0, len(FEATURE_NAMES)))
    data = np.asarray(rows, dtype=np.float64)
    return data[:, 0].astype(np.int64), data[:, 1:]


def song_id_ranges(*, chunk_songs: int) -> list[tuple[int, int]]:
    """Inclusive song id ranges of about `chunk_songs` songs each."""
    ids = Song.objects.order_by("id").values_list("id", flat=True)
    bounds = list(ids[::chunk_songs])
    if not bounds:
        return []
    last = Song.objects.order_by("-id").values_list("id", flat=True).first()
    return [(lo, (bounds[i + 1] - 1) if i + 1 < len(bounds) else last) for i, lo in enumerate(bounds)]


# --- a cluster's songs -----------------------------------------------------------------------


def _ordered_slice(vals: np.ndarray, ids: np.ndarray, key: tuple | None, descending: bool, size: int) -> np.ndarray:
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


def cluster_song_keys(
    *,
    cluster_id: int,
    sort: str,
    desc: bool,
    after: tuple | None,
    before: tuple | None,
    size: int,
    hidden: tuple = ((), ()),
) -> tuple[list[tuple[Any, int]], bool] | None:
    """One keyset page of a cluster's songs ordered by (sort, id), from the
    active run's index: [(sort value, song id)] and whether more rows follow
    in the walking direction. ``sort`` is "id" or a feature. None when the
    index cannot answer (no model, the cluster of another run): the caller
    falls back to the database. ``hidden``: (artist ids, song ids[, genre
    names]) left out.
    The index holds the run's own labels of the songs it trained on (a
    run's labels never change), not the songs imported after it trained.
    At 1M songs this takes a few ms where the
    database needs an index per sortable column (every one of them slowing
    the import)."""
    found = active_index_or_none()
    if found is None:
        return None
    run, index = found
    label = Cluster.objects.filter(pk=cluster_id, run_id=run.pk).values_list("label", flat=True).first()
    if label is None or (sort != "id" and sort not in FEATURE_NAMES):
        return None
    in_cluster = index.labels_ == label
    artist_pks, song_pks, *rest = hidden
    genres = rest[0] if rest else ()
    if len(genres):
        if not index.has_genre_members:
            return None  # an index from before genre lists: the database answers
        in_cluster[index.genre_rows(list(genres))] = False
    if len(artist_pks):
        in_cluster &= ~np.isin(index.artists_, np.asarray(artist_pks, dtype=np.int64))
    if len(song_pks):
        song_rows = index.rows_of(song_pks)
        in_cluster[song_rows[song_rows >= 0]] = False
    rows = np.flatnonzero(in_cluster)
    ids = index.ids_[rows]
    vals = (
        ids.astype(np.float64) if sort == "id" else index.attributes_[rows, ATTRIBUTES.index(sort)].astype(np.float64)
    )
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


def _cluster_page_from_index(
    *,
    cluster_id: int,
    sort: str,
    desc: bool,
    after: str | None,
    before: str | None,
    size: int,
    hidden: tuple,
) -> KeysetPage | None:
    """The page from the active run's similarity index (order and cursors),
    the songs themselves from the database; None when the index cannot tell."""
    after_key, before_key = decode_cursor(after, sort), decode_cursor(before, sort)
    found = cluster_song_keys(
        cluster_id=cluster_id, sort=sort, desc=desc, after=after_key, before=before_key, size=size, hidden=hidden
    )
    if found is None:
        return None
    keys, more = found
    songs = Song.objects.select_related("artist").in_bulk([pk for _, pk in keys])
    kept = [(value, pk) for value, pk in keys if pk in songs]
    page = KeysetPage(items=[songs[pk] for _, pk in kept], sort=sort, desc=desc)
    backwards = before_key is not None and after_key is None
    key = before_key if backwards else after_key
    if kept:
        first, last = encode_key(*kept[0], sort), encode_key(*kept[-1], sort)
        if backwards:
            page.next_cursor, page.prev_cursor = last, (first if more else None)
        else:
            page.next_cursor, page.prev_cursor = (last if more else None), (first if key is not None else None)
    return page


def cluster_songs_page(
    *,
    cluster_id: int,
    search: str = "",
    sort: str = "id",
    desc: bool = False,
    after: str | None = None,
    before: str | None = None,
    size: int = PAGE_SIZE,
    exclude_artists: Iterable[str] = (),
    exclude_songs: Iterable[str] = (),
    exclude_genres: Iterable[str] = (),
) -> KeysetPage:
    """One page of a cluster's songs, leaving out ``exclude_artists`` and
    ``exclude_songs`` (external ids) and songs of ``exclude_genres`` (a
    listener's blocklist).

    In catalog order the run's labels answer (an index on (run, cluster,
    song) walked from the cursor), songs labelled at their import included.
    Sorted by a feature, without a search, the active run's similarity index
    orders them (the database would need an index per sortable column); it
    holds the songs the run trained on. Searches and titles: the database."""
    if sort not in SORTS:
        sort = "id"
    run_id = Cluster.objects.filter(pk=cluster_id).values_list("run_id", flat=True).first()
    exclude_artists, exclude_songs = sorted(set(exclude_artists)), sorted(set(exclude_songs))
    artist_pks = list(Artist.objects.filter(external_id__in=exclude_artists).values_list("pk", flat=True))
    song_pks = list(Song.objects.filter(external_id__in=exclude_songs).values_list("pk", flat=True))
    genres = genre_names_normalise(exclude_genres)
    genres_sql = songs_with_genres_sql(genres)
    if run_id is None:
        return KeysetPage(items=[], sort=sort, desc=desc)
    if not search and sort == "id":
        return _cluster_page_by_id(
            run_id=run_id,
            cluster_id=cluster_id,
            desc=desc,
            after=after,
            before=before,
            size=size,
            hidden=(artist_pks, song_pks, genres_sql),
        )
    if not search and sort != "name":
        page = _cluster_page_from_index(
            cluster_id=cluster_id,
            sort=sort,
            desc=desc,
            after=after,
            before=before,
            size=size,
            hidden=(artist_pks, song_pks, genres),
        )
        if page is not None:
            return page
    members = SongLabel.objects.filter(run_id=run_id, cluster_id=cluster_id).values("song_id")
    qs = Song.objects.select_related("artist").filter(pk__in=members)
    if artist_pks:
        qs = qs.exclude(artist_id__in=artist_pks)
    if song_pks:
        qs = qs.exclude(pk__in=song_pks)
    if genres_sql is not None:
        qs = qs.exclude(pk__in=RawSQL(*genres_sql))
    if search:
        qs = qs.filter(search_filter(search))
    return keyset_page(qs, sort=sort, desc=desc, after=after, before=before, size=size)


def _cluster_page_by_id(
    *,
    run_id: int,
    cluster_id: int,
    desc: bool,
    after: str | None,
    before: str | None,
    size: int,
    hidden: tuple,
) -> KeysetPage:
    """A keyset page of a cluster's songs in id order, walked on the run's
    labels (index (run, cluster, song)), then the page's songs by key."""
    after_key, before_key = decode_cursor(after, "id"), decode_cursor(before, "id")
    backwards = before_key is not None and after_key is None
    key = before_key if backwards else after_key
    descending = desc != backwards
    qs = SongLabel.objects.filter(run_id=run_id, cluster_id=cluster_id)
    if key is not None:
        qs = qs.filter(**{"song_id__lt" if descending else "song_id__gt": key[1]})
    artist_pks, song_pks, genres_sql = hidden
    if len(artist_pks):
        qs = qs.exclude(song_id__in=Song.objects.filter(artist_id__in=list(artist_pks)).values("id"))
    if genres_sql is not None:
        qs = qs.exclude(song_id__in=RawSQL(*genres_sql))
    if len(song_pks):
        qs = qs.exclude(song_id__in=list(song_pks))
    ids = list(qs.order_by("-song_id" if descending else "song_id").values_list("song_id", flat=True)[: size + 1])
    more = len(ids) > size
    ids = ids[:size]
    if backwards:
        ids.reverse()
    songs = Song.objects.select_related("artist").in_bulk(ids)
    page = KeysetPage(items=[songs[i] for i in ids if i in songs], sort="id", desc=desc)
    if ids:
        first, last = encode_key(None, ids[0], "id"), encode_key(None, ids[-1], "id")
        if backwards:
            page.next_cursor, page.prev_cursor = last, (first if more else None)
        else:
            page.next_cursor, page.prev_cursor = (last if more else None), (first if key is not None else None)
    return page


def cluster_songs(cluster: Cluster) -> QuerySet[Song]:
    """The songs of ``cluster`` (its run's labels), artist selected, in catalog order."""
    members = SongLabel.objects.filter(run_id=cluster.run_id, cluster_id=cluster.pk).values("song_id")
    return Song.objects.select_related("artist").filter(pk__in=members).order_by("id")


# --- statistics derived from the active run --------------------------------------


# The smallest-cluster floor k="auto" used before it was stored with the run.
LEGACY_MIN_CLUSTER_SHARE = 0.02


def run_k_choice(run: TrainingRun | None) -> dict | None:
    """Why k="auto" chose the run's k (:func:`explain_k_choice`), None for a
    run trained with a fixed k. Runs trained before the reason was stored
    are explained from their scan with the floor of that time (2 %)."""
    if run is None or not run.k_scan:
        return None
    stored = (run.params or {}).get("k_choice")
    if stored:
        return stored
    try:
        return explain_k_choice(run.k_scan, min_cluster_share=LEGACY_MIN_CLUSTER_SHARE)
    except ValueError:
        return None


def cluster_examples(clusters, *, per_cluster: int = 3) -> dict[int, list[Song]]:
    """Example songs per cluster (by primary key): its representatives (the
    members nearest the centroid, stored with the profile), one per artist
    first, so three examples show three artists where the cluster has them.
    One query for every cluster."""
    wanted = {c.pk: (c.profile or {}).get("representative_song_ids", []) for c in clusters}
    found = Song.objects.select_related("artist").in_bulk([i for ids in wanted.values() for i in ids])
    out: dict[int, list[Song]] = {}
    for pk, ids in wanted.items():
        songs = [found[i] for i in ids if i in found]
        seen: set[int] = set()
        first = [s for s in songs if s.artist_id not in seen and not seen.add(s.artist_id)]
        rest = [s for s in songs if s not in first]
        out[pk] = (first + rest)[:per_cluster]
    return out


def catalog_feature_stats(clusters) -> dict[str, dict[str, float | None]]:
    """Catalog mean and standard deviation per feature, as the run saw them.

    Derived from the clusters' stored profiles instead of scanning the songs:
    the mean is the size-weighted mean of the centroids (the clusters, noise
    included, partition the catalog), and the deviation follows from a
    cluster's z-score, z = (centroid − mean) / std, taking the cluster with
    the largest |z| so the rounding of z matters least.
    """
    clusters = [c for c in clusters if c.size and (c.profile or {}).get("centroid")]
    total = sum(c.size for c in clusters)
    stats: dict[str, dict[str, float | None]] = {}
    for f in FEATURE_NAMES:
        if not total:
            stats[f] = {"mean": None, "std": None}
            continue
        mean = sum(c.size * c.profile["centroid"].get(f, 0.0) for c in clusters) / total
        best = max(clusters, key=lambda c: abs(c.profile.get("z", {}).get(f, 0.0)))
        z = best.profile.get("z", {}).get(f, 0.0)
        std = (best.profile["centroid"][f] - mean) / z if abs(z) >= 0.01 else None
        stats[f] = {"mean": mean, "std": abs(std) if std else None}
    return stats


def map_sample(*, run, size: int = MAP_SAMPLE_SIZE) -> dict:
    """A bounded random sample of the labelled catalog for the 2-D map.

    Columnar JSON (x, y, cluster id, external id, title, artist). Songs are
    drawn by random primary keys between the smallest and largest id (two
    index look-ups and ≤ ``size`` key look-ups, no ORDER BY random()), with
    a seed per run so every process draws the same sample; cached per run.
    """
    key = f"map-sample:{run.pk}:{run.artifact_sha256[:16]}:{size}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    # Songs come in a second query by key, artist names in a third: joining
    # here makes Postgres hash the whole artist table for a few thousand rows.
    labelled = SongLabel.objects.filter(run_id=run.pk, map_x__isnull=False, cluster_id__isnull=False)
    chunk = 900 if connection.vendor == "sqlite" else 10_000  # SQLite's parameter limit

    def fetch(song_ids: list[int]) -> list[tuple]:
        """(x, y, cluster, external id, title, artist id) of those of ``song_ids``
        labelled on the map and still in the catalog."""
        out: list[tuple] = []
        for start in range(0, len(song_ids), chunk):
            part = song_ids[start : start + chunk]
            found = {
                pk: (x, y, cluster)
                for x, y, cluster, pk in labelled.filter(song_id__in=part).values_list(
                    "map_x", "map_y", "cluster_id", "song_id"
                )
            }
            songs = Song.objects.filter(id__in=list(found)).values_list("id", "external_id", "name", "artist_id")
            by_id = {pk: rest for pk, *rest in songs}
            out.extend((*found[pk], *by_id[pk]) for pk in part if pk in found and pk in by_id)
        return out

    bounds = labelled.aggregate(lo=Min("song_id"), hi=Max("song_id"))
    rows: list[tuple] = []
    if bounds["lo"] is not None:
        lo, hi = bounds["lo"], bounds["hi"]
        if hi - lo + 1 <= size:
            rows = fetch(list(range(lo, hi + 1)))
        else:
            rng = random.Random(run.pk)
            seen: set[int] = set()
            hit_rate = 1.0
            # Ids have gaps (deleted songs, songs off the map): draw again
            # for the misses, scaled by the hit rate so far, rather than scan.
            span = hi - lo + 1
            for _ in range(8):
                want = size - len(rows)
                if want <= 0 or len(seen) >= span:
                    break
                fresh = 1 - len(seen) / span  # draws that were already tried come back as duplicates
                draw = min(int(want / max(hit_rate * fresh, 0.05) * 1.05) + 10, 4 * size)
                candidates = [i for i in rng.sample(range(lo, hi + 1), min(span, draw)) if i not in seen]
                seen.update(candidates)
                before = len(rows)
                rows.extend(fetch(candidates))
                hit_rate = (len(rows) - before) / max(len(candidates), 1)
            rows = rows[:size]
    artist_ids = sorted({r[5] for r in rows})
    artists: dict[int, str] = {}
    for start in range(0, len(artist_ids), chunk):
        artists.update(Artist.objects.filter(id__in=artist_ids[start : start + chunk]).values_list("id", "name"))
    data = {
        "run": run.pk,
        "x": [round(r[0], 4) for r in rows],
        "y": [round(r[1], 4) for r in rows],
        "cluster": [r[2] for r in rows],
        "id": [r[3] for r in rows],
        "name": [r[4] for r in rows],
        "artist": [artists.get(r[5], "") for r in rows],
    }
    cache.set(key, data, MAP_SAMPLE_SECONDS)
    return data


# --- playlists -------------------------------------------------------------------------------


def playlists_with_counts(qs: QuerySet[Playlist]) -> QuerySet[Playlist]:
    return qs.select_related("owner").annotate(song_count=Count("items")).order_by("-updated_at", "-id")


def playlists_of(*, user, limit: int) -> list[Playlist]:
    return list(playlists_with_counts(Playlist.objects.filter(owner=user))[:limit])


def playlists_public() -> QuerySet[Playlist]:
    return playlists_with_counts(Playlist.objects.filter(is_public=True))


def playlist_by_share_id(*, share_id) -> Playlist | None:
    return Playlist.objects.select_related("owner").filter(share_id=share_id).first()


# --- a listener's blocklist ------------------------------------------------------------------

BLOCK_KINDS = ("artist", "song", "genre")


def blocklist_of(*, user) -> list[BlockedItem]:
    """The user's blocked artists, songs and genres (none when not signed in)."""
    if user is None or not user.is_authenticated:
        return []
    return list(BlockedItem.objects.filter(user=user).order_by("kind", "label", "id"))


def blocklist_excludes(*, user) -> dict[str, set[str]]:
    """The user's blocks as the discovery services' keyword arguments:
    ``exclude_artists`` (external ids), ``exclude_songs`` (external ids) and
    ``exclude_genres`` (names); empty sets when not signed in."""
    out: dict[str, set[str]] = {"exclude_artists": set(), "exclude_songs": set(), "exclude_genres": set()}
    if user is None or not user.is_authenticated:
        return out
    for kind, value in BlockedItem.objects.filter(user=user).values_list("kind", "value"):
        out[f"exclude_{kind}s"].add(value)
    return out


def blocked_values(*, user, kind: str, values) -> set[str]:
    """Which of ``values`` (external ids, or genre names) the user blocked as ``kind``."""
    if user is None or not user.is_authenticated or not values:
        return set()
    return set(BlockedItem.objects.filter(user=user, kind=kind, value__in=list(values)).values_list("value", flat=True))
