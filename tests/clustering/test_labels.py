"""Labels belong to their run (clustering.labels, songs.labels).

A run's labels are written once when it trains; activating or rolling back a
run flips its active flag and never writes a song; the last LABEL_RUNS_KEPT
runs keep theirs, older and failed runs none; a song imported after the
active run trained is labelled by its model during the import.
"""

import re

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clustering import artifacts, labels, selectors, services
from clustering.models import Cluster, TrainingRun
from songs.labels import labels_of
from songs.models import Song
from songs.selectors import song_records
from songs.services import songs_import_file
from tests.conftest import active_labels, flagship_rows, train_run, write_csv

pytestmark = pytest.mark.django_db

# A statement that writes the songs table (UPDATE, INSERT, DELETE, or DDL on it).
_WRITES_SONGS = re.compile(r"^\s*(UPDATE|INSERT INTO|DELETE FROM|ALTER TABLE|TRUNCATE)\s+\"?songs_song\b", re.I)


def _writes_songs(queries) -> list[str]:
    return [q["sql"] for q in queries if _WRITES_SONGS.search(q["sql"])]


def test_activation_and_rollback_flip_a_flag_and_never_write_a_song(demo_catalog):
    old = train_run(k=3)
    old_labels = labels.run_labels(old.pk)
    new = train_run(k=6)
    new_labels = labels.run_labels(new.pk)
    assert new.is_active and old_labels != new_labels
    songs = sorted(Song.objects.values_list("id", flat=True))
    assert sorted(old_labels) == sorted(new_labels) == songs  # every song, once per run
    for run, expected in ((old, old_labels), (new, new_labels), (old, old_labels)):
        with CaptureQueriesContext(connection) as queries:
            services.training_run_activate(run=run)
        assert not _writes_songs(queries.captured_queries)
        # Nothing written but the runs' flags: the labels table is not touched either.
        # (A "COPY (SELECT …) TO" is a read: the catch-up's look for new songs.)
        written = [
            q["sql"] for q in queries.captured_queries if re.match(r"\s*(UPDATE|INSERT|DELETE|COPY(?!\s*\())", q["sql"])
        ]
        assert all("clustering_trainingrun" in sql or "clustering_cluster" in sql for sql in written), written
        assert TrainingRun.objects.get(is_active=True) == run
        # Each run's labels read back unchanged, and the active one is what songs show.
        assert labels.run_labels(old.pk) == old_labels and labels.run_labels(new.pk) == new_labels
        shown = active_labels()
        assert {i: (s.cluster_id, s.map_x, s.map_y) for i, s in shown.items()} == expected


def test_a_rollback_restores_exactly_the_previous_runs_labels(demo_catalog):
    first = train_run(k=4, random_state=0)
    before = active_labels()
    train_run(k=5, random_state=1)
    assert active_labels() != before
    services.training_run_activate(run=first)
    assert active_labels() == before  # song for song: cluster, its name, map position


def test_records_read_for_a_named_run_carry_its_labels_whichever_run_is_active(demo_catalog):
    """A similar-song lookup reads its results' records with the labels of
    the run whose index it searched (songs.selectors.song_records(run=…))."""
    first = train_run(k=3, random_state=0)
    second = train_run(k=6, random_state=1)
    ids = sorted(Song.objects.values_list("id", flat=True))
    expected = {run.pk: labels.run_labels(run.pk) for run in (first, second)}
    assert expected[first.pk] != expected[second.pk]
    for active in (second, first):
        services.training_run_activate(run=active)
        for run in (first, second, None):
            records = song_records(ids=ids, run=None if run is None else run.pk)
            shown = {pk: (r["cluster"]["id"], r["map_x"], r["map_y"]) for pk, r in records.items()}
            assert shown == expected[(active if run is None else run).pk]
    names = dict(Cluster.objects.filter(run=first).values_list("id", "name"))
    assert all(r["cluster"]["name"] == names[r["cluster"]["id"]] for r in song_records(ids=ids, run=first.pk).values())


def test_old_runs_labels_are_dropped_past_label_runs_kept(demo_catalog, settings):
    settings.LABEL_RUNS_KEPT = 1
    runs = [train_run(k=k) for k in (3, 4, 5)]
    # The active run (the last) plus the last successful one: the same run here; the others went.
    assert labels.runs_with_labels() == {runs[2].pk}
    original = {song_id: label.cluster_label for song_id, label in active_labels().items()}
    assert original
    # Rolling back to a run without labels labels the catalog with its model, then flips.
    services.training_run_activate(run=runs[0])
    assert labels.labels_exist(runs[0].pk)
    _ids, X = selectors.song_feature_matrix()
    expected = artifacts.model_load(runs[0]).predict(X).tolist()
    assert [label.cluster_label for _, label in sorted(active_labels().items())] == expected
    # Past the limit again (the active run's stay, whatever its age).
    services.run_artifacts_prune()
    assert labels.runs_with_labels() == {runs[0].pk, runs[2].pk}


