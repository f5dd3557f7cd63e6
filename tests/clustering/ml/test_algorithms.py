import pytest
from sklearn.cluster import DBSCAN, HDBSCAN, KMeans, MiniBatchKMeans
from sklearn.mixture import GaussianMixture

from clustering.ml import KMEANS_N_INIT, make_estimator


def test_kmeans_is_full_kmeans_below_threshold():
    est, algorithm, params = make_estimator("kmeans", n_samples=1000, k=5, random_state=7)
    assert isinstance(est, KMeans) and algorithm == "kmeans"
    assert (est.n_clusters, est.n_init, est.random_state) == (5, KMEANS_N_INIT, 7)
    assert params["n_clusters"] == 5


def test_kmeans_switches_to_minibatch_above_threshold():
    built = make_estimator("kmeans", n_samples=5000, k=5, minibatch_threshold=4999)
    assert isinstance(built.estimator, MiniBatchKMeans)
    assert built.algorithm == "minibatch"
    assert make_estimator("kmeans", n_samples=4999, k=5, minibatch_threshold=4999).algorithm == "kmeans"


def test_each_algorithm_builds():
    assert isinstance(make_estimator("minibatch", n_samples=100, k=3).estimator, MiniBatchKMeans)
    assert isinstance(make_estimator("gmm", n_samples=100, k=3, covariance_type="diag").estimator, GaussianMixture)
    db = make_estimator("dbscan", n_samples=100, eps=0.5, n_features=10)
    assert isinstance(db.estimator, DBSCAN) and db.params == {"eps": 0.5, "min_samples": 20}
    hd = make_estimator("hdbscan", n_samples=5000, min_cluster_size=25)
    assert isinstance(hd.estimator, HDBSCAN) and hd.estimator.min_cluster_size == 25


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (("spectral",), {"n_samples": 100, "k": 3}, "unknown algorithm 'spectral'"),
        (("kmeans",), {"n_samples": 100, "k": 1}, "k must be >= 2"),
        (("kmeans",), {"n_samples": 100, "k": 101}, "k=101 exceeds the number of songs"),
        (("kmeans",), {"n_samples": 100, "k": 2.5}, "k must be an integer"),
        (("kmeans",), {"n_samples": 100}, "k is required"),
        (("gmm",), {"n_samples": 100, "k": 0}, "k must be >= 2"),
        (("dbscan",), {"n_samples": 100, "eps": 0}, "eps must be > 0"),
        (("dbscan",), {"n_samples": 100, "eps": -1.0}, "eps must be > 0"),
        (("dbscan",), {"n_samples": 100}, "eps is required"),
        (("dbscan",), {"n_samples": 100, "eps": 0.5, "min_samples": 0}, "min_samples must be >= 1"),
        (("dbscan",), {"n_samples": 10, "eps": 0.5, "min_samples": 11}, "min_samples=11 exceeds"),
        (("dbscan",), {"n_samples": 100, "eps": 0.5, "k": 4}, "k does not apply to dbscan"),
        (("hdbscan",), {"n_samples": 100, "min_cluster_size": 1}, "min_cluster_size must be >= 2"),
        (("hdbscan",), {"n_samples": 100, "min_samples": 0}, "min_samples must be >= 1"),
        (("hdbscan",), {"n_samples": 100, "cluster_selection_method": "best"}, "cluster_selection_method"),
        (("gmm",), {"n_samples": 100, "k": 3, "covariance_type": "round"}, "covariance_type must be one of"),
        (("kmeans",), {"n_samples": 100, "k": 3, "n_init": 0}, "n_init must be >= 1"),
        (("kmeans",), {"n_samples": 100, "k": 3, "eps": 0.5}, "unknown parameter.*kmeans: eps"),
        (("kmeans",), {"n_samples": 100, "k": 3, "random_state": "x"}, "random_state"),
    ],
)
def test_invalid_parameters_name_the_problem(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_estimator(*args, **kwargs)
