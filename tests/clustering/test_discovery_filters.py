"""Discovery that keeps its promises: genre seeds and filters by real genre
membership, exclusions applied before the top-k cut, default artist caps,
near-duplicate versions counted once, and a radio that keeps its artist rule."""

import numpy as np
import pytest
from rest_framework.test import APIClient

from clustering.index import dup_keys
from clustering.ml.titles import title_key
from clustering.models import Cluster
from songs.importing import derived_id
from songs.services import songs_import_file
from tests.conftest import cluster_members, train_run, write_csv

pytestmark = pytest.mark.django_db

HEADER = [
    "track_name",
    "track_artist",
    "genre",
    "track_popularity",
    "track_album_release_date",
    "danceability",
    "energy",
    "loudness",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
    "tempo",
    "duration_ms",
]
# Sound centres: rock and metal close together, pop and jazz apart.
CENTRES = {
    "rock": {"danceability": 0.45, "energy": 0.85, "loudness": -5, "acousticness": 0.05, "valence": 0.45, "tempo": 130},
    "rock, metal": {
        "danceability": 0.40,
        "energy": 0.93,
        "loudness": -4,
        "acousticness": 0.01,
        "valence": 0.35,
        "tempo": 140,
    },
    "pop": {"danceability": 0.75, "energy": 0.65, "loudness": -6, "acousticness": 0.20, "valence": 0.70, "tempo": 115},
    "jazz": {"danceability": 0.55, "energy": 0.25, "loudness": -14, "acousticness": 0.85, "valence": 0.50, "tempo": 95},
}
VERSIONS = ["Stairway", "Stairway (Live)", "Stairway - Remastered 2011", "Stairway (feat. Guest)", "Stairway - Mono"]


def _row(rng, genre, name, artist, spread=1.0):
    c = CENTRES[genre]
    jitter = lambda scale: rng.normal(0, scale * spread)  # noqa: E731
    return {
        "track_name": name,
        "track_artist": artist,
        "genre": genre,
        "track_popularity": str(int(rng.integers(40, 90))),
        "track_album_release_date": str(int(rng.integers(1990, 2020))),
        "danceability": f"{np.clip(c['danceability'] + jitter(0.05), 0, 1):.3f}",
        "energy": f"{np.clip(c['energy'] + jitter(0.04), 0, 1):.3f}",
        "loudness": f"{c['loudness'] + jitter(1.0):.2f}",
        "speechiness": f"{np.clip(0.05 + jitter(0.01), 0.01, 1):.3f}",
        "acousticness": f"{np.clip(c['acousticness'] + jitter(0.03), 0, 1):.3f}",
        "instrumentalness": "0.0",
        "liveness": f"{np.clip(0.12 + jitter(0.03), 0, 1):.3f}",
        "valence": f"{np.clip(c['valence'] + jitter(0.05), 0, 1):.3f}",
        "tempo": f"{c['tempo'] + jitter(4):.1f}",
        "duration_ms": str(int(210_000 + jitter(15_000))),
    }


@pytest.fixture
def catalog(tmp_path):
    """130 songs: 40 rock, 24 'rock, metal', 40 pop (12 of them by one prolific
    artist), 20 jazz, plus five versions of one rock recording."""
    rng = np.random.default_rng(7)
    rows = []
    for i in range(40):
        rows.append(_row(rng, "rock", f"Rock Song {i}", f"Rock Band {i // 2}"))
    for i in range(24):
        rows.append(_row(rng, "rock, metal", f"Metal Song {i}", f"Metal Band {i // 2}"))
    for i in range(28):
        rows.append(_row(rng, "pop", f"Pop Song {i}", f"Pop Singer {i // 2}"))
    for i in range(12):
        rows.append(_row(rng, "pop", f"Hit {i}", "Prolific Star", spread=0.3))
    for i in range(20):
        rows.append(_row(rng, "jazz", f"Jazz Tune {i}", f"Jazz Trio {i // 2}"))
    base = _row(rng, "rock", "x", "Versions Band", spread=0.2)
    for name in VERSIONS:
        row = dict(base, track_name=name)
        row["energy"] = f"{float(base['energy']) + rng.normal(0, 0.002):.3f}"
        rows.append(row)
    job = songs_import_file(path=write_csv(tmp_path / "catalog.csv", rows, header=HEADER))
    assert job.status == "succeeded", job.error
    run = train_run(k=4)
    return {"run": run, "rows": rows}


