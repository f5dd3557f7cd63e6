"""Retraining through Celery: eagerly in the embedded mode, through a real
worker process with Redis and Postgres (see tests/conftest.py)."""

import threading

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections

from clustering import artifacts, selectors, services
from clustering.labels import labels_exist
from clustering.models import TrainingRun
from songs.labels import label_source
from songs.models import Song
from songs.services import songs_import_file
from tests.conftest import active_labels, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "pw-123456789")
    client.force_login(user)
    return client


def finished(run_id):
    return TrainingRun.objects.filter(pk=run_id, status__in=["succeeded", "failed"]).first()


def test_retrain_queued_from_admin_runs_to_success(staff_client, demo_catalog, task_runner):
    form = staff_client.get("/admin/clustering/trainingrun/retrain/")
    assert form.status_code == 200 and b"Queue training run" in form.content
    response = staff_client.post(
        "/admin/clustering/trainingrun/retrain/",
        {
            "algorithm": "kmeans",
            "k": "5",
            "scan_k_min": 2,
            "scan_k_max": 12,
            "scaler": "standard",
            "features": list(Song.FEATURES),
            "scan_sample_size": 2000,
            "activate": "on",
        },
    )
    assert response.status_code == 302, response.content[:3000]
    run = TrainingRun.objects.get()
    run = wait_for(lambda: finished(run.pk), timeout=120)
    assert run.status == "succeeded", run.error
    assert run.is_active and run.n_clusters == 5 and run.created_by.username == "ops"
    assert len(active_labels()) == Song.objects.count()
    page = staff_client.get(f"/admin/clustering/trainingrun/{run.pk}/change/").content.decode()
    assert "<progress" in page and "silhouette" in page and run.clusters.first().name in page


def test_admin_retrain_form_rejects_bad_k(staff_client):
    response = staff_client.post(
        "/admin/clustering/trainingrun/retrain/",
        {
            "algorithm": "kmeans",
            "k": "zero",
            "scan_k_min": 2,
            "scan_k_max": 12,
            "scaler": "standard",
            "features": list(Song.FEATURES),
            "scan_sample_size": 2000,
        },
    )
    assert response.status_code == 200 and b"k must be a whole number between 2 and 100" in response.content
    assert not TrainingRun.objects.exists()


def test_two_retrains_never_run_alongside(demo_catalog, task_runner):
    first = services.training_run_create(k="auto", scan_k_range=(3, 5))
    second = services.training_run_create(k=4)
    runs = [wait_for(lambda r=r: finished(r.pk), timeout=180) for r in (first, second)]
    if task_runner == "worker":
        # The worker has two processes; the database let one train at a time.
        assert all(r.status == "succeeded" for r in runs), [r.error for r in runs]
        a, b = sorted(runs, key=lambda r: r.started_at)
        assert a.finished_at <= b.started_at
    assert TrainingRun.objects.filter(is_active=True).count() == 1


@pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"), reason="needs MVCC readers (Postgres)"
)
def test_readers_never_see_a_mix_of_two_labellings(demo_catalog):
    first = services.training_run_create(k=3, enqueue=False)
    services.training_run_claim(run_id=first.pk)
    first = services.training_run_execute(run_id=first.pk)
    second = services.training_run_create(k=7, enqueue=False, activate=False)
    services.training_run_claim(run_id=second.pk)
    second = services.training_run_execute(run_id=second.pk)
    assert first.is_active and not second.is_active
    seen: list[tuple[int, int]] = []
    stop = threading.Event()
    source = label_source()  # what every read of a song's cluster joins

    def poll():
        conn = connections.create_connection("default")
        try:
            while not stop.is_set():
                with conn.cursor() as cursor:
                    cursor.execute(
                        f"SELECT count(DISTINCT c.run_id), count(*) FROM songs_song s "
                        f"JOIN ({source.sql}) l ON l.song_id = s.id JOIN clustering_cluster c ON c.id = l.cluster_id",
                        source.params,
                    )
                    seen.append(cursor.fetchone())
        finally:
            conn.close()

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        for run in (second, first, second, first):
            services.training_run_activate(run=run)
    finally:
        stop.set()
        reader.join()
    assert len(seen) > 5
    assert set(seen) == {(1, 3000)}


