import io
import json

import joblib
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

from clustering.ml import FEATURES, KMEANS_N_INIT, ClusterModel, match_models

from .synth import catalog, four_centers, to_real


@pytest.fixture(scope="module")
def X4():
    return catalog(four_centers(), n_per=120, noise=0.04)[0]


@pytest.fixture(scope="module")
def kmeans4(X4):
    return ClusterModel(k=4, random_state=0).fit(X4)


def offline_kmeans(X, k, rs):
    return KMeans(n_clusters=k, n_init=KMEANS_N_INIT, random_state=rs).fit(StandardScaler().fit_transform(X)).labels_


def test_labels_equal_offline_sklearn_pipeline():
    rng = np.random.default_rng(3)
    X = to_real(rng.uniform(0, 1, size=(600, 10)))  # no structure: init matters
    for k, rs in ((5, 0), (7, 42)):
        model = ClusterModel(k=k, random_state=rs).fit(X)
        np.testing.assert_array_equal(model.labels_, offline_kmeans(X, k, rs))
        np.testing.assert_array_equal(model.predict(X), model.labels_)


def test_feature_subset_labels_equal_offline_pipeline():
    rng = np.random.default_rng(4)
    X = to_real(rng.uniform(0, 1, size=(400, 10)))
    feats = ["energy", "valence", "tempo"]
    model = ClusterModel(k=4, features=feats, random_state=1).fit(X)
    cols = [FEATURES.index(f) for f in feats]
    np.testing.assert_array_equal(model.labels_, offline_kmeans(X[:, cols], 4, 1))
    assert model.centroids_.shape == (4, 3) and model.features_ == feats
    assert set(model.profiles_[0]["centroid"]) == set(FEATURES)  # profiles describe all ten


def test_fitted_attributes(kmeans4, X4):
    m = kmeans4
    assert (m.algorithm_, m.k_, m.n_clusters_, m.k_scan_) == ("kmeans", 4, 4, None)
    assert m.embedding_.shape == (len(X4), 2)
    assert len(m.map_explained_variance_) == 2 and 0 < sum(m.map_explained_variance_) <= 1
    for key in ("silhouette", "davies_bouldin", "calinski_harabasz", "inertia"):
        assert isinstance(m.metrics_[key], float)
    assert m.metrics_["silhouette"] > 0.5 and m.metrics_["n_clusters"] == 4
    assert {"prepare", "fit", "label", "map", "metrics", "profile", "total"} <= set(m.timings_)
    assert sorted(m.names_) == [0, 1, 2, 3] and len(set(m.names_.values())) == 4
    assert set(m.descriptions_) == {0, 1, 2, 3}
    np.testing.assert_allclose(m.centroids_real_, m.preparer_.inverse_transform(m.centroids_), rtol=1e-9)
    assert m.summary()["n_clusters"] == 4
    json.dumps(m.summary())  # stored as-is on the run row
    json.dumps(m.profiles_)


def test_predict_details(kmeans4, X4):
    d = kmeans4.predict_details(X4[:7])
    np.testing.assert_array_equal(d["labels"], kmeans4.labels_[:7])
    assert d["distances"].shape == (7, 4)
    np.testing.assert_array_equal(d["distances"].argmin(axis=1), d["labels"])
    assert d["probabilities"] is None
    np.testing.assert_allclose(d["map"], kmeans4.embedding_[:7])


def test_auto_k_scans_and_picks_the_true_k(X4):
    m = ClusterModel(k="auto", scan_k_values=range(2, 8), random_state=0).fit(X4)
    assert m.k_ == 4 and m.n_clusters_ == 4
    assert [r["k"] for r in m.k_scan_] == [2, 3, 4, 5, 6, 7]


def test_minibatch_predict_on_training_rows_equals_labels(X4):
    m = ClusterModel(k=4, minibatch_threshold=100, random_state=0).fit(X4)
    assert m.algorithm_ == "minibatch"
    np.testing.assert_array_equal(m.predict(X4), m.labels_)


