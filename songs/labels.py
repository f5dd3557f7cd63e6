"""The active run's labels, as the catalog reads them without knowing the engine.

The catalog (``songs``) stores songs only; which cluster a song belongs to
and where it sits on the map are the engine's labels of its active run, kept
per run in the engine's own table. The engine registers a *label source* at
start-up (``clustering.apps``): a SELECT yielding one row per labelled song
of the active run with the columns of :data:`LABEL_COLUMNS`. Every read of
the catalog that shows or filters by a cluster joins it; without a source
(the engine not installed) songs simply have no label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from django.db import connection

# The columns a label source's SELECT yields, in this order.
LABEL_COLUMNS = ("song_id", "cluster_id", "cluster_label", "cluster_name", "map_x", "map_y")


class LabelSource(NamedTuple):
    """A SELECT (``sql`` with ``params``) of the active run's labels, one row
    per song, columns :data:`LABEL_COLUMNS`; the catalog uses it as a derived
    table (``… LEFT JOIN (<sql>) l ON l.song_id = s.id``)."""

    sql: str
    params: tuple = ()


class ActiveLabel(NamedTuple):
    """A song's label in the active run."""

    cluster_id: int | None
    cluster_label: int | None
    cluster_name: str | None
    map_x: float | None
    map_y: float | None


_provider: Callable[..., LabelSource | None] | None = None


def label_source_register(provider: Callable[..., LabelSource | None] | None) -> None:
    """Set the function that says where the active run's labels are (None: no
    labels). It is called with ``run=None`` (the run active when the statement
    runs) or with the id of the run a caller already works with."""
    global _provider
    _provider = provider


def label_source(run: int | None = None) -> LabelSource | None:
    """The active run's labels; with ``run``, that run's (a caller that read
    the active run's index names it: the records then match the index, and
    the database plans the join for one known run)."""
    return _provider(run=run) if _provider is not None else None


# SQLite allows 999 parameters per statement by default.
_CHUNK = 900


def labels_of(song_ids: Iterable[int], *, run: int | None = None) -> dict[int, ActiveLabel]:
    """{song id: its label in the active run (or in run ``run``)} for the labelled ones among ``song_ids``."""
    ids = sorted({int(i) for i in song_ids})
    source = label_source(run)
    if source is None or not ids:
        return {}
    out: dict[int, ActiveLabel] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            cursor.execute(
                f"SELECT {', '.join('l.' + c for c in LABEL_COLUMNS)} FROM ({source.sql}) l "
                f"WHERE l.song_id IN ({', '.join(['%s'] * len(chunk))})",
                [*source.params, *chunk],
            )
            for song_id, *label in cursor.fetchall():
                out[song_id] = ActiveLabel(*label)
    return out


def labels_in_range(lo: int, hi: int) -> dict[int, ActiveLabel]:
    """{song id: label} of the active run's labels of the songs with ids in [lo, hi]."""
    source = label_source()
    if source is None:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join('l.' + c for c in LABEL_COLUMNS)} FROM ({source.sql}) l "
            "WHERE l.song_id BETWEEN %s AND %s",
            [*source.params, int(lo), int(hi)],
        )
        return {song_id: ActiveLabel(*label) for song_id, *label in cursor.fetchall()}


def labels_attach(songs: Iterable) -> list:
    """Give each song its active label (``song.label``, None when it has
    none) with one query; returns the songs as a list."""
    songs = list(songs)
    found = labels_of(song.pk for song in songs)
    for song in songs:
        song.__dict__["_label"] = found.get(song.pk)
    return songs


def cluster_song_ids_sql(cluster_id: int) -> tuple[str, list] | None:
    """(SQL, params) selecting the ids of the songs in ``cluster_id`` (a
    cluster of the active run), for ``id IN (…)`` filters; None without a label source."""
    source = label_source()
    if source is None:
        return None
    return f"SELECT l.song_id FROM ({source.sql}) l WHERE l.cluster_id = %s", [*source.params, int(cluster_id)]
