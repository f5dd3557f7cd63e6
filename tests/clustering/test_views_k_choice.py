"""The dashboard, the runs page and the admin's run page say why k=auto chose its k."""

import pytest

from clustering import selectors
from clustering.models import TrainingRun

pytestmark = pytest.mark.django_db


def test_pages_say_why_k_auto_chose_k(client, admin_client, scanned_demo_with_script_song):
    run = scanned_demo_with_script_song
    why = run.params["k_choice"]
    assert why["k"] == run.n_clusters and why["scanned"] == [3, 4, 5, 6]
    best = max(
        (r for r in run.k_scan if r["min_cluster_share"] >= why["min_cluster_share"]), key=lambda r: r["silhouette"]
    )
    assert best["k"] == run.n_clusters
    assert why["text"] in client.get("/").content.decode()
    assert why["text"] in client.get("/runs/").content.decode()
    assert why["text"] in admin_client.get(f"/admin/clustering/trainingrun/{run.pk}/change/").content.decode()


def test_a_run_trained_before_the_reason_was_stored_is_explained_with_the_old_floor(scanned_demo_with_script_song):
    run = scanned_demo_with_script_song
    run.params = {k: v for k, v in run.params.items() if k != "k_choice"}
    run.k_scan = [
        {"k": 2, "silhouette": 0.3, "min_cluster_share": 0.015},
        {"k": 3, "silhouette": 0.2, "min_cluster_share": 0.1},
    ]
    run.save()
    why = selectors.run_k_choice(TrainingRun.objects.get(pk=run.pk))
    assert why["k"] == 3 and why["min_cluster_share"] == 0.02
    assert [d["k"] for d in why["discarded"]] == [2]
    run.k_scan = []
    run.save()
    assert selectors.run_k_choice(run) is None
