"""k="auto" says why it kept its k, and which better-silhouette k its floor discarded."""

import pytest

from clustering.ml import ClusterModel, choose_k, explain_k_choice
from clustering.ml.selection import DEFAULT_MIN_CLUSTER_SHARE
from clustering.ml.spec import TrainingSpec

from .synth import catalog, four_centers


def _row(k, sil, share):
    return {"k": k, "silhouette": sil, "min_cluster_share": share}


def test_the_reason_names_the_discarded_better_k_and_the_floor():
    scan = [_row(5, 0.20, 0.03), _row(6, 0.24, 0.004), _row(7, 0.22, 0.02), _row(8, 0.26, 0.001)]
    why = explain_k_choice(scan, min_cluster_share=0.01)
    assert why["k"] == 7 == choose_k(scan, min_cluster_share=0.01)
    assert not why["fallback"] and why["scanned"] == [5, 6, 7, 8]
    assert [d["k"] for d in why["discarded"]] == [8, 6]  # best silhouette first
    assert why["text"] == (
        "k = 7 has the best silhouette (0.220) among k = 5–8 whose smallest cluster holds at least 1 % of the songs; "
        "k = 8 scored higher (0.260) but its smallest cluster held 0.1 % of the songs; "
        "k = 6 scored higher (0.240) but its smallest cluster held 0.4 % of the songs."
    )


def test_no_discarded_k_when_the_best_silhouette_passes_the_floor():
    why = explain_k_choice([_row(5, 0.3, 0.2), _row(6, 0.2, 0.001)])
    assert why["k"] == 5 and why["discarded"] == [] and "scored higher" not in why["text"]


def test_when_every_k_breaks_the_floor_the_fallback_is_said():
    why = explain_k_choice([_row(5, 0.1, 0.001), _row(6, 0.2, 0.002)], min_cluster_share=0.02)
    assert why["k"] == 6 and why["fallback"] and why["discarded"] == []
    assert why["text"].startswith("Every k of k = 5–6 left a cluster under 2 % of the songs")


def test_empty_or_unscored_scans_are_refused():
    with pytest.raises(ValueError, match="scan is empty"):
        explain_k_choice([])
    with pytest.raises(ValueError, match="silhouette"):
        explain_k_choice([_row(5, None, 0.5)])


def test_the_model_keeps_the_reason_in_its_summary():
    X, _ = catalog(four_centers(), n_per=60, noise=0.03)
    model = ClusterModel(k="auto", scan_k_values=range(2, 7), random_state=0).fit(X)
    assert model.summary()["k_choice"]["k"] == model.k_ == 4
    assert ClusterModel(k=4, random_state=0).fit(X).summary()["k_choice"] is None


def test_defaults_scan_a_browsable_range_with_a_one_percent_floor():
    assert TrainingSpec().scan_k_range == (5, 12)
    assert DEFAULT_MIN_CLUSTER_SHARE == 0.01 == ClusterModel().min_cluster_share
