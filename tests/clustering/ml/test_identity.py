import numpy as np
import pytest

from clustering.ml import match_clusters


def test_recovers_a_permutation_of_shuffled_centroids():
    rng = np.random.default_rng(0)
    old = rng.normal(0, 2, size=(8, 10))
    perm = rng.permutation(8)
    new = old[perm] + rng.normal(0, 0.05, size=(8, 10))  # a retrain moves them a little
    assert match_clusters(old, new, max_distance=1.0) == {i: int(perm[i]) for i in range(8)}


def test_far_away_centroid_stays_unmatched():
    rng = np.random.default_rng(1)
    old = rng.normal(0, 2, size=(5, 10))
    new = np.vstack([old[[2, 0, 1]], np.full((1, 10), 40.0)])
    assert match_clusters(old, new, max_distance=1.0) == {0: 2, 1: 0, 2: 1}


def test_more_new_than_old_and_empty_sets():
    old = np.zeros((1, 3))
    new = np.array([[5.0, 0, 0], [0.1, 0, 0]])
    assert match_clusters(old, new, max_distance=1.0) == {1: 0}
    assert match_clusters(np.empty((0, 3)), new) == {}


def test_incomparable_centroids_rejected():
    with pytest.raises(ValueError, match="features"):
        match_clusters(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="max_distance"):
        match_clusters(np.zeros((2, 3)), np.zeros((2, 3)), max_distance=0)