def test_activation_split_over_two_workers(demo_catalog, task_runner):
    """Labels written by id-range chunks (a chord shared by two worker
    processes, each chunk into the run's own labels) equal, song for song,
    the labels of the same run computed in one process."""
    from clustering.labels import run_labels
    from musiccluster.celery import app
    from tests.conftest import start_worker, stop_worker

    if task_runner != "worker":
        # Eager tasks never split the activation (clustering.services.activation_chunk_size).
        pytest.skip(
            "splitting the activation over workers needs a real broker and worker "
            "(CELERY_BROKER_URL and DATABASE_URL=postgres://...)"
        )
    second = start_worker(app.conf.task_default_queue, concurrency=1, name="second")
    try:
        run = services.training_run_create(k=4, activation_chunk_songs=700)
        run = wait_for(lambda: finished(run.pk), timeout=180)
    finally:
        stop_worker(second)
    assert run.status == "succeeded", run.error
    assert run.is_active
    assert run.timings["activation_chunks"] == 5  # 3,000 songs in chunks of 700
    split = run_labels(run.pk)
    # The same run (same spec, same catalog) trained and labelled in one process.
    here = services.training_run_create(k=4, activate=False, enqueue=False)
    services.training_run_claim(run_id=here.pk)
    here = services.training_run_execute(run_id=here.pk)
    assert here.status == "succeeded" and not here.is_active, here.error
    in_process = run_labels(here.pk)
    ids = sorted(Song.objects.values_list("id", flat=True))
    assert sorted(split) == sorted(in_process) == ids
    label_of = {
        **dict(run.clusters.values_list("pk", "label")),
        **dict(here.clusters.values_list("pk", "label")),
    }
    for song_id in ids:
        (c1, x1, y1), (c2, x2, y2) = split[song_id], in_process[song_id]
        assert label_of[c1] == label_of[c2], song_id
        assert abs(x1 - x2) < 1e-9 and abs(y1 - y2) < 1e-9, song_id
    # Both equal the model's prediction of every song.
    _ids, X = selectors.song_feature_matrix()
    predicted = artifacts.model_load(run).predict(X).tolist()
    assert [label_of[split[i][0]] for i in ids] == predicted
    # The split run is the active one: its labels are what reads see.
    assert {i: label.cluster_id for i, label in active_labels().items()} == {i: split[i][0] for i in ids}
    # Its index holds the fit's labels, which results take (clustering.index_labels):
    # the chunks' clusters, and their map positions to the last bits.
    from clustering.index_labels import records_labelled
    from songs.selectors import song_records

    active, index = artifacts.active_index()
    assert active.pk == run.pk and index.map_ is not None
    rows = dict(zip(ids, index.rows_of(ids).tolist()))
    from_index, stored = records_labelled(index=index, run=run, ids=ids, rows=rows), song_records(ids=ids, run=run.pk)
    for song_id in ids:
        a, b = from_index[song_id], stored[song_id]
        assert a["cluster"] == b["cluster"], song_id
        assert abs(a["map_x"] - b["map_x"]) < 1e-9 and abs(a["map_y"] - b["map_y"]) < 1e-9, song_id


def test_a_worker_killed_mid_run_leaves_a_failed_run_and_the_old_model(tmp_path, task_runner):
    """SIGKILL the whole worker while it scans k on 60,000 songs: the run it
    held is detected (no heartbeat) and marked failed; the old model stays."""
    import os
    import signal
    import time

    from clustering.tasks import train_run_task
    from songs.generator import generate_catalog
    from tests.conftest import start_worker, stop_worker

    if task_runner != "worker":
        pytest.skip("needs a real worker process to kill")
    path = tmp_path / "big.csv"
    generate_catalog(songs=60_000, seed=5, out=path)
    assert songs_import_file(path=path).status == "succeeded"
    old = services.training_run_create(k=3, enqueue=False)
    services.training_run_claim(run_id=old.pk)
    old = services.training_run_execute(run_id=old.pk)
    labels_before = active_labels()

    queue = f"doomed-{os.getpid()}"
    worker = start_worker(queue, concurrency=1)
    try:
        run = services.training_run_create(k="auto", scan_sample_size=20_000, enqueue=False)
        train_run_task.apply_async(args=[run.pk], queue=queue)
        wait_for(lambda: TrainingRun.objects.filter(pk=run.pk, status="running", stage="scan").exists(), timeout=120)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=20)
    finally:
        stop_worker(worker)
    time.sleep(2.5)
    assert TrainingRun.objects.get(pk=run.pk).status == "running"  # nobody knows yet
    assert services.training_runs_fail_stale(older_than=2) == 1
    run.refresh_from_db()
    assert run.status == "failed" and "stopped responding" in run.error
    assert TrainingRun.objects.filter(is_active=True).get() == old
    assert active_labels() == labels_before
    assert not labels_exist(run.pk)  # a failed run keeps no labels


def test_a_failing_run_in_the_worker_keeps_the_old_model_and_labels(demo_catalog, task_runner):
    good = services.training_run_create(k=4)
    good = wait_for(lambda: finished(good.pk), timeout=120)
    assert good.status == "succeeded", good.error
    before = active_labels()
    bad = services.training_run_create(algorithm="dbscan", algorithm_params={"eps": 0.5}, enqueue=False)
    # A stored spec that no longer validates fails the run in the worker, not the worker.
    TrainingRun.objects.filter(pk=bad.pk).update(params={**bad.params, "algorithm_params": {"eps": -1}})
    from clustering.tasks import train_run_task

    train_run_task.delay(bad.pk)
    bad = wait_for(lambda: finished(bad.pk), timeout=120)
    assert bad.status == "failed" and "eps" in bad.error
    assert TrainingRun.objects.filter(is_active=True).get() == good
    assert active_labels() == before
    assert not labels_exist(bad.pk)
