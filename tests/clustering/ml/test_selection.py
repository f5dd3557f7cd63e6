import numpy as np
import pytest
from sklearn.cluster import DBSCAN
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

from clustering.ml import FeaturePreparer, choose_eps, choose_k, scan_k, silhouette
from clustering.ml.selection import label_metrics, spread_scores

from .synth import catalog, four_centers

METRICS = ("inertia", "silhouette", "davies_bouldin", "calinski_harabasz")


@pytest.fixture(scope="module")
def Z4():
    X, _ = catalog(four_centers(), n_per=150, noise=0.04)
    return FeaturePreparer().fit_transform(X)


def test_scan_returns_every_k_with_all_metrics(Z4):
    scan = scan_k(Z4, k_values=range(2, 8), random_state=0)
    assert [r["k"] for r in scan] == [2, 3, 4, 5, 6, 7]
    for r in scan:
        assert all(isinstance(r[m], float) for m in METRICS), r
        assert 0 < r["min_cluster_share"] <= 0.5 and r["seconds"] >= 0
    inertias = [r["inertia"] for r in scan]
    assert inertias == sorted(inertias, reverse=True)  # more clusters, tighter fit


def test_choose_k_finds_the_true_k(Z4):
    assert choose_k(scan_k(Z4, k_values=range(2, 9))) == 4


def test_scan_on_a_fit_sample_still_scores_all_rows(Z4):
    scan = scan_k(Z4, k_values=[3, 4, 5], fit_sample_size=200, sample_size=300)
    assert choose_k(scan) == 4
    four = next(r for r in scan if r["k"] == 4)
    assert four["min_cluster_share"] == pytest.approx(0.25)  # all 600 rows labelled


def test_scan_gmm_reports_bic(Z4):
    scan = scan_k(Z4, k_values=[3, 4], algorithm="gmm")
    assert all(r["inertia"] is None and isinstance(r["bic"], float) for r in scan)
    assert choose_k(scan) == 4


def test_choose_k_respects_min_cluster_share():
    scan = [
        {"k": 3, "silhouette": 0.40, "min_cluster_share": 0.20},
        {"k": 5, "silhouette": 0.55, "min_cluster_share": 0.01},  # best, but a 1 % cluster
        {"k": 6, "silhouette": 0.45, "min_cluster_share": 0.05},
    ]
    assert choose_k(scan, min_cluster_share=0.02) == 6
    assert choose_k(scan, min_cluster_share=0.0) == 5
    # Nothing qualifies: fall back to the best silhouette overall.
    assert choose_k(scan, min_cluster_share=0.5) == 5


def test_scan_rejects_bad_input(Z4):
    with pytest.raises(ValueError, match="k-based algorithm"):
        scan_k(Z4, algorithm="dbscan")
    with pytest.raises(ValueError, match="k must be >= 2"):
        scan_k(Z4, k_values=[1, 2])
    with pytest.raises(ValueError, match="exceeds the number of songs"):
        scan_k(Z4[:5], k_values=[2, 6])
    with pytest.raises(ValueError, match="NaN"):
        scan_k(np.full((10, 3), np.nan))
    with pytest.raises(ValueError, match="empty"):
        choose_k([])


def test_silhouette_matches_sklearn(Z4):
    labels = np.repeat(np.arange(4), 150)
    labels[::7] = (labels[::7] + 1) % 4  # not a perfect partition
    assert silhouette(Z4, labels) == pytest.approx(silhouette_score(Z4, labels), abs=1e-9)
    assert silhouette(Z4, np.zeros(len(Z4), dtype=int)) is None


def test_spread_scores_match_sklearn(Z4):
    labels = np.repeat(np.arange(4), 150)
    labels[::7] = (labels[::7] + 1) % 4
    for lab in (labels, labels + 2 * (labels == 3)):  # labels 0, 1, 2, 5: absent ones skipped
        db, ch = spread_scores(Z4, lab, chunk_size=37)  # chunks that do not divide the rows
        assert db == pytest.approx(davies_bouldin_score(Z4, lab), rel=1e-10)
        assert ch == pytest.approx(calinski_harabasz_score(Z4, lab), rel=1e-10)
    same = np.repeat([[0.0, 1.0], [2.0, 3.0]], 5, axis=0)  # every cluster a single point: scikit-learn's 0 and 1
    assert spread_scores(same, np.repeat([0, 1], 5)) == (0.0, 1.0)
    assert davies_bouldin_score(same, np.repeat([0, 1], 5)) == 0.0
    assert calinski_harabasz_score(same, np.repeat([0, 1], 5)) == 1.0


def test_label_metrics_leave_noise_out(Z4):
    labels = np.repeat(np.arange(4), 150)
    labels[::5] = -1
    got = label_metrics(Z4, labels, silhouette_rows=np.arange(len(Z4)))
    keep = labels >= 0
    assert got["davies_bouldin"] == pytest.approx(davies_bouldin_score(Z4[keep], labels[keep]), rel=1e-10)
    assert got["calinski_harabasz"] == pytest.approx(calinski_harabasz_score(Z4[keep], labels[keep]), rel=1e-10)
    assert got["silhouette"] == pytest.approx(silhouette_score(Z4[keep], labels[keep]), abs=1e-9)


def test_choose_eps_gives_sensible_dbscan_clusters(Z4):
    eps = choose_eps(Z4, min_samples=8)
    labels = DBSCAN(eps=eps, min_samples=8).fit_predict(Z4)
    assert labels.max() + 1 == 4
    assert (labels == -1).mean() < 0.05


def test_choose_eps_quantile_method(Z4):
    low = choose_eps(Z4, min_samples=8, method="quantile", quantile=0.5)
    high = choose_eps(Z4, min_samples=8, method="quantile", quantile=0.95)
    assert 0 < low < high
    with pytest.raises(ValueError, match="method"):
        choose_eps(Z4, min_samples=8, method="elbow")
    with pytest.raises(ValueError, match="min_samples must be >= 1"):
        choose_eps(Z4, min_samples=0)
