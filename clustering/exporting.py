"""The labelled catalog as CSV (what the notebook saved as final_clustered_songs.csv)."""

import csv
from typing import TextIO

from songs.formats import FLAGSHIP_HEADER
from songs.labels import labels_in_range
from songs.models import Song

EXPORT_HEADER = [*FLAGSHIP_HEADER, "cluster", "cluster_name", "map_x", "map_y"]
# Spreadsheets run a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """Neutralise spreadsheet formula injection in a text cell."""
    return "'" + value if value and value.startswith(_FORMULA_START) else value


def _genres_literal(genres: list[str]) -> str:
    # Python-style list literal, as the flagship export writes it.
    return "[" + ", ".join(repr(g) for g in genres) + "]"


def _with_labels(songs, chunk_size: int):
    """The songs, each with its active label, read a batch of ids at a time
    (one range query on the active run's labels per batch)."""
    batch: list[Song] = []
    for song in songs:
        batch.append(song)
        if len(batch) == chunk_size:
            yield from _labelled(batch)
            batch = []
    yield from _labelled(batch)


def _labelled(batch: list[Song]):
    if batch:
        labels = labels_in_range(batch[0].pk, batch[-1].pk)
        for song in batch:
            yield song, labels.get(song.pk)


def songs_export_csv(*, out: TextIO, chunk_size: int = 5000) -> int:
    """Stream every song (server-side cursor, flat memory) with its cluster
    and map position in the active run; return the row count."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_HEADER)
    rows = 0
    qs = Song.objects.select_related("artist").order_by("id")
    for song, label in _with_labels(qs.iterator(chunk_size=chunk_size), chunk_size):
        artist = song.artist
        release = song.release_date.isoformat() if song.release_date else (song.release_year or "")
        writer.writerow(
            [
                safe_cell(song.external_id),
                safe_cell(song.name),
                "" if song.popularity is None else song.popularity,
                song.duration_ms,
                "" if song.explicit is None else int(song.explicit),
                safe_cell(artist.external_id),
                release,
                song.danceability,
                song.energy,
                "" if song.key is None else song.key,
                song.loudness,
                "" if song.mode is None else song.mode,
                song.speechiness,
                song.acousticness,
                song.instrumentalness,
                song.liveness,
                song.valence,
                song.tempo,
                "" if song.time_signature is None else song.time_signature,
                "" if artist.followers is None else artist.followers,
                safe_cell(_genres_literal(song.genres or [])),
                safe_cell(artist.name),
                "" if artist.popularity is None else artist.popularity,
                "" if label is None or label.cluster_label is None else label.cluster_label,
                "" if label is None or label.cluster_name is None else safe_cell(label.cluster_name),
                "" if label is None or label.map_x is None else label.map_x,
                "" if label is None or label.map_y is None else label.map_y,
            ]
        )
        rows += 1
    return rows