def test_rollback_to_a_run_with_neither_labels_nor_files_says_so(demo_catalog, settings):
    settings.LABEL_RUNS_KEPT = 0
    settings.MODEL_KEEP_RUNS = 0
    old, new = train_run(k=3), train_run(k=4)
    assert not labels.labels_exist(old.pk)
    old.refresh_from_db()
    with pytest.raises(services.TrainingError, match="labels were dropped"):
        services.training_run_activate(run=old)
    assert TrainingRun.objects.get(is_active=True) == new and labels.labels_exist(new.pk)


def test_a_failed_run_leaves_no_labels(trained_demo, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("broken during activation")

    monkeypatch.setattr(services, "_carry_identity", broken)  # after its labels were written
    from clustering.tasks import train_run_task

    run = services.training_run_create(k=5, enqueue=False)
    assert train_run_task.apply(args=[run.pk]).get() == "failed"
    run.refresh_from_db()
    assert run.status == "failed" and "broken during activation" in run.error
    assert not labels.labels_exist(run.pk)
    assert labels.runs_with_labels() == {trained_demo.pk}
    assert TrainingRun.objects.get(is_active=True) == trained_demo


def test_a_deleted_run_takes_its_labels_along(demo_catalog):
    old, _new = train_run(k=3), train_run(k=4)
    run_id = old.pk
    assert labels.labels_exist(run_id)
    old.delete()
    assert not labels.labels_exist(run_id)


def test_songs_imported_after_training_are_labelled_at_once(trained_demo, tmp_path, client, api):
    run = trained_demo
    rows = flagship_rows(3, start=7001)
    job = songs_import_file(path=write_csv(tmp_path / "late.csv", rows))
    assert job.status == "succeeded" and job.rows_created == 3
    late = list(Song.objects.filter(external_id__in=[r["id_songs"] for r in rows]).order_by("id"))
    found = labels_of(s.pk for s in late)
    assert set(found) == {s.pk for s in late}
    _ids, X = selectors.song_features_of(np.array([s.pk for s in late]))
    model = artifacts.model_load(run)
    assert [found[s.pk].cluster_label for s in late] == model.predict(X).tolist()
    coords = model.transform_map(X)
    stored = np.array([(found[s.pk].map_x, found[s.pk].map_y) for s in late])
    assert np.allclose(stored, coords)
    song = late[0]
    cluster_id = found[song.pk].cluster_id
    # Visible at once: the cluster page, the API's cluster filter, the song itself.
    page = selectors.cluster_songs_page(cluster_id=cluster_id, after=None)
    while song not in page.items and page.next_cursor:
        page = selectors.cluster_songs_page(cluster_id=cluster_id, after=page.next_cursor)
    assert song in page.items
    listed = api.get("/api/songs/", {"cluster": cluster_id, "search": song.name, "page_size": 500}).json()
    assert song.external_id in [s["id"] for s in listed["results"]]
    assert api.get(f"/api/songs/{song.external_id}/").json()["cluster"]["id"] == cluster_id
    html = client.get(f"/clusters/{cluster_id}/", {"q": song.name}).content.decode()
    assert song.external_id in html or song.name in html
    # A changed song is labelled again with the new features; the others keep theirs.
    before = labels.run_labels(run.pk)
    changed = dict(rows[1], energy="0.99", danceability="0.98", acousticness="0.01")
    job = songs_import_file(path=write_csv(tmp_path / "late2.csv", [changed]))
    assert job.rows_updated == 1
    after = labels.run_labels(run.pk)
    _ids, X = selectors.song_features_of(np.array([late[1].pk]))
    assert after[late[1].pk][0] == run.clusters.get(label=int(model.predict(X)[0])).pk
    assert {k: v for k, v in after.items() if k != late[1].pk} == {k: v for k, v in before.items() if k != late[1].pk}


def test_a_run_activated_later_labels_the_songs_imported_since(demo_catalog, tmp_path):
    first = train_run(k=3)
    second = train_run(k=4, activate=False)
    assert TrainingRun.objects.get(is_active=True) == first
    job = songs_import_file(path=write_csv(tmp_path / "late.csv", flagship_rows(2, start=8001)))
    assert job.rows_created == 2
    late = list(Song.objects.filter(external_id__startswith="SONG00000000000000800").values_list("id", flat=True))
    assert set(late) <= set(labels.run_labels(first.pk)) and not set(late) & set(labels.run_labels(second.pk))
    services.training_run_activate(run=second)
    assert set(active_labels()) == set(Song.objects.values_list("id", flat=True))


def _labels_tables() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname LIKE 'clustering\\_songlabel\\_run\\_%'"
        )
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_labels_tables_an_interrupted_drop_left_are_cleared_by_the_next_write_or_drop(demo_catalog, settings):
    """A drop detaches a run's partition concurrently, then drops it: cut off
    in between, it leaves a partition pending detach (Postgres then refuses
    to detach any other) or a detached table (invisible, never dropped)."""
    import psycopg

    from tests.conftest import _require

    if connection.vendor != "postgresql":
        _require("label partitions are Postgres-only")
    settings.LABEL_RUNS_KEPT = 5
    first, second, third = (train_run(k=k) for k in (3, 4, 5))
    # A concurrent detach of the first run's labels, cut off while another
    # session reads the labels table (its statement timeout).
    params = connection.get_connection_params()
    dsn = {k: v for k, v in params.items() if k in ("host", "port", "user", "password", "dbname")}
    with psycopg.connect(**dsn) as reader:
        reader.execute("SELECT count(*) FROM clustering_songlabel")
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = '300ms'")
            with pytest.raises(Exception, match="statement timeout"):
                cursor.execute(
                    f"ALTER TABLE clustering_songlabel DETACH PARTITION {labels.partition_name(first.pk)} CONCURRENTLY"
                )
            cursor.execute("RESET statement_timeout")
        reader.rollback()
    # ... and a drop cut off after its detach (a table of a run id to come).
    upcoming = labels.partition_name(third.pk + 1)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {upcoming} (LIKE clustering_songlabel)")
    assert not labels.labels_exist(first.pk) and labels.runs_with_labels() == {second.pk, third.pk}
    # The next drop finishes both, then drops its own.
    assert labels.labels_drop(second.pk)
    assert _labels_tables() == {labels.partition_name(third.pk)}
    # A leftover of the next run's id does not stop that run from writing its labels.
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {upcoming} (LIKE clustering_songlabel)")
    fourth = train_run(k=4)
    assert labels.partition_name(fourth.pk) == upcoming and fourth.is_active
    assert sorted(labels.run_labels(fourth.pk)) == sorted(Song.objects.values_list("id", flat=True))
    assert labels.runs_with_labels() == {third.pk, fourth.pk}


