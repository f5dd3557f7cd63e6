"""Training runs, activation, identity across retrains, artifacts, export."""

import csv
import io
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from clustering import artifacts, selectors, services
from clustering.ml.spec import TrainingSpec
from clustering.models import TrainingRun
from songs.models import Song
from songs.services import songs_import_file
from tests.conftest import active_cluster_labels, active_labels

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def model_dir(tmp_path, settings):
    settings.MODEL_DIR = tmp_path / "models"
    artifacts.cache_clear()
    return settings.MODEL_DIR


def train(**kwargs) -> TrainingRun:
    run = services.training_run_create(enqueue=False, **kwargs)
    assert services.training_run_claim(run_id=run.pk)
    return services.training_run_execute(run_id=run.pk)


def stored_labels() -> np.ndarray:
    return np.array(active_cluster_labels())


def test_stored_labels_equal_the_offline_pipeline_and_predictions(demo_catalog):
    run = train(k=4, random_state=0)
    assert run.status == "succeeded" and run.is_active
    _ids, X = selectors.song_feature_matrix()
    offline = KMeans(n_clusters=4, n_init=3, random_state=0).fit(StandardScaler().fit_transform(X)).labels_
    assert np.array_equal(stored_labels(), offline)
    # Predicting each song's own features returns its stored cluster.
    predicted = [r["cluster"]["label"] for r in services.cluster_predict(X=X)]
    assert predicted == stored_labels().tolist()
    # Map coordinates are on every song, clusters carry profiles and sizes.
    labels = active_labels()
    assert len(labels) == 3000 and all(label.map_x is not None and label.map_y is not None for label in labels.values())
    assert sum(run.clusters.values_list("size", flat=True)) == Song.objects.count() == 3000
    first = run.clusters.order_by("label").first()
    assert first.profile["representative_song_ids"] and first.description


def test_auto_k_gives_distinct_names_and_beats_the_notebook_recipe(demo_catalog):
    run = train(k="auto")
    names = list(run.clusters.values_list("name", flat=True))
    assert len(names) == len(set(names)) == run.n_clusters >= 2
    low, high = TrainingSpec().scan_k_range  # the default scan: a browsable number of clusters
    assert [row["k"] for row in run.k_scan] == list(range(low, high + 1)) and low >= 5
    assert all({"inertia", "silhouette", "davies_bouldin", "calinski_harabasz"} <= set(row) for row in run.k_scan)
    _, X = selectors.song_feature_matrix()
    Z = StandardScaler().fit_transform(X)
    notebook = silhouette_score(Z, KMeans(n_clusters=3, n_init=10, random_state=0).fit_predict(Z))
    ours = silhouette_score(Z, stored_labels())
    assert ours >= notebook


def test_rollback_to_an_older_run_restores_exactly_its_labels(demo_catalog):
    old = train(k=3)
    old_labels = active_labels()
    new = train(k=6)
    assert TrainingRun.objects.filter(is_active=True).get() == new
    assert set(stored_labels()) == set(range(6))
    assert active_labels() != old_labels
    services.training_run_activate(run=old)
    assert TrainingRun.objects.filter(is_active=True).get() == old
    # Song for song: the same cluster (a cluster of the old run) and the same map position.
    assert active_labels() == old_labels
    assert set(old.clusters.values_list("pk", flat=True)) >= {label.cluster_id for label in old_labels.values()}


def test_admin_names_and_lineage_carry_over_to_the_next_run(demo_catalog):
    first = train(k=4, random_state=0)
    cluster = first.clusters.order_by("label").first()
    cluster.name, cluster.name_is_custom = "Our Night Drive", True
    cluster.save()
    second = train(k=4, random_state=1)  # same data: the same clusters, other label order perhaps
    renamed = second.clusters.get(name="Our Night Drive")
    assert renamed.name_is_custom and renamed.lineage == cluster.lineage
    assert second.clusters.exclude(lineage=None).count() == 4
    names = list(second.clusters.values_list("name", flat=True))
    assert len(names) == len(set(names))


def test_a_failing_run_leaves_the_active_model_and_labels_untouched(trained_demo):
    good = trained_demo
    before = active_labels()
    with pytest.raises(services.TrainingError, match="eps must be > 0"):  # refused at the door
        services.training_run_create(enqueue=False, algorithm="dbscan", algorithm_params={"eps": -1})
    bad = services.training_run_create(enqueue=False, algorithm="dbscan", algorithm_params={"eps": 0.5})
    # A stored spec that no longer validates fails the run, not the worker.
    TrainingRun.objects.filter(pk=bad.pk).update(params={**bad.params, "algorithm_params": {"eps": -1}})
    from clustering.tasks import train_run_task

    assert train_run_task.apply(args=[bad.pk]).get() == "failed"
    bad.refresh_from_db()
    assert bad.status == "failed" and "eps" in bad.error
    assert TrainingRun.objects.filter(is_active=True).get() == good
    assert active_labels() == before


