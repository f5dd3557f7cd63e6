"""clustering.ml.paths on small synthetic catalogs (no Django)."""

from itertools import pairwise

import numpy as np

from clustering.ml.paths import progress, segment_pool, smooth_path, smoothness, sound_space


def catalog(n=600, seed=0):
    """Songs scattered around a line in ten features, artists in groups of three, two clusters by the first feature."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 1, n)
    X = np.outer(t, np.linspace(1, 2, 10)) + rng.normal(0, 0.15, (n, 10))
    return {
        "X": X.astype(np.float32),
        "std": X.std(axis=0),
        "artists": np.arange(n) // 3,
        "dup_keys": np.arange(n, dtype=np.int64) + 10_000,
        "labels": (X[:, 0] > X[:, 0].mean()).astype(np.int16),
    }


def path(c, start_row, end_row, length, **kwargs):
    return smooth_path(
        **c,
        start=c["X"][start_row],
        end=c["X"][end_row],
        length=length,
        start_artist=int(c["artists"][start_row]),
        end_artist=int(c["artists"][end_row]),
        start_label=int(c["labels"][start_row]),
        end_label=int(c["labels"][end_row]),
        exclude_rows=[start_row, end_row],
        exclude_keys=[c["dup_keys"][start_row], c["dup_keys"][end_row]],
        **kwargs,
    )


def ends(c):
    s = c["X"].sum(axis=1)
    return int(np.argmin(s)), int(np.argmax(s))


def test_a_path_moves_forward_and_keeps_the_rules():
    c = catalog()
    a, b = ends(c)
    rows = path(c, a, b, 15)
    assert len(rows) == 13 and len(set(rows)) == 13 and a not in rows and b not in rows
    full = [a, *rows, b]
    t = progress(sound_space(c["X"][full], c["std"]))
    assert np.all(np.diff(t) >= 0) and t[0] == 0 and abs(t[-1] - 1) < 1e-9
    artists = c["artists"][full].tolist()
    assert len(set(artists)) == len(artists)  # no artist twice, the ends' artists not in between
    labels = c["labels"][full].tolist()
    assert labels == sorted(labels) or labels == sorted(labels, reverse=True)  # clusters crossed once


def test_duplicates_masks_and_artist_caps_are_honoured():
    c = catalog(seed=1)
    a, b = ends(c)
    c["dup_keys"][:] = c["dup_keys"] // 2 * 2  # rows 2k and 2k+1 are duplicates
    mask = np.ones(len(c["X"]), dtype=bool)
    mask[::5] = False
    rows = path(c, a, b, 20, mask=mask, max_per_artist=2)
    assert rows and all(mask[r] for r in rows)
    keys = c["dup_keys"][rows].tolist()
    assert len(set(keys)) == len(keys)
    artists = c["artists"][rows].tolist()
    assert all(x != y for x, y in pairwise(artists))
    assert max(artists.count(x) for x in artists) <= 2
    # The ends count: with a cap of 1 their artists never appear in between.
    assert not {c["artists"][a], c["artists"][b]} & set(c["artists"][path(c, a, b, 20)].tolist())


def test_a_catalog_too_small_for_the_rules_gives_a_shorter_path():
    c = catalog(n=12)
    a, b = ends(c)
    rows = path(c, a, b, 50)
    # 12 songs by 4 artists, one song per artist, the ends' artists excluded: at most 2 in between.
    assert 0 < len(rows) <= 2


def test_the_pool_holds_the_songs_nearest_to_the_segment():
    c = catalog(seed=2)
    a, b = ends(c)
    pool = segment_pool(c["X"], c["std"], c["X"][a], c["X"][b], size=50)
    Z = sound_space(c["X"], c["std"])
    za, d = Z[a], Z[b] - Z[a]
    t = np.clip((Z - za) @ d / (d @ d), 0, 1)
    dist = np.linalg.norm(Z - za - t[:, None] * d, axis=1)
    assert set(pool.tolist()) == set(np.argsort(dist)[:50].tolist())
    assert np.all(np.diff(dist[pool]) >= -1e-5)


def test_smoothness_counts_reversals_excess_and_backsteps():
    straight = np.linspace([0.0, 0.0], [1.0, 2.0], 5)
    assert smoothness(straight) == {"reversals": 0, "excess": 0.0, "backsteps": 0}
    zigzag = np.array([[0.0, 0.0], [0.6, 0.5], [0.1, 0.6], [1.0, 1.5], [1.0, 2.0]])
    m = smoothness(zigzag)
    assert m["reversals"] == 2  # the first feature goes up, down, up
    assert m["excess"] == round((0.6 + 0.5 + 0.9 + 2.0) / 3.0 - 1, 4)
    assert m["backsteps"] == 1  # (0.1, 0.6) lies behind (0.6, 0.5) along the line