def _id(artist, title):
    return derived_id(artist, title)


def _genres(song):
    return set(song["genres"])


def test_title_keys_strip_version_markers_but_keep_remixes():
    for title in [*VERSIONS, "Stairway - Live at Wembley 1986", "Stairway [Radio Edit]", "Stairway ft. Someone"]:
        assert title_key(title) == "stairway", title
    assert title_key("Stairway - DJ Remix") != "stairway"
    assert title_key("Stairway (Instrumental)") != "stairway"
    assert title_key("Live Forever") == "live forever"


def test_bulk_duplicate_keys_agree_with_title_keys():
    titles = np.array(
        [
            *VERSIONS,
            "Ｓtairway",
            "stairway ",
            "Kafamın İçi",
            "Kafamın İçi (Live)",
            "Straße",
            "Song\u00a0X",
            "Song X",
            "Song  X",
            "Song\tX ",
        ],
        dtype=object,
    )
    artists = np.zeros(len(titles), dtype=np.int64)
    keys = dup_keys(titles, artists)
    by_title = {}
    for title, key in zip(titles, keys.tolist()):
        by_title.setdefault(title_key(title), set()).add(key)
    assert all(len(k) == 1 for k in by_title.values())  # one key per title key
    assert len(set(keys.tolist())) == len(by_title) == 4  # stairway, kafamın içi, straße, song x
    other_artist = dup_keys(titles[:1], np.ones(1, dtype=np.int64))
    assert other_artist[0] != keys[0]


def test_duplicate_keys_and_id_hashes_are_the_same_by_blocks(monkeypatch):
    """A run keys its titles and public ids by blocks (no Python string of
    every title at once); each key must stay with its own song."""
    import pyarrow as pa

    from clustering import index
    from songs import hashing
    from songs.hashing import public_id_hashes

    titles = np.array([*VERSIONS, "Kafamın İçi (Live)", "Song X", "Intro (Live)", "Intro"] * 3, dtype=object)
    artists = np.arange(len(titles), dtype=np.int64) % 7
    ids = pa.array([f"id{i:03d}" for i in range(len(titles))])
    at_once = dup_keys(titles, artists), public_id_hashes(ids)
    monkeypatch.setattr(index, "TEXT_BLOCK", 4)
    monkeypatch.setattr(hashing, "HASH_SLICE", 3)
    assert np.array_equal(dup_keys(titles, artists), at_once[0])
    assert np.array_equal(public_id_hashes(ids), at_once[1])
    # A web process keys one id given as str: the same key.
    assert [public_id_hashes([i])[0] for i in ids.to_pylist()] == at_once[1].tolist()
    assert [hashing.public_id_hash(i) for i in ids.to_pylist()] == at_once[1].tolist()
    assert len(set(at_once[1].tolist())) == len(ids)


def test_one_ids_key_in_python_is_the_key_of_the_column():
    """A request keys one public id in plain Python: the same int64 as the
    run's keys of the whole column, for ids of any length and script, the
    empty one and those whose key has the top bit set."""
    import random

    import pyarrow as pa

    from songs.hashing import public_id_hash, public_id_hashes

    rng = random.Random(5)
    alphabet = "abcXYZ019-_ é日本🎵"
    ids = [
        "",
        "a",
        "4uLU6hMCjMI75M1A2tKUQC",
        *("".join(rng.choices(alphabet, k=rng.randint(1, 70))) for _ in range(500)),
    ]
    column = public_id_hashes(pa.array(ids)).tolist()
    assert [public_id_hash(i) for i in ids] == column
    assert min(column) < 0 < max(column)  # both halves of int64


