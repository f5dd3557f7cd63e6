"""Genres as lists of single genres, and a GIN index to find songs by genre.

1. Data: re-split the genre lists already stored with the importer's
   `parse_genres` ("hip hop, pop, R&B" stored as one genre becomes three;
   "set()" and "nan" go), for songs and artists. Each distinct stored list
   is parsed once and every row holding it is rewritten by one join
   (a catalog shares few distinct lists: an artist's genres).
2. Postgres: a GIN index (jsonb_path_ops) on songs' genres serves
   containment lookups (`genres @> '["metal"]'`, `song_ids_with_genres`):
   docs/PERFORMANCE.md "Genres" measured it at 1M songs against a
   song-genre table. SQLite catalogs are small: it scans.
Reversing keeps the split lists (the old combined strings are not worth
restoring) and drops the index.
"""

import json

from django.db import migrations

from songs.importing import parse_genres


def _resplit(schema_editor, table: str) -> None:
    connection = schema_editor.connection
    pg = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT genres{'::text' if pg else ''} FROM {table}")
        pairs = []
        for (stored,) in cursor.fetchall():
            old = json.loads(stored) if isinstance(stored, str) else (stored or [])
            if not isinstance(old, list):
                old = [old]
            new: list[str] = []
            for item in old:
                for name in parse_genres(str(item)):
                    if name not in new:
                        new.append(name)
            if new != old:
                pairs.append((stored, json.dumps(new)))
        if not pairs:
            return
        cursor.execute("CREATE TEMPORARY TABLE genre_resplit (old text, new text)")
        for start in range(0, len(pairs), 5_000):
            chunk = pairs[start : start + 5_000]
            cursor.execute(
                "INSERT INTO genre_resplit (old, new) VALUES " + ", ".join(["(%s, %s)"] * len(chunk)),
                [value for pair in chunk for value in pair],
            )
        if pg:
            cursor.execute(
                f"UPDATE {table} t SET genres = m.new::jsonb FROM genre_resplit m WHERE t.genres = m.old::jsonb"
            )
        else:
            cursor.execute("CREATE INDEX genre_resplit_old ON genre_resplit (old)")
            cursor.execute(f"UPDATE {table} SET genres = m.new FROM genre_resplit m WHERE {table}.genres = m.old")
        cursor.execute("DROP TABLE genre_resplit")


def forwards(apps, schema_editor):
    _resplit(schema_editor, apps.get_model("songs", "Song")._meta.db_table)
    _resplit(schema_editor, apps.get_model("songs", "Artist")._meta.db_table)
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS song_genres_gin ON songs_song USING gin (genres jsonb_path_ops)"
        )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS song_genres_gin")


class Migration(migrations.Migration):
    dependencies = [("songs", "0004_heartbeats")]

    operations = [migrations.RunPython(forwards, backwards)]
