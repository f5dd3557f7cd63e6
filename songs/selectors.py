"""Read queries of the catalog and of the pages that browse it.

Everything here stays fast on a million songs: no COUNT(*) over the whole
table (cluster sizes and run sizes are stored), no OFFSET scans (keyset
pagination), and the map reads a bounded sample by primary key.
"""
from __future__ import annotations

import base64
import binascii
import json
import random
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import Max, Min, Q, QuerySet

from .features import FEATURE_NAMES
from .models import Artist, ImportJob, Song

PAGE_SIZE = 50
MAP_SAMPLE_SIZE = 5_000
# The sample only changes with the active run (part of the key); new imports
# show up within the hour.
MAP_SAMPLE_SECONDS = 3600
# Columns a cluster's song table may be sorted by: never null, so keyset
# comparisons need no NULL handling. Kept to the columns the table shows:
# each is fast at a million songs only with an index on (cluster, column, id),
# and every index slows the import and the label write-back.
SORTABLE_FEATURES: tuple[str, ...] = ("danceability", "energy", "valence", "acousticness", "tempo")
SORTS: dict[str, str] = {"id": "catalog order", "name": "title", **{f: f for f in SORTABLE_FEATURES}}


# Up to this many matching artists are passed to the song query as a list of
# keys (which an index on the title can OR with the artist index); beyond it
# the term is so common that a subquery does as well.
ARTIST_MATCHES_LISTED = 2_000


def search_filter(search: str) -> Q:
    """Title or artist name contains ``search`` (case-insensitive)."""
    # Artists first, then songs by artist id: an OR across a join would join
    # every song to its artist before filtering.
    matches = list(Artist.objects.filter(name__icontains=search).values_list("id", flat=True)[:ARTIST_MATCHES_LISTED + 1])
    if len(matches) > ARTIST_MATCHES_LISTED:
        return Q(name__icontains=search) | Q(artist_id__in=Artist.objects.filter(name__icontains=search).values("id"))
    return Q(name__icontains=search) | Q(artist_id__in=matches) if matches else Q(name__icontains=search)


def song_list(*, search: str = "") -> QuerySet[Song]:
    """Songs whose title or artist name contains ``search``, in catalog order."""
    qs = Song.objects.select_related("artist", "cluster")
    if search:
        qs = qs.filter(search_filter(search))
    return qs.order_by("id")


def catalog_has_songs() -> bool:
    return Song.objects.exists()


def catalog_counts() -> dict:
    return {"songs": Song.objects.count(), "artists": Artist.objects.count()}


def import_job_latest() -> ImportJob | None:
    return ImportJob.objects.order_by("-created_at").first()


def song_get(*, external_id: str) -> Song | None:
    return Song.objects.select_related("artist", "cluster", "cluster__run").filter(external_id=external_id).first()


def songs_by_ids(ids: list[int]) -> list[Song]:
    """Songs with these primary keys, in the order given (missing ones dropped)."""
    found = Song.objects.select_related("artist").in_bulk(ids)
    return [found[i] for i in ids if i in found]


# --- keyset pagination ---------------------------------------------------------


@dataclass
class KeysetPage:
    items: list[Song]
    next_cursor: str | None = None
    prev_cursor: str | None = None
    sort: str = "id"
    desc: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def has_other_pages(self) -> bool:
        return bool(self.next_cursor or self.prev_cursor)


def _encode_cursor(song: Song, sort: str) -> str:
    return _encode_key(None if sort == "id" else getattr(song, sort), song.pk, sort)


def _decode_cursor(cursor: str | None, sort: str) -> tuple[Any, int] | None:
    """(sort value, id) of a cursor, or None for a missing or malformed one."""
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(key, list) or not key or not isinstance(key[-1], int) or isinstance(key[-1], bool):
        return None
    if sort == "id":
        return (key[0], key[0]) if len(key) == 1 else None
    if len(key) != 2:
        return None
    value = key[0]
    if sort == "name" and not isinstance(value, str):
        return None
    if sort != "name" and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        return None
    return value, key[1]


