"""Upgrading a site whose songs carry their labels (songs.Song.cluster, map_x,
map_y before clustering 0008 / songs 0006): the active run's labels move into
the run's own label storage, so the site keeps its clusters; and back."""

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from clustering import labels
from songs.labels import labels_of

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("clustering", "0007_blocklist_playlist_params"), ("songs", "0005_genre_lists")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _latest():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def test_an_upgraded_site_keeps_its_clusters_and_a_downgrade_gives_them_back():
    latest = _latest()
    apps = _migrate(BEFORE)
    try:
        Artist, Song = apps.get_model("songs", "Artist"), apps.get_model("songs", "Song")
        TrainingRun, Cluster = apps.get_model("clustering", "TrainingRun"), apps.get_model("clustering", "Cluster")
        now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        artist = Artist.objects.create(external_id="A1", name="Someone", created_at=now, updated_at=now)
        old = TrainingRun.objects.create(status="succeeded")
        active = TrainingRun.objects.create(status="succeeded", is_active=True)
        Cluster.objects.create(run=old, label=0, name="Old")
        quiet, loud = (Cluster.objects.create(run=active, label=i, name=n) for i, n in enumerate(["Quiet", "Loud"]))
        features = dict.fromkeys(("danceability", "energy", "acousticness", "valence"), 0.5)
        features.update(loudness=-8.0, speechiness=0.05, instrumentalness=0.0, liveness=0.1, tempo=120.0)
        features["duration_ms"] = 200_000
        songs = {}
        for n, (cluster, x, y) in enumerate(
            [(quiet, 0.5, -1.0), (loud, 2.0, 3.5), (quiet, -0.25, 0.0), (None, None, None)]
        ):
            song = Song.objects.create(
                external_id=f"S{n}", name=f"Song {n}", artist=artist, cluster=cluster, map_x=x, map_y=y,
                created_at=now, updated_at=now, **features,
            )  # fmt: skip
            songs[song.pk] = (cluster.pk if cluster else None, x, y)

        _migrate(latest)
        stored = labels.run_labels(active.pk)
        assert stored == {pk: label for pk, label in songs.items() if label[0] is not None}
        assert labels.runs_with_labels() == {active.pk}
        if connection.vendor == "postgresql":
            assert labels.labels_exist(active.pk)  # its own partition
        shown = labels_of(songs)
        assert {pk: (s.cluster_id, s.map_x, s.map_y) for pk, s in shown.items()} == stored
        assert {s.cluster_name for s in shown.values()} == {"Quiet", "Loud"}
        columns = [c.name for c in connection.introspection.get_table_description(connection.cursor(), "songs_song")]
        assert not {"cluster_id", "map_x", "map_y"} & set(columns)

        # And back: the active run's labels return to the songs.
        apps = _migrate(BEFORE)
        Song = apps.get_model("songs", "Song")
        back = {pk: (c, x, y) for pk, c, x, y in Song.objects.values_list("pk", "cluster_id", "map_x", "map_y")}
        assert back == songs
    finally:
        _migrate(latest)
