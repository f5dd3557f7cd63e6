"""Tiny synthetic catalogs for the ML tests: blobs in a unit cube mapped to real units."""

import numpy as np

from clustering.ml import FEATURES


def to_real(U: np.ndarray) -> np.ndarray:
    """Map unit-cube values to the real ranges of the ten features."""
    X = np.array(U, dtype=np.float64)
    X[:, 2] = -60 + 60 * X[:, 2]  # loudness, dB
    X[:, 8] = 50 + 150 * X[:, 8]  # tempo, BPM
    X[:, 9] = 60_000 + 300_000 * X[:, 9]  # duration_ms
    return X


def catalog(centers, n_per=100, noise=0.03, seed=0):
    """(X, y): ``n_per`` songs around each unit-space centre, in real units."""
    rng = np.random.default_rng(seed)
    centers = np.asarray(centers, dtype=np.float64)
    y = np.repeat(np.arange(len(centers)), n_per)
    U = centers[y] + rng.normal(0, noise, size=(len(y), len(FEATURES)))
    return to_real(U), y


def four_centers(seed=1):
    """Four well separated centres in the unit cube."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.15, 0.85, size=(4, len(FEATURES)))


def profile_centers():
    """Four recognisable kinds of song, as unit-space centres (feature order of FEATURES)."""
    #           dance energy loud speech acoustic instr  live  valence tempo duration
    rap = [0.80, 0.60, 0.80, 0.45, 0.15, 0.00, 0.15, 0.55, 0.45, 0.40]
    ambient = [0.25, 0.10, 0.35, 0.04, 0.90, 0.90, 0.10, 0.15, 0.30, 0.55]
    party = [0.85, 0.85, 0.90, 0.06, 0.05, 0.02, 0.15, 0.85, 0.55, 0.35]
    ballad = [0.45, 0.40, 0.70, 0.04, 0.50, 0.02, 0.12, 0.30, 0.35, 0.45]
    return np.array([rap, ambient, party, ballad])
