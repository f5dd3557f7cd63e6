"""Cluster names drawn from what a listener hears (absolute levels of the
documented Spotify scales) and from genres, not only from contrast with the catalog."""

import numpy as np
import pytest

from clustering.ml import FEATURES, ClusterModel, cluster_profiles, name_clusters
from clustering.ml.naming import distinctive_genre, genre_title

CALM_WORDS = ("calm", "quiet", "chill", "ambient", "mellow /", "soft ")


def loud_pop_catalog(n=1200, seed=3):
    """Radio hits: energy 0.5-0.95, -9 to -3 dB, vocal, mostly electric; two
    sub-styles so that some clusters sit *below* the catalog in energy."""
    rng = np.random.default_rng(seed)
    half = n // 2
    cols = {
        "danceability": rng.uniform(0.45, 0.9, n),
        "energy": np.concatenate([rng.uniform(0.52, 0.7, half), rng.uniform(0.7, 0.95, n - half)]),
        "loudness": np.concatenate([rng.uniform(-9, -6, half), rng.uniform(-6, -3, n - half)]),
        "speechiness": rng.uniform(0.03, 0.12, n),
        "acousticness": rng.uniform(0.0, 0.35, n),
        "instrumentalness": np.where(rng.random(n) < 0.08, rng.uniform(0.1, 0.4, n), 0.0),
        "liveness": rng.uniform(0.05, 0.35, n),
        "valence": rng.uniform(0.2, 0.9, n),
        "tempo": rng.uniform(85, 160, n),
        "duration_ms": rng.uniform(150_000, 260_000, n),
    }
    return np.column_stack([cols[f] for f in FEATURES])


@pytest.mark.parametrize("k", ["auto", 4, 8, 12])
def test_loud_pop_clusters_are_never_named_calm_or_quiet(k):
    X = loud_pop_catalog()
    kwargs = {"scan_k_values": range(2, 13)} if k == "auto" else {}
    model = ClusterModel(k=k, random_state=0, **kwargs).fit(X)
    assert len(set(model.names_.values())) == model.n_clusters_
    # The catalog has a calmer half: the contrast is real and clusters do sit below its mean.
    assert min(p["z"]["energy"] for p in model.profiles_) < -0.5
    for p in model.profiles_:
        name = model.names_[p["label"]].lower() + " "
        assert p["centroid"]["energy"] > 0.5
        assert not any(word in name for word in CALM_WORDS), (name, p["centroid"]["energy"])
        # Mean instrumentalness is low everywhere: no cluster is "Instrumental".
        assert p["centroid"]["instrumentalness"] < 0.5
        assert "instrumental" not in name


def _profile(label, z, centroid, levels=None, genres=()):
    base = {
        "danceability": 0.6,
        "energy": 0.65,
        "loudness": -6.5,
        "speechiness": 0.07,
        "acousticness": 0.15,
        "instrumentalness": 0.01,
        "liveness": 0.15,
        "valence": 0.5,
        "tempo": 120.0,
        "duration_ms": 215_000.0,
    }
    return {
        "label": label,
        "size": 100,
        "share": 0.2,
        "z": dict.fromkeys(FEATURES, 0.0) | z,
        "centroid": base | centroid,
        "top_features": [],
        "representatives": [],
        "levels": levels or {},
        "top_genres": list(genres),
    }


def test_the_calmest_cluster_of_a_hits_catalog_is_mellower_not_quiet_and_calm():
    # Grenade and Deuces: energy 0.57-0.74 at -7 dB, far below a catalog of bangers.
    hits = _profile(0, {"energy": -1.3, "loudness": -1.1}, {"energy": 0.62, "loudness": -7.0})
    truly_quiet = _profile(1, {"energy": -1.3, "loudness": -1.1}, {"energy": 0.25, "loudness": -15.0})
    names = name_clusters([hits, truly_quiet])
    assert names[0] == "Mellower Mix"
    assert names[1] == "Quiet & Calm"


def test_instrumentals_need_instrumental_songs_not_a_high_z():
    # Timbaland and Kanye: a few instrumental intros lift z, the songs are sung.
    sung = _profile(0, {"instrumentalness": 2.5}, {"instrumentalness": 0.3}, levels={"instrumental": 0.2})
    mostly = _profile(1, {"instrumentalness": 2.5}, {"instrumentalness": 0.45}, levels={"instrumental": 0.55})
    names = name_clusters([sung, mostly])
    assert "Instrumental" not in names[0]
    assert names[1].endswith("Instrumentals")  # energetic and danceable: "Electronic Instrumentals"


def test_trait_words_follow_the_level_or_become_comparatives():
    party = {"danceability": 1.2, "energy": 1.0, "valence": 1.0}
    levels = {"danceability": 0.8, "energy": 0.8, "valence": 0.75}
    profiles = [
        _profile(0, party, levels),
        _profile(1, party | {"tempo": 0.9}, levels | {"tempo": 138.0}),  # fast on the BPM scale
        _profile(2, party | {"tempo": 0.9, "acousticness": 0.2}, levels | {"tempo": 124.0}),  # only faster
    ]
    names = name_clusters(profiles)
    assert names[0] == "Party Tracks"
    assert names[1] == "Party Tracks · Fast"
    assert names[2] == "Party Tracks · Faster"


def test_a_distinctive_genre_joins_the_name():
    rap = {"speechiness": 0.4}
    genres_hiphop = [{"genre": "hip hop", "share": 0.6, "lift": 3.0}, {"genre": "pop", "share": 0.3, "lift": 0.9}]
    common_pop = [{"genre": "pop", "share": 0.5, "lift": 1.1}]  # the catalog's own default: not distinctive
    profiles = [
        _profile(0, {"speechiness": 2.0}, rap, genres=genres_hiphop),
        _profile(1, {}, {}, genres=common_pop),
        _profile(2, {}, {}, genres=[{"genre": "r&b", "share": 0.4, "lift": 2.0}]),
    ]
    names = name_clusters(profiles)
    assert names[0] == "Rap / Spoken Word · Hip Hop"
    assert names[1] == "Mainstream Mix"
    assert names[2] == "R&B Mix"
    assert distinctive_genre(profiles[1]) is None
    assert genre_title("hip hop") == "Hip Hop" and genre_title("r&b") == "R&B"


def test_profiles_count_top_genres_and_documented_level_shares():
    X = loud_pop_catalog(n=40)
    X[:10, FEATURES.index("instrumentalness")] = 0.9  # cluster 0: all instrumental
    labels = np.repeat([0, 1], 20)
    # Songs 0-19 are all "techno"; half of them also "house"; songs 20-39 are "pop";
    # song 0 lists techno twice (counted once).
    rows = [*range(20), *range(0, 20, 2), *range(20, 40), 0]
    names = ["techno"] * 20 + ["house"] * 10 + ["pop"] * 20 + ["techno"]
    profiles = {p["label"]: p for p in cluster_profiles(X, labels, genres=(rows, names))}
    top = profiles[0]["top_genres"]
    assert [g["genre"] for g in top] == ["techno", "house"]
    assert top[0]["share"] == 1.0 and top[0]["lift"] == 2.0
    assert top[1]["share"] == 0.5
    assert [g["genre"] for g in profiles[1]["top_genres"]] == ["pop"]
    assert profiles[0]["levels"]["instrumental"] == 0.5  # 10 of 20 songs past 0.5
    assert profiles[1]["levels"]["instrumental"] == 0.0
    with pytest.raises(ValueError, match="rows must lie"):
        cluster_profiles(X, labels, genres=([40], ["pop"]))