def test_the_database_allows_one_running_run():
    first = services.training_run_create(enqueue=False)
    second = services.training_run_create(enqueue=False)
    assert services.training_run_claim(run_id=first.pk) is True
    with pytest.raises(services.RunBusy):
        services.training_run_claim(run_id=second.pk)
    assert services.training_run_claim(run_id=first.pk) is False  # a redelivery does nothing


def test_a_run_whose_worker_died_is_marked_failed():
    run = services.training_run_create(enqueue=False)
    services.training_run_claim(run_id=run.pk)
    assert services.training_runs_fail_stale(older_than=3600) == 0
    assert services.training_runs_fail_stale(older_than=-1) == 1
    run.refresh_from_db()
    assert run.status == "failed" and "stopped responding" in run.error


def test_empty_catalog_fails_with_a_clear_reason():
    run = services.training_run_create(enqueue=False)
    from clustering.tasks import train_run_task

    assert train_run_task.apply(args=[run.pk]).get() == "failed"
    run.refresh_from_db()
    assert "too few to train" in run.error


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"algorithm": "spectral"}, "unknown algorithm"),
        ({"k": 1}, "between 2 and 100"),
        ({"k": "many"}, "whole number"),
        ({"scaler": "minmax"}, "unknown scaler"),
        ({"features": ["energy", "bpm"]}, "unknown feature"),
    ],
)
def test_bad_parameters_are_refused(kwargs, message):
    with pytest.raises(services.TrainingError, match=message):
        services.training_run_create(enqueue=False, **kwargs)
    assert not TrainingRun.objects.exists()


def test_altered_or_foreign_artifacts_are_refused(trained_demo):
    run = trained_demo
    artifacts.cache_clear()
    with open(run.artifact_path, "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(services.ArtifactError, match="altered"):
        artifacts.model_load(run)
    run.artifact_sha256 = artifacts.sha256_file(run.artifact_path)
    run.sklearn_version = "0.1"
    with pytest.raises(services.ArtifactError, match=r"scikit-learn 0.1"):
        artifacts.model_load(run)


@pytest.mark.django_db(transaction=True)  # the command enqueues on commit
def test_train_command_waits_and_prints_json(demo_catalog, capsys, task_runner):
    call_command("train", "--k", "3", "--wait", "--timeout", "120")
    last = capsys.readouterr().out.strip().splitlines()[-1]
    payload = json.loads(last)
    assert payload["status"] == "succeeded" and payload["n_clusters"] == 3
    assert payload["metrics"]["silhouette"] > 0
    with pytest.raises(CommandError, match="between 2 and 100"):
        call_command("train", "--k", "0")


def test_export_songs_has_labels_and_defuses_formulas(catalog_csv, tmp_path):
    from tests.conftest import flagship_rows

    rows = flagship_rows(40)
    rows[0]["name_song"] = '=HYPERLINK("http://x","y")'
    rows[1]["name_artists"], rows[1]["id_artists"] = "@evil", "EVIL00000000000000000X"
    songs_import_file(path=catalog_csv(rows))
    train(k=2)
    out = tmp_path / "export.csv"
    call_command("export_songs", str(out))
    exported = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(exported) == 40
    assert {"cluster", "cluster_name", "map_x", "map_y"} <= set(exported[0])
    by_id = {r["id_songs"]: r for r in exported}
    assert by_id[rows[0]["id_songs"]]["name_song"] == "'" + rows[0]["name_song"]
    assert by_id[rows[1]["id_songs"]]["name_artists"] == "'@evil"
    assert all(r["cluster_name"] for r in exported)
    assert by_id[rows[2]["id_songs"]]["loudness"] == "-6.4"  # numbers are not escaped


def test_soft_time_limit_fails_the_run_and_keeps_the_old_model(trained_demo, monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    from clustering.tasks import train_run_task

    good = trained_demo
    run = services.training_run_create(enqueue=False)

    def too_slow(**kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(services, "training_run_execute", too_slow)
    assert train_run_task.apply(args=[run.pk]).get() == "failed"
    run.refresh_from_db()
    assert run.status == "failed" and "time limit" in run.error
    assert TrainingRun.objects.filter(is_active=True).get() == good


def test_admin_activate_action_rolls_back_and_rename_sticks(demo_catalog, admin_client):
    old = train(k=3)
    new = train(k=5)
    response = admin_client.post(
        "/admin/clustering/trainingrun/",
        {"action": "activate_run", "_selected_action": [old.pk]},
        follow=True,
    )
    assert f"Run #{old.pk} is now active".encode() in response.content
    assert TrainingRun.objects.get(is_active=True) == old
    assert {label.cluster_id for label in active_labels().values()} <= set(old.clusters.values_list("pk", flat=True))
    cluster = old.clusters.order_by("label").first()
    page = admin_client.get(f"/admin/clustering/cluster/{cluster.pk}/change/")
    assert page.status_code == 200
    admin_client.post(f"/admin/clustering/cluster/{cluster.pk}/change/", {"name": "Sunday Morning"})
    cluster.refresh_from_db()
    assert cluster.name == "Sunday Morning" and cluster.name_is_custom
    assert new.pk != old.pk