def test_gmm_probabilities_sum_to_one(X4):
    m = ClusterModel(algorithm="gmm", k=4, random_state=0).fit(X4)
    d = m.predict_details(X4[:20])
    assert d["probabilities"].shape == (20, 4)
    np.testing.assert_allclose(d["probabilities"].sum(axis=1), 1.0)
    np.testing.assert_array_equal(d["labels"], d["probabilities"].argmax(axis=1))
    np.testing.assert_array_equal(m.predict(X4), m.labels_)
    assert isinstance(m.metrics_["bic"], float)


@pytest.mark.parametrize("algorithm", ["dbscan", "hdbscan"])
def test_density_models_predict_noise_far_away_and_cluster_near_a_core(algorithm, X4):
    m = ClusterModel(algorithm=algorithm, random_state=0).fit(X4)
    assert m.n_clusters_ == 4
    assert 0 <= m.metrics_["noise_share"] < 0.1
    assert m.estimator_ is None and len(m.core_samples_) > 0
    far = X4[:1].copy()
    far[0, 8] = 1_000.0  # 1000 BPM
    far[0, 9] = 3_600_000  # one hour
    core_real = m.preparer_.inverse_transform(m.core_samples_[:1])
    near = X4[:1].copy()
    near[0, m.preparer_.feature_index_] = core_real[0] + 1e-6
    labels = m.predict(np.vstack([far, near]))
    assert labels[0] == -1
    assert labels[1] == m.core_labels_[0]
    if m.metrics_["noise_share"] > 0:
        assert m.names_[-1] == "Unclustered / Noise"


def test_dbscan_eps_given_and_chosen(X4):
    chosen = ClusterModel(algorithm="dbscan").fit(X4)
    assert chosen.params_["eps"] > 0 and chosen.params_["min_samples"] == 20
    given = ClusterModel(algorithm="dbscan", algorithm_params={"eps": 0.05, "min_samples": 5}).fit(X4)
    assert given.params_ == {"eps": 0.05, "min_samples": 5}
    assert given.metrics_["noise_share"] > 0.9  # tiny eps: nearly everything is noise


@pytest.mark.parametrize("algorithm", ["dbscan", "hdbscan"])
def test_density_fit_on_a_sample_labels_every_row(algorithm):
    X, y = catalog(four_centers(), n_per=400, noise=0.04)
    m = ClusterModel(algorithm=algorithm, fit_sample_size=300, random_state=0).fit(X)
    assert m.metrics_["n_songs_fit"] == 300 and len(m.labels_) == len(X)
    assert m.n_clusters_ == 4 and m.metrics_["noise_share"] < 0.1
    # Rows outside the fit sample land in their true blob (labels are a permutation).
    clustered = m.labels_ >= 0
    pairs = set(zip(m.labels_[clustered].tolist(), y[clustered].tolist()))
    assert len(pairs) == 4


def test_joblib_round_trip_keeps_predictions_and_drops_per_row_data(kmeans4, X4):
    buf = io.BytesIO()
    joblib.dump(kmeans4, buf)
    buf.seek(0)
    loaded = joblib.load(buf)
    np.testing.assert_array_equal(loaded.predict(X4), kmeans4.predict(X4))
    np.testing.assert_allclose(loaded.predict_details(X4)["map"], kmeans4.predict_details(X4)["map"])
    assert loaded.names_ == kmeans4.names_
    assert not hasattr(loaded, "labels_") and not hasattr(loaded, "embedding_")
    assert hasattr(kmeans4, "labels_")  # pickling does not strip the live object


@pytest.mark.parametrize("algorithm", ["dbscan", "hdbscan", "gmm"])
def test_joblib_round_trip_other_algorithms(algorithm, X4):
    m = ClusterModel(algorithm=algorithm, k=4).fit(X4)
    buf = io.BytesIO()
    joblib.dump(m, buf)
    buf.seek(0)
    np.testing.assert_array_equal(joblib.load(buf).predict(X4), m.predict(X4))


