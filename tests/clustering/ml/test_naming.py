import numpy as np

from clustering.ml import FEATURES, NOISE_NAME, ClusterModel, cluster_profiles, name_clusters

from .synth import catalog, profile_centers


def _profile(label, z=None, centroid=None):
    z = dict.fromkeys(FEATURES, 0.0) | (z or {})
    base = {
        "danceability": 0.55,
        "energy": 0.6,
        "loudness": -8.0,
        "speechiness": 0.07,
        "acousticness": 0.3,
        "instrumentalness": 0.05,
        "liveness": 0.18,
        "valence": 0.5,
        "tempo": 120.0,
        "duration_ms": 220_000.0,
    }
    return {
        "label": label,
        "z": z,
        "centroid": base | (centroid or {}),
        "size": 10,
        "share": 0.1,
        "top_features": [],
        "representatives": [],
    }


def test_recognisable_clusters_get_fitting_names():
    X, y = catalog(profile_centers(), n_per=80, noise=0.03)
    model = ClusterModel(k=4, random_state=0).fit(X)
    # Map each true group to the model's label by majority.
    names = {int(np.bincount(y[model.labels_ == c]).argmax()): model.names_[c] for c in range(4)}
    assert "Rap" in names[0] or "Spoken" in names[0]
    assert any(w in names[1] for w in ("Instrumental", "Ambient", "Acoustic"))
    assert names[2] in ("Party Tracks", "Upbeat Dance", "High Energy")
    assert len(set(model.names_.values())) == 4


def test_absolute_levels_drive_names():
    profiles = [
        _profile(0, centroid={"speechiness": 0.8}),  # spoken word regardless of z
        _profile(1, z={"speechiness": 2.5}, centroid={"speechiness": 0.4}),
        _profile(2, z={"liveness": 2.0}, centroid={"liveness": 0.7}),
        _profile(
            3,
            z={"instrumentalness": 2.0, "acousticness": 1.5, "energy": -1.5},
            centroid={"instrumentalness": 0.85, "acousticness": 0.9, "energy": 0.15},
        ),
        _profile(4, z={"acousticness": 1.5, "energy": -1.2}, centroid={"acousticness": 0.8, "energy": 0.3}),
        _profile(5, z={"valence": -1.0, "energy": -0.8}, centroid={"valence": 0.25, "energy": 0.35}),
        _profile(6),
    ]
    names = name_clusters(profiles)
    assert names == {
        0: "Spoken Word",
        1: "Rap / Spoken Word",
        2: "Live Recordings",
        3: "Instrumental / Ambient",
        4: "Chill Acoustic",
        5: "Mellow / Sad",
        6: "Mainstream Mix",
    }


def test_duplicate_names_get_a_second_trait_not_a_number():
    party = {"danceability": 1.2, "energy": 1.0, "valence": 1.0}
    levels = {"danceability": 0.8, "energy": 0.8, "valence": 0.75}
    profiles = [
        _profile(0, z=party | {"tempo": 0.9}, centroid=levels),
        _profile(1, z=party | {"tempo": -0.8, "loudness": 0.1}, centroid=levels | {"tempo": 85.0}),
        _profile(2, z=party | {"acousticness": 0.7}, centroid=levels),
        _profile(-1),
    ]
    names = name_clusters(profiles)
    assert names[-1] == NOISE_NAME
    assert len(set(names.values())) == 4
    assert names == {
        -1: NOISE_NAME,
        0: "Party Tracks",  # strongest claim keeps the bare name
        1: "Party Tracks · Slow",  # 85 BPM: slow on Spotify's scale
        2: "Party Tracks · More Acoustic",  # more than the catalog, but 0.3 is not acoustic
    }


def test_names_unique_even_for_identical_profiles():
    names = name_clusters([_profile(i) for i in range(5)])
    assert len(set(names.values())) == 5


def test_noise_profile_is_named_noise():
    X, y = catalog(profile_centers(), n_per=20)
    y[:3] = -1
    assert name_clusters(cluster_profiles(X, y))[-1] == "Unclustered / Noise"
