"""The catalog stands alone: songs no longer carry a cluster or a map position.

Those are the engine's labels of its active run (clustering 0008 carried the
current ones into its label store, which this depends on). Dropping the
columns is a catalog change on Postgres (no rewrite). Nothing rewrites every
song any more, so new pages are filled again (fillfactor back to 100: the
room kept free for in-place label updates is not needed).
"""

from django.db import migrations


def fillfactor_default(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE songs_song RESET (fillfactor)")


def fillfactor_hot(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE songs_song SET (fillfactor = 60)")


class Migration(migrations.Migration):
    dependencies = [
        ("songs", "0005_genre_lists"),
        ("clustering", "0008_run_labels"),
    ]

    operations = [
        migrations.RemoveField(model_name="song", name="cluster"),
        migrations.RemoveField(model_name="song", name="map_x"),
        migrations.RemoveField(model_name="song", name="map_y"),
        migrations.RunPython(fillfactor_default, fillfactor_hot),
    ]
