"""Similar songs take their results' clusters and map positions from the
run's index (clustering.index_labels): the same records as the database's
join of the run's labels, one query without that join, and the database's
labels for every song whose stored label may differ from the index's."""

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clustering import artifacts, index_labels, services
from clustering.artifacts import active_index
from clustering.index_labels import records_labelled
from clustering.ml.similarity import SimilarityIndex
from clustering.models import Cluster, SongLabel
from songs.labels import labels_of
from songs.models import Song
from songs.selectors import song_records
from tests.conftest import song_twin, train_run

pytestmark = pytest.mark.django_db


def _rows(index, ids):
    return dict(zip(ids, index.rows_of(ids).tolist()))


def test_every_record_labelled_from_the_index_is_the_databases(trained_demo):
    run, index = active_index()
    assert index.map_ is not None and index.map_.shape == (len(index.ids_), 2)
    ids = Song.objects.order_by("id").values_list("id", flat=True)[:400]
    ids = list(ids)
    with CaptureQueriesContext(connection) as queries:
        got = records_labelled(index=index, run=run, ids=ids, rows=_rows(index, ids))
    assert got == song_records(ids=ids, run=run.pk)
    assert all(got[i]["cluster"] is not None and got[i]["map_x"] is not None for i in ids)
    # One query of the catalog and one of the run's cluster names, no join of the labels.
    sqls = [q["sql"] for q in queries.captured_queries]
    assert len(sqls) == 2 and not any(SongLabel._meta.db_table in sql for sql in sqls), sqls


def test_a_similar_response_is_the_same_with_the_labels_from_the_database(api, trained_demo, settings, monkeypatch):
    seeds = list(Song.objects.order_by("id").values_list("external_id", flat=True)[::37])
    settings.MODEL_RECHECK_SECONDS = 3600
    from_index = [api.get(f"/api/songs/{s}/similar/", {"limit": 10}).json() for s in seeds]
    # The same requests with the index's labels ignored: the database's join.
    monkeypatch.setattr(
        index_labels, "records_labelled", lambda *, index, run, ids, rows: song_records(ids=ids, run=run.pk)
    )
    monkeypatch.setattr(
        "clustering.similarity.records_labelled", lambda *, index, run, ids, rows: song_records(ids=ids, run=run.pk)
    )
    from_database = [api.get(f"/api/songs/{s}/similar/", {"limit": 10}).json() for s in seeds]
    assert from_index == from_database
    assert sum(len(b["results"]) for b in from_index) >= 10 * len(seeds) - 5


def test_a_song_an_import_changed_shows_its_new_label_not_the_indexs(trained_demo):
    run, index = active_index()
    songs = list(Song.objects.order_by("id"))
    label = {s.pk: int(index.labels_[index.rows_of([s.pk])[0]]) for s in songs}
    moved = songs[5]
    other = next(s for s in songs if label[s.pk] != label[moved.pk])
    # Its features become another cluster's song's, and the import's hook relabels it.
    changes = {name: getattr(other, name) for name in Song.FEATURES}
    Song.objects.filter(pk=moved.pk).update(**changes)
    assert services.songs_label_imported(song_ids=[moved.pk]) == 1
    stored = labels_of([moved.pk], run=run.pk)[moved.pk]
    assert stored.cluster_label == label[other.pk] != label[moved.pk]
    got = records_labelled(index=index, run=run, ids=[moved.pk, other.pk], rows=_rows(index, [moved.pk, other.pk]))
    assert got[moved.pk]["cluster"] == {"id": stored.cluster_id, "name": stored.cluster_name}
    assert (got[moved.pk]["map_x"], got[moved.pk]["map_y"]) == (stored.map_x, stored.map_y)
    assert got == song_records(ids=[moved.pk, other.pk], run=run.pk)


def test_a_song_the_index_does_not_hold_is_labelled_from_the_database(trained_demo):
    run, index = active_index()
    seed = Song.objects.order_by("id")[40]
    newcomer = song_twin(seed, "new-song", name="A New Song")
    assert services.songs_label_imported(song_ids=[newcomer.pk]) == 1
    ids = [seed.pk, newcomer.pk]
    rows = _rows(index, ids)
    assert rows[newcomer.pk] == -1
    got = records_labelled(index=index, run=run, ids=ids, rows=rows)
    assert got[newcomer.pk]["cluster"] is not None
    assert got == song_records(ids=ids, run=run.pk)


def test_a_renamed_cluster_shows_its_new_name(api, trained_demo, settings):
    seed = Song.objects.order_by("id")[3]
    first = api.get(f"/api/songs/{seed.external_id}/similar/", {"limit": 5}).json()["results"][0]["song"]
    Cluster.objects.filter(pk=first["cluster"]["id"]).update(name="Renamed by an admin")
    settings.MODEL_RECHECK_SECONDS = 0
    again = api.get(f"/api/songs/{seed.external_id}/similar/", {"limit": 5}).json()["results"][0]["song"]
    assert again["id"] == first["id"] and again["cluster"]["name"] == "Renamed by an admin"


def test_the_index_keeps_its_labels_through_its_files_and_an_older_index_reads_the_database(trained_demo, tmp_path):
    run, index = active_index()
    index.save(tmp_path)
    loaded = SimilarityIndex.load(tmp_path)
    assert np.array_equal(loaded.map_, index.map_, equal_nan=True)
    assert np.array_equal(loaded.labels_, index.labels_)
    # An index written before it held the map: the records come with the database's join.
    (tmp_path / "map.npy").unlink()
    meta = (tmp_path / "meta.json").read_text().replace('"map", ', "")
    (tmp_path / "meta.json").write_text(meta)
    older = SimilarityIndex.load(tmp_path)
    assert older.map_ is None
    ids = list(Song.objects.order_by("id").values_list("id", flat=True)[:50])
    with CaptureQueriesContext(connection) as queries:
        got = records_labelled(index=older, run=run, ids=ids, rows=_rows(older, ids))
    assert got == song_records(ids=ids, run=run.pk)
    assert len(queries.captured_queries) == 1 and SongLabel._meta.db_table in queries.captured_queries[0]["sql"]


def test_a_density_runs_index_holds_no_map_and_its_records_are_the_databases(demo_catalog):
    run = train_run(algorithm="dbscan")
    assert run.status == "succeeded", run.error
    artifacts.cache_clear()
    run, index = active_index()
    assert index.map_ is None  # its prediction of a border point may differ from its fit
    ids = list(Song.objects.order_by("id").values_list("id", flat=True)[:100])
    assert records_labelled(index=index, run=run, ids=ids, rows=_rows(index, ids)) == song_records(ids=ids, run=run.pk)
