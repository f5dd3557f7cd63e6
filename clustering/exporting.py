"""The labelled catalog as CSV (what the notebook saved as final_clustered_songs.csv)."""

import csv
from typing import TextIO

from songs.formats import FLAGSHIP_HEADER
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


def songs_export_csv(*, out: TextIO, chunk_size: int = 5000) -> int:
    """Stream every song (server-side cursor, flat memory); return the row count."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_HEADER)
    rows = 0
    qs = Song.objects.select_related("artist", "cluster").order_by("id")
    for song in qs.iterator(chunk_size=chunk_size):
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
                "" if song.cluster is None else song.cluster.label,
                "" if song.cluster is None else safe_cell(song.cluster.name),
                "" if song.map_x is None else song.map_x,
                "" if song.map_y is None else song.map_y,
            ]
        )
        rows += 1
    return rows
