"""Trigram indexes for title and artist search, and HOT-friendly songs.

Postgres only (SQLite searches by scanning, fine for its catalog sizes):
- pg_trgm GIN indexes on UPPER(name) of songs and artists serve the
  case-insensitive substring search (`icontains`) the pages and the API use;
- the songs table keeps 40 % of each page free (fillfactor 60) and no index
  on cluster, so the activation's rewrite of every song's cluster and map
  position is a heap-only update that touches no index.
An existing table keeps its packed pages until rewritten (VACUUM FULL).
"""
from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute("ALTER TABLE songs_song SET (fillfactor = 60)")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS song_name_trgm ON songs_song USING gin (upper(name::text) gin_trgm_ops)"
    )
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS artist_name_trgm ON songs_artist USING gin (upper(name::text) gin_trgm_ops)"
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS song_name_trgm")
    schema_editor.execute("DROP INDEX IF EXISTS artist_name_trgm")
    schema_editor.execute("ALTER TABLE songs_song RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("songs", "0001_initial")]

    operations = [
        migrations.RemoveIndex(model_name="song", name="song_cluster_idx"),
        migrations.RunPython(forwards, backwards),
    ]
