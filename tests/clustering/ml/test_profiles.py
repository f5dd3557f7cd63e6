import numpy as np
import pytest

from clustering.ml import FEATURES, FeaturePreparer, cluster_profiles, describe_cluster

from .synth import catalog, four_centers


@pytest.fixture(scope="module")
def data():
    X, y = catalog(four_centers(), n_per=50, noise=0.03)
    y = y.copy()
    y[:5] = -1  # a little noise
    return X, y


def test_sizes_centroids_and_zscores_in_real_units(data):
    X, y = data
    profiles = cluster_profiles(X, y)
    assert [p["label"] for p in profiles] == [0, 1, 2, 3, -1]  # noise last
    by = {p["label"]: p for p in profiles}
    assert by[0]["size"] == 45 and by[-1]["size"] == 5
    assert sum(p["share"] for p in profiles) == pytest.approx(1.0)
    members = X[y == 2]
    for j, f in enumerate(FEATURES):
        assert by[2]["centroid"][f] == pytest.approx(members[:, j].mean())
        z = (members[:, j].mean() - X[:, j].mean()) / X[:, j].std()
        assert by[2]["z"][f] == pytest.approx(z, abs=1e-3)
    top = by[2]["top_features"]
    assert [abs(t["z"]) for t in top] == sorted((abs(t["z"]) for t in top), reverse=True)
    assert abs(top[0]["z"]) == max(abs(v) for v in by[2]["z"].values())


def test_representatives_are_the_members_nearest_the_centroid(data):
    X, y = data
    Z = FeaturePreparer().fit_transform(X)
    centroids = np.array([Z[y == c].mean(axis=0) for c in range(4)])
    profiles = cluster_profiles(X, y, X_scaled=Z, centroids=centroids, n_representatives=3)
    by = {p["label"]: p for p in profiles}
    members = np.flatnonzero(y == 1)
    dist = np.linalg.norm(Z[members] - centroids[1], axis=1)
    assert by[1]["representatives"] == [int(i) for i in members[np.argsort(dist)[:3]]]
    assert by[-1]["representatives"] == []


def test_describe_cluster_sentence():
    profile = {"label": 0, "z": {"danceability": 1.42, "energy": 1.1, "acousticness": -1.2, "tempo": 0.1}}
    assert describe_cluster(profile) == ("High danceability (+1.4σ) and energy (+1.1σ), low acousticness (−1.2σ).")
    lead_low = {"label": 1, "z": {"energy": -2.0, "duration_ms": 0.7}}
    assert describe_cluster(lead_low, labels={"duration_ms": "length"}) == "Low energy (−2.0σ), high length (+0.7σ)."
    assert describe_cluster({"label": 2, "z": {"energy": 0.1}}) == "Close to the catalog average on every feature."
    assert "outside every cluster" in describe_cluster({"label": -1, "z": {}})