@pytest.mark.django_db(transaction=True)
def test_a_drop_under_way_never_takes_the_labels_of_a_run_rolled_back_to_meanwhile(demo_catalog, settings):
    """A drop (the workers' sweep pruning old runs) decides a run is not
    active, then waits for readers while it detaches the run's labels; a
    rollback to that very run meanwhile waits for the drop to finish, labels
    the catalog again with the run's model and flips: the active run never
    lacks its labels, and the rollback does not fail."""
    import threading
    import time

    import psycopg
    from django.db import connections

    from tests.conftest import _require, wait_for

    if connection.vendor != "postgresql":
        _require("label partitions are Postgres-only")
    settings.LABEL_RUNS_KEPT = 5
    old = train_run(k=3)
    before = labels.run_labels(old.pk)
    assert train_run(k=4).is_active
    errors: list[Exception] = []

    def in_thread(work) -> threading.Thread:
        def target():
            try:
                work()
            except Exception as exc:  # reported by the assertion below
                errors.append(exc)
            finally:
                connections.close_all()

        thread = threading.Thread(target=target)
        thread.start()
        return thread

    def pending() -> bool:
        with connection.cursor() as cursor:
            return labels._partition_state(cursor, old.pk) == "pending"

    params = connection.get_connection_params()
    dsn = {k: v for k, v in params.items() if k in ("host", "port", "user", "password", "dbname")}
    with psycopg.connect(**dsn) as reader:
        reader.execute("SELECT count(*) FROM clustering_songlabel")  # a read whose transaction is still open
        dropping = in_thread(lambda: labels.labels_drop(old.pk))
        wait_for(pending, timeout=30)  # decided, and detaching: it waits for the reader
        rolling_back = in_thread(lambda: services.training_run_activate(run=TrainingRun.objects.get(pk=old.pk)))
        time.sleep(0.5)
        assert rolling_back.is_alive() and not errors, errors  # it waits for the drop
        reader.rollback()
    dropping.join(timeout=60)
    rolling_back.join(timeout=120)
    assert not dropping.is_alive() and not rolling_back.is_alive() and not errors, errors
    old.refresh_from_db()
    assert old.is_active and labels.labels_exist(old.pk)
    # Labelled again by its model: the same clusters and map positions as when it trained.
    after = labels.run_labels(old.pk)
    assert sorted(after) == sorted(before) == sorted(Song.objects.values_list("id", flat=True))
    assert all(after[i][0] == before[i][0] for i in before)
    assert max(abs(after[i][1] - before[i][1]) + abs(after[i][2] - before[i][2]) for i in before) < 1e-9
    assert {i: label.cluster_id for i, label in active_labels().items()} == {i: c for i, (c, _, _) in after.items()}
