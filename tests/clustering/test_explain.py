"""Why a song is similar, in a listener's words, and a similarity figure that reads right."""

import re

import numpy as np
import pytest

from clustering.ml.features import FEATURES
from clustering.ml.similarity import SimilarityIndex
from songs.features import ATTRIBUTE_LABELS, FEATURE_NAMES
from songs.models import Song

F = {f: j for j, f in enumerate(FEATURES)}


def _song(**values):
    base = {
        "danceability": 0.6,
        "energy": 0.6,
        "loudness": -8.0,
        "speechiness": 0.05,
        "acousticness": 0.3,
        "instrumentalness": 0.0,
        "liveness": 0.15,
        "valence": 0.5,
        "tempo": 115.0,
        "duration_ms": 210_000.0,
    }
    return [(base | values)[f] for f in FEATURES]


@pytest.fixture(scope="module")
def index():
    """A catalog of vocal songs (instrumentalness 0 for 60 %), songs 0-3 hand-made."""
    rng = np.random.default_rng(7)
    n = 600
    X = np.column_stack(
        [
            rng.uniform(0.3, 0.9, n),  # danceability
            rng.uniform(0.2, 0.95, n),  # energy
            rng.uniform(-16, -3, n),  # loudness
            rng.uniform(0.03, 0.3, n),  # speechiness
            rng.uniform(0.0, 0.9, n),  # acousticness
            np.where(rng.random(n) < 0.6, 0.0, rng.uniform(0.0, 0.9, n)),  # instrumentalness
            rng.uniform(0.05, 0.5, n),  # liveness
            rng.uniform(0.1, 0.9, n),  # valence
            rng.uniform(70, 170, n),  # tempo
            rng.uniform(120_000, 330_000, n),  # duration_ms
        ]
    )
    X[0] = _song(acousticness=0.85, tempo=80.0, loudness=-14.0, energy=0.25, duration_ms=200_000.0)
    X[1] = _song(acousticness=0.8, tempo=84.0, loudness=-13.5, energy=0.62, duration_ms=201_000.0)
    X[2] = _song(instrumentalness=0.0, energy=0.5)
    X[3] = _song(instrumentalness=0.0, energy=0.52)
    return SimilarityIndex(random_state=0).fit(
        ids=np.arange(n),
        X=X,
        year=rng.integers(1990, 2024, n).astype(float),
        popularity=rng.integers(0, 100, n).astype(float),
        artist=np.arange(n),
        dup_keys=np.arange(n),
        extra=np.full((n, 4), np.nan),
    )


def _explain(index, seed_id, other_id):
    seed, other = index.rows_of([seed_id, other_id])
    return index.explain(index.attributes_[seed], [other], labels=ATTRIBUTE_LABELS)[0]


def test_shared_levels_are_named_in_words_and_the_difference_as_a_comparison(index):
    e = _explain(index, 0, 1)
    assert e["shared"] == ["acoustic", "slow", "quiet"]
    assert e["contrast"] == "livelier"  # energy 0.25 -> 0.62
    assert e["text"].startswith("Both acoustic, slow and quiet;") and e["text"].endswith("this one is livelier.")
    # A shared level is not repeated as "close in".
    assert not {"acousticness", "tempo", "loudness"} & set(e["closest"])


def test_no_close_in_for_features_both_songs_lack(index):
    e = _explain(index, 2, 3)
    assert "instrumentalness" not in e["closest"]  # both 0, like 60 % of the catalog
    assert "instrumental" not in e["text"]
    assert e["closest"]  # they are close in other, informative features


def test_labels_come_from_the_attribute_table(index):
    e = _explain(index, 0, 1)
    assert "duration" not in e["text"] and "_" not in e["text"]
    if "duration_ms" in e["closest"]:
        assert "length" in e["text"]
    raw = index.explain(index.attributes_[index.rows_of([0])[0]], index.rows_of([1]))[0]
    assert raw["closest"] == e["closest"]  # labels only change the words