def test_seed_genre_returns_only_songs_carrying_it_when_there_are_enough(catalog):
    api = APIClient()
    body = api.get("/api/recommendations/", {"seed_genres": "metal", "limit": 10}).json()
    tracks = body["tracks"]
    assert len(tracks) == 10
    assert all("metal" in _genres(t) for t in tracks), [t["genres"] for t in tracks]
    # With a preference that pulls away from metal's sound, still metal songs.
    body = api.get("/api/recommendations/", {"seed_genres": "metal", "target_acousticness": 0.8, "limit": 10}).json()
    assert all("metal" in _genres(t) for t in body["tracks"])


def test_seed_genre_ranks_its_songs_first_when_there_are_too_few(catalog):
    body = APIClient().get("/api/recommendations/", {"seed_genres": "metal", "limit": 40}).json()
    tracks = body["tracks"]
    carries = ["metal" in _genres(t) for t in tracks]
    assert len(tracks) == 40
    n = sum(carries)
    assert n == 24  # every metal song (12 bands of 2: the default cap of 2 per artist keeps them all)
    assert carries == [True] * n + [False] * (len(tracks) - n)


def test_genre_filters_use_real_membership_and_keep_lists_full(catalog):
    api = APIClient()
    seed = _id("Rock Band 0", "Rock Song 0")
    similar = api.get(f"/api/songs/{seed}/similar/", {"limit": 15, "genres": "metal"}).json()["results"]
    assert len(similar) == 15 and all("metal" in _genres(r["song"]) for r in similar)
    similar = api.get(f"/api/songs/{seed}/similar/", {"limit": 15, "exclude_genres": "metal,jazz"}).json()["results"]
    assert len(similar) == 15
    assert all(not _genres(r["song"]) & {"metal", "jazz"} for r in similar)

    recs = api.get("/api/recommendations/", {"seed_songs": seed, "limit": 20, "exclude_genres": "rock"}).json()
    assert len(recs["tracks"]) == 20 and all("rock" not in _genres(t) for t in recs["tracks"])

    radio = api.get(f"/api/songs/{seed}/radio/", {"limit": 12, "genres": "rock"}).json()["songs"]
    assert len(radio) == 12 and all("rock" in _genres(s) for s in radio[1:])

    cluster = Cluster.objects.filter(run=catalog["run"]).order_by("-size").first()
    playlist = api.get(f"/api/clusters/{cluster.pk}/playlist/", {"limit": 10, "exclude_genres": "pop"}).json()
    assert all("pop" not in _genres(s) for s in playlist["songs"])
    members = cluster_members(cluster).exclude(genres__icontains="pop").count()
    assert len(playlist["songs"]) == min(10, members)

    target = _id("Jazz Trio 0", "Jazz Tune 0")
    path = api.get("/api/path/", {"from": seed, "to": target, "length": 8, "exclude_genres": "metal"}).json()
    assert len(path["songs"]) == 8 and all("metal" not in _genres(s) for s in path["songs"][1:-1])


def test_unknown_genre_filter_is_a_clear_error(catalog):
    seed = _id("Rock Band 0", "Rock Song 0")
    response = APIClient().get(f"/api/songs/{seed}/similar/", {"genres": "polka"})
    assert response.status_code == 400
    assert "polka" in response.json()["detail"]
    response = APIClient().get("/api/recommendations/", {"seed_songs": seed, "genres": "rock,,pop"})
    assert response.status_code == 400
    assert response.json()["errors"]["genres"] == ["genres has an empty item; give comma-separated names."]