def test_artifact_for_200k_songs_is_small():
    rng = np.random.default_rng(0)
    centers = rng.uniform(0.1, 0.9, size=(8, 10))
    X = to_real(centers[rng.integers(0, 8, 200_000)] + rng.normal(0, 0.05, size=(200_000, 10)))
    m = ClusterModel(k=8, random_state=0).fit(X)
    out = m.pop_training_outputs()
    assert out["labels"].shape == (200_000,) and out["embedding"].shape == (200_000, 2)
    buf = io.BytesIO()
    joblib.dump(m, buf)
    assert len(buf.getvalue()) < 2_000_000
    with pytest.raises(ValueError, match="already popped"):
        m.pop_training_outputs()


def test_progress_reports_stages_in_order(X4):
    calls = []
    ClusterModel(k="auto", scan_k_values=[2, 3, 4]).fit(X4, progress=lambda s, p: calls.append((s, p)))
    percents = [p for _, p in calls]
    assert percents == sorted(percents) and calls[-1] == ("done", 100)
    assert {"prepare", "scan", "fit", "profile"} <= {s for s, _ in calls}


def test_match_models_across_retrains(X4):
    old = ClusterModel(k=4, random_state=0).fit(X4)
    new = ClusterModel(k=4, random_state=5, scaler="robust").fit(X4[::-1])  # other seed, order, scaler
    mapping = match_models(old, new)
    assert sorted(mapping) == [0, 1, 2, 3] and sorted(mapping.values()) == [0, 1, 2, 3]
    for new_label, old_label in mapping.items():
        assert np.array_equal(new.labels_[::-1] == new_label, old.labels_ == old_label)
    other = ClusterModel(k=4, features=["energy", "tempo"]).fit(X4)
    with pytest.raises(ValueError, match="different features"):
        match_models(old, other)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"algorithm": "spectral"}, "unknown algorithm"),
        ({"k": 1}, "k must be >= 2"),
        ({"k": 10_000}, "exceeds the number of songs"),
        ({"k": "many"}, "k must be an integer"),
        ({"algorithm": "dbscan", "algorithm_params": {"eps": -0.5}}, "eps must be > 0"),
        ({"algorithm": "dbscan", "algorithm_params": {"min_samples": 0}}, "min_samples must be >= 1"),
        ({"algorithm_params": {"bogus": 1}}, "unknown parameter.*bogus"),
        ({"scaler": "minmax"}, "unknown scaler"),
        ({"features": ["energy", "vibe"]}, "unknown feature.*vibe"),
        ({"min_cluster_share": 1.5}, "min_cluster_share"),
    ],
)
def test_invalid_parameters_raise_at_fit(kwargs, message, X4):
    model = ClusterModel(**kwargs)  # sklearn convention: __init__ only stores
    with pytest.raises(ValueError, match=message):
        model.fit(X4)


def test_nan_rejected(X4):
    X = X4.copy()
    X[10, 4] = np.nan
    with pytest.raises(ValueError, match="acousticness"):
        ClusterModel(k=4).fit(X)


def test_density_model_that_finds_no_cluster_still_works():
    rng = np.random.default_rng(0)
    X = to_real(rng.uniform(0, 1, size=(300, 10)))  # no density structure at all
    m = ClusterModel(algorithm="hdbscan", algorithm_params={"min_cluster_size": 100}).fit(X)
    assert m.n_clusters_ == 0 and m.metrics_["noise_share"] == 1.0
    assert m.metrics_["silhouette"] is None
    assert m.names_ == {-1: "Unclustered / Noise"}
    assert (m.predict(X) == -1).all()
    assert m.predict_details(X[:3])["distances"].shape == (3, 0)
    buf = io.BytesIO()
    joblib.dump(m, buf)