def test_similarity_is_a_percentile_of_typical_tenth_neighbour_distances(index):
    q = index.nn_distance_quantiles_
    assert len(q) == 101 and np.all(np.diff(q) >= 0)
    assert index.similarity([0.0])[0] == 1.0
    assert index.similarity([q[50]])[0] == pytest.approx(0.5, abs=0.02)
    assert index.similarity([q[-1] * 2])[0] == 0.0
    d = np.linspace(0, q[-1] * 1.5, 50)
    assert np.all(np.diff(index.similarity(d)) <= 1e-12)
    # Good neighbours read as such: a typical song's 1st neighbour reads >= 0.8.
    firsts = []
    for r in range(0, 600, 20):
        _, dist = index.search(index.vector(r), k=2)
        firsts.append(index.similarity(dist[1:])[0])
    assert np.median(firsts) >= 0.8


def test_the_statistics_survive_saving_and_an_old_index_still_answers(index):
    arrays = index.to_arrays()
    again = SimilarityIndex.from_arrays(arrays)
    np.testing.assert_array_equal(again.nn_distance_quantiles_, index.nn_distance_quantiles_)
    assert again.similarity([1.0]) == index.similarity([1.0])
    old = SimilarityIndex.from_arrays(
        {k: v for k, v in arrays.items() if k not in ("nn_distance_quantiles", "feature_quantiles")}
    )
    assert old.similarity([old.distance_scale_])[0] == pytest.approx(0.5)
    assert old.explain(old.attributes_[0], [1])[0]["text"]


@pytest.mark.django_db
def test_the_api_explains_in_words_and_documents_the_figure(api, trained_demo):
    seed = Song.objects.order_by("id")[7]
    body = api.get(f"/api/songs/{seed.external_id}/similar/", {"limit": 10}).json()
    results = body["results"]
    assert len(results) == 10
    for r in results:
        text = r["explanation"]["text"]
        assert not any(re.search(rf"\b{f}\b", text) for f in FEATURE_NAMES if ATTRIBUTE_LABELS[f] != f), text
        assert "_" not in text and text.endswith(".")
        assert set(r["explanation"]["shared"]) <= {"acoustic", "electric", "calm", "energetic", "slow", "fast"} | {
            "quiet",
            "loud",
            "danceable",
            "hard to dance to",
            "cheerful",
            "sombre",
            "rap-like",
            "spoken",
            "instrumental",
            "live",
            "short",
            "long",
        }
    sims = [r["similarity"] for r in results]
    assert sims == sorted(sims, reverse=True) and sims[0] >= 0.5
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    described = schema["components"]["schemas"]["SimilarSong"]["properties"]["similarity"]["description"]
    assert "10th" in described and "%" in described
    explanation = schema["components"]["schemas"]["Explanation"]["properties"]
    assert {"shared", "contrast", "closest", "furthest", "text"} <= set(explanation)


def test_explaining_rows_together_says_what_each_alone_says(index):
    """explain() works out every row's percentiles at once: each row's words
    are the same as when it is explained on its own."""
    rows = [1, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377]
    for seed in (0, 2, 400):
        together = index.explain(index.attributes_[seed], rows, labels=ATTRIBUTE_LABELS)
        alone = [index.explain(index.attributes_[seed], [r], labels=ATTRIBUTE_LABELS)[0] for r in rows]
        assert together == alone
        assert len({e["text"] for e in together}) > 3  # the rows differ, so must their words


def test_percentile_counts_are_those_of_a_search_per_feature():
    """The counts behind explain()'s percentiles, all features at once,
    equal np.searchsorted column by column ("left" and "right"), ties
    included: a pile of songs at one value (instrumentalness 0) shares
    many percentile points, and a value below or above every point counts
    none or all of them."""
    from clustering.ml.similarity import QUANTILES, _ranks

    rng = np.random.default_rng(7)
    catalog = rng.random((5_000, 4))
    catalog[:2_500, 1] = 0.0  # half the catalog at one value
    catalog[:, 2] = np.round(catalog[:, 2], 1)  # a handful of values, each shared
    q = np.quantile(catalog, QUANTILES, axis=0)
    x = np.vstack([catalog[rng.integers(0, len(catalog), 50)], rng.random((20, 4)), [[-1.0] * 4, [2.0] * 4], q[::7]])
    left, right = _ranks(q, x)
    for j in range(q.shape[1]):
        assert left[:, j].tolist() == np.searchsorted(q[:, j], x[:, j], "left").tolist()
        assert right[:, j].tolist() == np.searchsorted(q[:, j], x[:, j], "right").tolist()
    assert (right[:, 1] - left[:, 1]).max() > 40  # the pile at 0 spans many points