def keyset_page(
    qs: QuerySet[Song], *, sort: str = "id", desc: bool = False, after: str | None = None,
    before: str | None = None, size: int = PAGE_SIZE,
) -> KeysetPage:
    """One page of ``qs`` ordered by (sort, id), after or before a cursor.

    Reads size + 1 rows through the ordering: no COUNT(*), no OFFSET, so the
    thousandth page costs what the first does.
    """
    if sort not in SORTS:
        sort = "id"
    after_key, before_key = _decode_cursor(after, sort), _decode_cursor(before, sort)
    backwards = before_key is not None and after_key is None
    key = before_key if backwards else after_key
    # Walking backwards reads the reversed order and flips the rows after.
    descending = desc != backwards
    if key is not None:
        value, pk = key
        op = "lt" if descending else "gt"
        if sort == "id":
            qs = qs.filter(**{f"id__{op}": pk})
        else:
            qs = qs.filter(Q(**{f"{sort}__{op}": value}) | Q(**{sort: value, f"id__{op}": pk}))
    order = ["-id"] if sort == "id" else [f"-{sort}", "-id"]
    if not descending:
        order = [o.lstrip("-") for o in order]
    rows = list(qs.order_by(*order)[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
    page = KeysetPage(items=rows, sort=sort, desc=desc)
    if rows:
        if backwards:
            # The cursor row itself comes after this page.
            page.next_cursor = _encode_cursor(rows[-1], sort)
            page.prev_cursor = _encode_cursor(rows[0], sort) if more else None
        else:
            page.next_cursor = _encode_cursor(rows[-1], sort) if more else None
            page.prev_cursor = _encode_cursor(rows[0], sort) if key is not None else None
    return page


def song_search_page(*, search: str = "", after: str | None = None, before: str | None = None,
                     size: int = PAGE_SIZE) -> KeysetPage:
    return keyset_page(song_list(search=search), after=after, before=before, size=size)


def _encode_key(value: Any, pk: int, sort: str) -> str:
    key = [pk] if sort == "id" else [value, pk]
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def _cluster_page_from_index(*, cluster_id: int, sort: str, desc: bool, after: str | None, before: str | None,
                             size: int) -> KeysetPage | None:
    """The page from the active run's similarity index (order and cursors),
    the songs themselves from the database; None when the index cannot tell."""
    from clustering.similarity import cluster_song_keys  # clustering builds on songs

    after_key, before_key = _decode_cursor(after, sort), _decode_cursor(before, sort)
    found = cluster_song_keys(cluster_id=cluster_id, sort=sort, desc=desc, after=after_key, before=before_key,
                              size=size)
    if found is None:
        return None
    keys, more = found
    songs = Song.objects.select_related("artist").in_bulk([pk for _, pk in keys])
    kept = [(value, pk) for value, pk in keys if pk in songs]
    page = KeysetPage(items=[songs[pk] for _, pk in kept], sort=sort, desc=desc)
    backwards = before_key is not None and after_key is None
    key = before_key if backwards else after_key
    if kept:
        first, last = _encode_key(*kept[0], sort), _encode_key(*kept[-1], sort)
        if backwards:
            page.next_cursor, page.prev_cursor = last, (first if more else None)
        else:
            page.next_cursor, page.prev_cursor = (last if more else None), (first if key is not None else None)
    return page


def cluster_songs_page(*, cluster_id: int, search: str = "", sort: str = "id", desc: bool = False,
                       after: str | None = None, before: str | None = None, size: int = PAGE_SIZE) -> KeysetPage:
    """One page of a cluster's songs. Without a search the active run's index
    orders them (no index on cluster in the database: see songs.models)."""
    if sort not in SORTS:
        sort = "id"
    if not search and sort != "name":
        page = _cluster_page_from_index(cluster_id=cluster_id, sort=sort, desc=desc, after=after, before=before,
                                        size=size)
        if page is not None:
            return page
    qs = Song.objects.select_related("artist").filter(cluster_id=cluster_id)
    if search:
        qs = qs.filter(search_filter(search))
    return keyset_page(qs, sort=sort, desc=desc, after=after, before=before, size=size)


def song_suggestions(*, search: str, limit: int = 10) -> list[dict]:
    """A few songs matching ``search`` (title or artist), for pickers."""
    if not search:
        return []
    rows = song_list(search=search).values_list("external_id", "name", "artist__name")[:limit]
    return [{"id": ext, "name": name, "artist": artist} for ext, name, artist in rows]


# --- statistics derived from the active run --------------------------------------


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
    # Artist names come in a second query by key: joining here makes Postgres
    # hash the whole artist table for a few thousand rows.
    columns = ("map_x", "map_y", "cluster_id", "external_id", "name", "artist_id")
    labelled = Song.objects.filter(map_x__isnull=False, cluster__isnull=False)
    bounds = Song.objects.aggregate(lo=Min("id"), hi=Max("id"))
    rows: list[tuple] = []
    chunk = 900 if connection.vendor == "sqlite" else 10_000  # SQLite's parameter limit
    if bounds["lo"] is not None:
        lo, hi = bounds["lo"], bounds["hi"]
        if hi - lo + 1 <= size:
            rows = list(labelled.order_by("id").values_list(*columns))
        else:
            rng = random.Random(run.pk)
            seen: set[int] = set()
            hit_rate = 1.0
            # Ids have gaps (deleted songs, unlabelled new ones): draw again
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
                for start in range(0, len(candidates), chunk):
                    rows.extend(labelled.filter(id__in=candidates[start:start + chunk]).values_list(*columns))
                hit_rate = (len(rows) - before) / max(len(candidates), 1)
            rows = rows[:size]
    artist_ids = sorted({r[5] for r in rows})
    artists: dict[int, str] = {}
    for start in range(0, len(artist_ids), chunk):
        artists.update(Artist.objects.filter(id__in=artist_ids[start:start + chunk]).values_list("id", "name"))
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
