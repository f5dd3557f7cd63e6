"""Public ids (songs' and artists' ``external_id``) compared bytewise on Postgres.

An id is an opaque string: it has equality and no language. Under the
database's default collation every comparison of the unique indexes goes
through the C library's locale-aware ``strcoll`` (Postgres treats only
"C" and "POSIX" as bytewise); with ``COLLATE "C"`` it is a ``memcmp``. A
merge sorts and inserts its rows by id: an upsert of 1M songs took 17 %
less time (9.96 -> 8.25 s on the same data, docs/PERFORMANCE.md "Bytewise
public ids and a first import's plain INSERT").

Equality, and so every lookup, gives the same answers as before; only the
order of ids would differ under a language's rules, and nothing shows songs
in id order. Changing a column's collation rebuilds its unique index (not
the table) under an exclusive lock: ~1 s per million rows here. SQLite has
no such collation to ask for: it already compares bytewise (BINARY).

The models do not declare it (``db_collation`` would ask SQLite for a
collation named "C"); ``tests/songs/test_importing.py`` checks it on Postgres.
"""

from django.db import migrations

TABLES = ("songs_artist", "songs_song")


def _collate(collation: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for table in TABLES:
            schema_editor.execute(
                f'ALTER TABLE {table} ALTER COLUMN external_id TYPE varchar(64) COLLATE "{collation}"'
            )

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("songs", "0007_content_hash"),
    ]

    operations = [
        migrations.RunPython(_collate("C"), _collate("default")),
    ]