def test_excluded_artists_and_songs_never_come_back(catalog):
    api = APIClient()
    seed = _id("Pop Singer 0", "Pop Song 0")
    plain = api.get(f"/api/songs/{seed}/similar/", {"limit": 10}).json()["results"]
    artists = {r["song"]["artist"] for r in plain}
    by_id = plain[0]["song"]["artist_id"]
    by_name = next(r["song"]["artist"] for r in plain if r["song"]["artist_id"] != by_id)
    body = api.get(f"/api/songs/{seed}/similar/", {"limit": 10, "exclude_artists": f"{by_id},{by_name}"}).json()[
        "results"
    ]
    assert len(body) == 10 and len(artists) > 2
    assert all(r["song"]["artist_id"] != by_id and r["song"]["artist"] != by_name for r in body)

    excluded = [r["song"]["id"] for r in plain[:3]]
    body = api.get(f"/api/songs/{seed}/similar/", {"limit": 10, "exclude_songs": ",".join(excluded)}).json()
    assert len(body["results"]) == 10 and not {r["song"]["id"] for r in body["results"]} & set(excluded)

    # Excluding one version of a recording excludes its other versions.
    original = _id("Versions Band", "Stairway")
    rock = _id("Rock Band 1", "Rock Song 2")
    recs = api.get("/api/recommendations/", {"seed_songs": rock, "limit": 60, "exclude_songs": original}).json()
    assert not [t for t in recs["tracks"] if t["artist"] == "Versions Band"]
    # An unknown song or artist excludes nothing.
    body = api.get(f"/api/songs/{seed}/similar/", {"limit": 10, "exclude_artists": "nobody-at-all"}).json()
    assert [r["song"]["id"] for r in body["results"]] == [r["song"]["id"] for r in plain]


def test_similar_songs_cap_artists_by_default_and_the_cap_can_be_raised(catalog):
    api = APIClient()
    seed = _id("Prolific Star", "Hit 0")
    results = api.get(f"/api/songs/{seed}/similar/", {"limit": 10}).json()["results"]
    own = [r for r in results if r["song"]["artist"] == "Prolific Star"]
    assert len(results) == 10 and len(own) == 2
    raised = api.get(f"/api/songs/{seed}/similar/", {"limit": 10, "max_per_artist": 20}).json()["results"]
    assert len([r for r in raised if r["song"]["artist"] == "Prolific Star"]) > 2
    recs = api.get("/api/recommendations/", {"seed_songs": seed, "limit": 20}).json()["tracks"]
    assert max(sum(t["artist"] == a for t in recs) for a in {t["artist"] for t in recs}) <= 2


def test_versions_of_one_recording_count_as_one(catalog):
    api = APIClient()
    rock = _id("Rock Band 1", "Rock Song 2")
    for body in (
        [
            r["song"]
            for r in api.get(f"/api/songs/{rock}/similar/", {"limit": 60, "max_per_artist": 100}).json()["results"]
        ],
        api.get("/api/recommendations/", {"seed_songs": rock, "limit": 60, "max_per_artist": 100}).json()["tracks"],
    ):
        versions = [s for s in body if s["artist"] == "Versions Band"]
        assert len(versions) == 1, [s["name"] for s in versions]
    # The seed's own versions are never its neighbours.
    seed = _id("Versions Band", "Stairway (Live)")
    results = api.get(f"/api/songs/{seed}/similar/", {"limit": 20, "max_per_artist": 100}).json()["results"]
    assert not [r for r in results if r["song"]["artist"] == "Versions Band"]


def test_radio_keeps_one_song_per_artist_including_the_seeds(catalog):
    api = APIClient()
    seed = _id("Prolific Star", "Hit 0")
    songs = api.get(f"/api/songs/{seed}/radio/", {"limit": 15}).json()["songs"]
    assert songs[0]["id"] == seed and len(songs) == 15
    artists = [s["artist"] for s in songs]
    assert len(set(artists)) == len(artists)
    two = api.get(f"/api/songs/{seed}/radio/", {"limit": 15, "max_per_artist": 2}).json()["songs"]
    assert sum(s["artist"] == "Prolific Star" for s in two) == 2
