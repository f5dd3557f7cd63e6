"""Read queries of the catalog: search, keyset pages, pickers, and songs in
the API's one shape (:class:`SongRecord`).

Everything here stays fast on a million songs: no COUNT(*) over the whole
table, no OFFSET scans (keyset pagination).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Count, Q, QuerySet

from .features import FEATURE_NAMES
from .labels import LabelSource, label_source, labels_attach
from .models import Artist, Song

PAGE_SIZE = 50
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
    matches = list(
        Artist.objects.filter(name__icontains=search).values_list("id", flat=True)[: ARTIST_MATCHES_LISTED + 1]
    )
    if len(matches) > ARTIST_MATCHES_LISTED:
        return Q(name__icontains=search) | Q(artist_id__in=Artist.objects.filter(name__icontains=search).values("id"))
    return Q(name__icontains=search) | Q(artist_id__in=matches) if matches else Q(name__icontains=search)


def song_list(*, search: str = "") -> QuerySet[Song]:
    """Songs whose title or artist name contains ``search``, in catalog order."""
    qs = Song.objects.select_related("artist")
    if search:
        qs = qs.filter(search_filter(search))
    return qs.order_by("id")


def catalog_has_songs() -> bool:
    return Song.objects.exists()


def song_get(*, external_id: str) -> Song | None:
    """The song with its artist and its label in the active run (``song.label``)."""
    song = Song.objects.select_related("artist").filter(external_id=external_id).first()
    if song is not None:
        labels_attach([song])
    return song


def songs_by_ids(ids: list[int]) -> list[Song]:
    """Songs with these primary keys, in the order given (missing ones dropped)."""
    found = Song.objects.select_related("artist").in_bulk(ids)
    return [found[i] for i in ids if i in found]


# --- genres -------------------------------------------------------------------------


def _genre_condition(genres: list[str]) -> tuple[str, list[str]]:
    """SQL (for the songs table aliased ``s``) true when a song carries any of ``genres``."""
    if connection.vendor == "postgresql":
        # Containment is what the GIN index (jsonb_path_ops, migration 0005) serves.
        return " OR ".join(["s.genres @> %s::jsonb"] * len(genres)), [json.dumps([g]) for g in genres]
    marks = ", ".join(["%s"] * len(genres))
    return f"EXISTS (SELECT 1 FROM json_each(s.genres) e WHERE e.value IN ({marks}))", list(genres)


def genre_names_normalise(genres) -> list[str]:
    """Genre names as the catalog stores them (the importer's rules), without repeats."""
    from .importing import parse_genres

    out: list[str] = []
    for genre in genres:
        for name in parse_genres(str(genre)):
            if name not in out:
                out.append(name)
    return out


def songs_with_genres_sql(genres) -> tuple[str, list[str]] | None:
    """A subquery (SQL, params) of the ids of the songs carrying any of
    ``genres``, for ``id__in=RawSQL(...)``; None when no genre is named."""
    genres = genre_names_normalise(genres)
    if not genres:
        return None
    condition, params = _genre_condition(genres)
    return f"SELECT s.id FROM {Song._meta.db_table} s WHERE {condition}", params


def song_ids_with_genres(*, genres: list[str], limit: int | None = None) -> list[int]:
    """Ids of the songs carrying any of ``genres`` (names as stored: lower
    case, single genres), ascending; at most ``limit``. On Postgres a GIN
    index on the lists answers it (docs/PERFORMANCE.md, "Genres")."""
    genres = genre_names_normalise(genres)
    if not genres:
        return []
    condition, params = _genre_condition(genres)
    sql = f"SELECT s.id FROM {Song._meta.db_table} s WHERE {condition} ORDER BY s.id"
    if limit is not None:
        sql += " LIMIT %s"
        params = [*params, int(limit)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def genre_counts(*, limit: int | None = None) -> dict[str, int]:
    """{genre: songs} over the whole catalog, most common first (a full scan:
    for listings of an index that predates split genres, not for hot paths)."""
    if connection.vendor == "postgresql":
        sql = (
            f"SELECT g, count(*) FROM {Song._meta.db_table} s, jsonb_array_elements_text(s.genres) g "
            "GROUP BY g ORDER BY count(*) DESC, g"
        )
    else:
        sql = (
            f"SELECT e.value, count(*) FROM {Song._meta.db_table} s, json_each(s.genres) e "
            "GROUP BY e.value ORDER BY count(*) DESC, e.value"
        )
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return {str(g): int(n) for g, n in cursor.fetchall()}


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
    return encode_key(None if sort == "id" else getattr(song, sort), song.pk, sort)


def decode_cursor(cursor: str | None, sort: str) -> tuple[Any, int] | None:
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
    qs: QuerySet[Song],
    *,
    sort: str = "id",
    desc: bool = False,
    after: str | None = None,
    before: str | None = None,
    size: int = PAGE_SIZE,
) -> KeysetPage:
    """One page of ``qs`` ordered by (sort, id), after or before a cursor.

    Reads size + 1 rows through the ordering: no COUNT(*), no OFFSET, so the
    thousandth page costs what the first does.
    """
    if sort not in SORTS:
        sort = "id"
    after_key, before_key = decode_cursor(after, sort), decode_cursor(before, sort)
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


def song_search_page(
    *, search: str = "", after: str | None = None, before: str | None = None, size: int = PAGE_SIZE
) -> KeysetPage:
    page = keyset_page(song_list(search=search), after=after, before=before, size=size)
    labels_attach(page.items)  # the search page shows each song's cluster
    return page


def encode_key(value: Any, pk: int, sort: str) -> str:
    key = [pk] if sort == "id" else [value, pk]
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def song_suggestions(*, search: str, limit: int = 10) -> list[dict]:
    """A few songs matching ``search`` (title or artist), for pickers."""
    if not search:
        return []
    rows = song_list(search=search).values_list("external_id", "name", "artist__name")[:limit]
    return [{"id": ext, "name": name, "artist": artist} for ext, name, artist in rows]


def artist_suggestions(*, search: str, limit: int = 10) -> list[dict]:
    """Up to ``limit`` artists whose name contains ``search``, names starting
    with it first, with their song counts (the recommendation page's picker)."""
    # Two short reads that stop at ``limit`` rows each (no sort of every match).
    rows = list(
        Artist.objects.filter(name__istartswith=search).order_by("id").values_list("id", "external_id", "name")[:limit]
    )
    if len(rows) < limit:
        seen = [r[0] for r in rows]
        rows += list(
            Artist.objects.filter(name__icontains=search)
            .exclude(id__in=seen)
            .order_by("id")
            .values_list("id", "external_id", "name")[: limit - len(rows)]
        )
    counts = dict(
        Song.objects.filter(artist_id__in=[r[0] for r in rows])
        .values("artist_id")
        .annotate(n=Count("id"))
        .values_list("artist_id", "n")
    )
    return [{"id": ext, "name": name, "songs": counts.get(pk, 0)} for pk, ext, name in rows]


def artist_names(*, external_ids: list[str]) -> dict[str, str]:
    """{external id: name} of the artists with these ids."""
    return dict(Artist.objects.filter(external_id__in=external_ids).values_list("external_id", "name"))


def artist_pks(*, keys: list[str]) -> list[int]:
    """Primary keys of the artists named by ``keys``: external ids or exact names."""
    keys = [k for k in keys if k]
    if not keys:
        return []
    return list(Artist.objects.filter(Q(external_id__in=keys) | Q(name__in=keys)).values_list("id", flat=True))


def song_pks(*, external_ids: list[str]) -> list[int]:
    """Primary keys of the songs with these external ids (unknown ones left out)."""
    if not external_ids:
        return []
    return list(Song.objects.filter(external_id__in=list(external_ids)).values_list("id", flat=True))


def song_labels(*, external_ids: list[str]) -> dict[str, dict]:
    """{external id: {id, name, artist}}: how the pages' pickers show a song."""
    found = Song.objects.filter(external_id__in=external_ids).select_related("artist")
    return {s.external_id: {"id": s.external_id, "name": s.name, "artist": s.artist.name} for s in found}


def songs_for_export(pks: list[int]) -> list[Song]:
    """Songs (artist selected, labels attached) with these primary keys, in order: playlist files want models."""
    songs = Song.objects.select_related("artist").in_bulk(pks)
    return labels_attach(songs[pk] for pk in pks if pk in songs)


# --- songs in the API's shape -------------------------------------------------------

_FEATURES_SQL = ", ".join(f"s.{name}" for name in FEATURE_NAMES)
# The fields of a song in every API response, in order (songs.api.SongSerializer documents them).
SONG_FIELDS: tuple[str, ...] = (
    "id",
    "name",
    "artist",
    "artist_id",
    "album",
    "genres",
    "popularity",
    "explicit",
    "release_date",
    "release_year",
    *FEATURE_NAMES,
    "key",
    "mode",
    "time_signature",
    "cluster",
    "map_x",
    "map_y",
)


class SongRecord(dict):
    """A song in the API's shape (:data:`SONG_FIELDS`); ``pk`` and
    ``artist_pk`` ride along. Read with one raw query on the hot paths
    (model instances plus DRF serialisation cost more than a similar-song
    search), or made from a model instance by :func:`song_record_of`."""

    __slots__ = ("artist_pk", "pk")

    def feature_vector(self) -> list[float]:
        return [self[name] for name in FEATURE_NAMES]


def _record(
    pk,
    artist_pk,
    external_id,
    name,
    artist,
    artist_id,
    album,
    genres,
    popularity,
    explicit,
    released,
    year,
    features,
    key,
    mode,
    time_signature,
    cluster_id,
    cluster_name,
    map_x,
    map_y,
) -> SongRecord:
    record = SongRecord(
        id=external_id,
        name=name,
        artist=artist,
        artist_id=artist_id,
        album=album,
        genres=json.loads(genres) if isinstance(genres, str) else (genres or []),
        popularity=popularity,
        explicit=None if explicit is None else bool(explicit),
        release_date=released if released is None or isinstance(released, str) else released.isoformat(),
        release_year=year,
    )
    record.update(zip(FEATURE_NAMES, features))
    record.update(
        key=key,
        mode=mode,
        time_signature=time_signature,
        cluster=None if cluster_id is None else {"id": cluster_id, "name": cluster_name},
        map_x=map_x,
        map_y=map_y,
    )
    record.pk, record.artist_pk = pk, artist_pk
    return record


def song_record_of(song: Song) -> SongRecord:
    """A song model instance (artist selected; labels attached, else read) in the API's shape."""
    return _record(
        song.pk,
        song.artist_id,
        song.external_id,
        song.name,
        song.artist.name,
        song.artist.external_id,
        song.album,
        song.genres,
        song.popularity,
        song.explicit,
        song.release_date,
        song.release_year,
        [getattr(song, name) for name in FEATURE_NAMES],
        song.key,
        song.mode,
        song.time_signature,
        song.cluster_id,
        song.cluster_name,
        song.map_x,
        song.map_y,
    )


def song_records(*, ids=None, external_ids=None, run: int | None = None, labels: bool = True) -> dict:
    """{song id: SongRecord} for song ids, or {external id: SongRecord} for
    external ids; their clusters in the active run, or in run ``run``
    (:func:`songs.labels.label_source`). Without ``labels``, none: for a
    caller that knows them (the engine, from its index)."""
    by_external = external_ids is not None
    keys = list(external_ids if by_external else ids)
    if not keys:
        return {}
    column = "s.external_id" if by_external else "s.id"
    label_columns, join, params = "NULL, NULL, NULL, NULL", "", ()
    if labels:
        # The active run's labels (songs.labels); without a source, none.
        source = label_source(run) or LabelSource(
            "SELECT NULL AS song_id, NULL AS cluster_id, NULL AS cluster_name, NULL AS map_x, NULL AS map_y WHERE 1 = 0"
        )
        label_columns = "l.cluster_id, l.cluster_name, l.map_x, l.map_y"
        join, params = f"LEFT JOIN ({source.sql}) l ON l.song_id = s.id ", source.params
    sql = (
        f"SELECT s.id, s.artist_id, s.external_id, s.name, a.name, a.external_id, s.album, s.genres, s.popularity, "
        f"s.explicit, s.release_date, s.release_year, {_FEATURES_SQL}, s.key, s.mode, s.time_signature, "
        f"{label_columns} FROM {Song._meta.db_table} s JOIN {Artist._meta.db_table} a ON a.id = s.artist_id "
        f"{join}WHERE {column} IN ({', '.join(['%s'] * len(keys))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *(str(k) if by_external else int(k) for k in keys)])
        rows = cursor.fetchall()
    out = {}
    n_feat = len(FEATURE_NAMES)
    for row in rows:
        record = _record(*row[:12], row[12 : 12 + n_feat], *row[12 + n_feat :])
        out[record["id"] if by_external else record.pk] = record
    return out


def song_record_get(*, external_id: str, run: int | None = None) -> SongRecord | None:
    """One song's record; its cluster in the active run, or in run ``run``."""
    return song_records(external_ids=[external_id], run=run).get(external_id)


# --- artists, and searches by position (the Spotify-compatible surface) ---------------

# The furthest a search can be paged (offset + limit, Spotify's limits):
# counting stops there, so a common term never counts a million songs.
SEARCH_MAX_DEPTH = 1_050
_ARTIST_COLUMNS = ("id", "external_id", "name", "genres", "followers", "popularity")


def artist_records(*, external_ids=None, ids=None) -> dict:
    """{external id: artist} for external ids, or {artist id: artist} for
    artist ids; an artist is a dict of id (external), name, genres,
    followers and popularity, with ``pk``."""
    by_external = external_ids is not None
    keys = list(external_ids if by_external else ids)
    if not keys:
        return {}
    column = "external_id__in" if by_external else "id__in"
    out = {}
    for pk, external_id, name, genres, followers, popularity in Artist.objects.filter(**{column: keys}).values_list(
        *_ARTIST_COLUMNS
    ):
        artist = {
            "pk": pk,
            "id": external_id,
            "name": name,
            "genres": list(genres or []),
            "followers": followers,
            "popularity": popularity,
        }
        out[external_id if by_external else pk] = artist
    return out


def song_search_slice(*, search: str, offset: int = 0, limit: int = 20) -> tuple[list[SongRecord], int]:
    """(songs, total) of :func:`song_list`'s matches for ``search`` from
    ``offset``, in catalog order; total counts at most SEARCH_MAX_DEPTH."""
    qs = song_list(search=search)
    pks = list(qs.values_list("id", flat=True)[offset : offset + limit])
    total = qs.values("id")[:SEARCH_MAX_DEPTH].count()
    records = song_records(ids=pks)
    return [records[pk] for pk in pks if pk in records], total


def artist_search_slice(*, search: str, offset: int = 0, limit: int = 20) -> tuple[list[dict], int]:
    """(artists, total) whose name contains ``search`` (case-insensitive),
    from ``offset`` in id order; total counts at most SEARCH_MAX_DEPTH."""
    qs = Artist.objects.filter(name__icontains=search).order_by("id")
    pks = list(qs.values_list("id", flat=True)[offset : offset + limit])
    total = qs.values("id")[:SEARCH_MAX_DEPTH].count()
    found = artist_records(ids=pks)
    return [found[pk] for pk in pks if pk in found], total
