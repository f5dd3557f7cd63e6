"""Similar songs, recommendations, song paths and generated playlists over the API."""

import csv
import io
import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from rest_framework.test import APIClient

from clustering import artifacts, services
from clustering import selectors as engine_selectors
from clustering.models import TrainingRun
from songs import selectors
from songs.features import FEATURE_NAMES
from songs.models import Song
from tests.conftest import cluster_members, song_twin, train_run

pytestmark = pytest.mark.django_db

BOUNDED = (
    "acousticness",
    "danceability",
    "energy",
    "instrumentalness",
    "liveness",
    "loudness",
    "speechiness",
    "tempo",
    "valence",
    "duration_ms",
    "key",
    "mode",
    "popularity",
    "time_signature",
)


@pytest.fixture
def api():
    return APIClient()


_train = train_run


def _ids(results):
    return [r["song"]["id"] for r in results]


def test_similar_songs_are_ranked_explained_and_never_duplicates(api, trained_demo_with_twins):
    seed = trained_demo_with_twins["seed"]
    body = api.get(f"/api/songs/{seed.external_id}/similar/", {"limit": 20}).json()
    results = body["results"]
    assert body["seed"]["id"] == seed.external_id and body["run"] == trained_demo_with_twins["run"].pk
    assert len(results) == 20
    ids = _ids(results)
    assert seed.external_id not in ids and "dup-1" not in ids and "dup-2" not in ids
    pairs = {(r["song"]["artist"], r["song"]["name"].strip().casefold()) for r in results}
    assert len(pairs) == 20 and (seed.artist.name, seed.name.casefold()) not in pairs
    sims = [r["similarity"] for r in results]
    assert all(0 < s <= 1 for s in sims) and sims == sorted(sims, reverse=True)
    for r in results:
        explanation = r["explanation"]
        assert set(explanation["closest"]) <= set(FEATURE_NAMES) and explanation["furthest"][0] in FEATURE_NAMES
        assert explanation["furthest"][0] not in explanation["closest"] and explanation["text"]
    # The explanation is true: the closest feature is nearer the seed (in catalog std units) than the furthest.
    first = Song.objects.get(external_id=ids[0])
    std = {f: np.std(list(Song.objects.values_list(f, flat=True))) for f in FEATURE_NAMES}
    gap = {f: abs(getattr(first, f) - getattr(seed, f)) / std[f] for f in FEATURE_NAMES}
    assert gap[results[0]["explanation"]["closest"][0]] <= gap[results[0]["explanation"]["furthest"][0]]


def test_similar_songs_beat_a_random_song_on_feature_distance(api, trained_demo_with_twins):
    seed = trained_demo_with_twins["seed"]
    results = api.get(f"/api/songs/{seed.external_id}/similar/", {"limit": 10}).json()["results"]
    X = np.array(list(Song.objects.values_list(*FEATURE_NAMES)), dtype=float)
    std = X.std(axis=0)
    here = np.array([getattr(seed, f) for f in FEATURE_NAMES])
    near = [np.linalg.norm((np.array([r["song"][f] for f in FEATURE_NAMES]) - here) / std) for r in results]
    typical = np.median(np.linalg.norm((X - here) / std, axis=1))
    assert np.mean(near) < 0.75 * typical  # the embedding also weighs year, popularity and artist


def test_similar_options_filter_and_diversify(api, trained_demo_with_twins):
    seed = trained_demo_with_twins["seed"]
    url = f"/api/songs/{seed.external_id}/similar/"
    same = api.get(url, {"limit": 30, "same_cluster": "true"}).json()["results"]
    assert same and all(r["song"]["cluster"]["id"] == seed.cluster_id for r in same)
    capped = api.get(url, {"limit": 30, "max_per_artist": 1}).json()["results"]
    artists = [r["song"]["artist_id"] for r in capped]
    assert len(artists) == len(set(artists)) == 30
    other = api.get(url, {"limit": 30, "exclude_artist": "true"}).json()["results"]
    assert other and all(r["song"]["artist_id"] != seed.artist.external_id for r in other)
    bounded = api.get(url, {"limit": 50, "min_energy": 0.7, "max_tempo": 125, "min_popularity": 40}).json()["results"]
    assert bounded
    assert all(
        r["song"]["energy"] >= 0.7 and r["song"]["tempo"] <= 125 and r["song"]["popularity"] >= 40 for r in bounded
    )


def test_recommendations_respect_every_bound(api, trained_demo_with_twins):
    seed = trained_demo_with_twins["seed"]
    other = Song.objects.exclude(artist=seed.artist).order_by("id")[100]
    bounds = {
        "min_energy": 0.5,
        "max_energy": 0.95,
        "min_danceability": 0.4,
        "max_loudness": -3,
        "min_tempo": 90,
        "max_tempo": 160,
        "max_speechiness": 0.3,
        "min_duration_ms": 120000,
        "max_acousticness": 0.6,
        "min_valence": 0.2,
        "max_liveness": 0.5,
        "max_instrumentalness": 0.5,
        "min_popularity": 10,
        "max_key": 9,
        "min_mode": 0,
        "max_time_signature": 5,
    }
    body = api.get(
        "/api/recommendations/", {"seed_songs": f"{seed.external_id},{other.external_id}", "limit": 40, **bounds}
    ).json()
    tracks = body["tracks"]
    assert 0 < len(tracks) <= 40
    for track in tracks:
        for name, value in bounds.items():
            kind, attribute = name.split("_", 1)
            assert track[attribute] is not None
            assert (track[attribute] >= value) if kind == "min" else (track[attribute] <= value), (name, track)
    ids = {t["id"] for t in tracks}
    assert seed.external_id not in ids and other.external_id not in ids and "dup-1" not in ids
    assert [s["type"] for s in body["seeds"]] == ["SONG", "SONG"]
    for s in body["seeds"]:
        assert s["initialPoolSize"] >= s["afterFilteringSize"] >= 0


def test_raising_target_energy_raises_the_mean_energy(api, trained_demo_with_twins):
    seed = trained_demo_with_twins["seed"]
    means = []
    for target in (0.2, 0.5, 0.9):
        tracks = api.get(
            "/api/recommendations/",
            {"seed_songs": seed.external_id, "seed_genres": "rock", "limit": 30, "target_energy": target},
        ).json()["tracks"]
        assert len(tracks) == 30
        means.append(np.mean([t["energy"] for t in tracks]))
    assert means[0] < means[1] < means[2]


def test_recommendations_from_artists_and_genres_and_fewer_when_filters_leave_fewer(api, trained_demo_with_twins):
    seed = trained_demo_with_twins["seed"]
    genres = api.get("/api/recommendations/genres/").json()["genres"]
    genre = max(genres, key=genres.get)
    body = api.get(
        "/api/recommendations/", {"seed_artists": seed.artist.external_id, "seed_genres": genre, "limit": 10}
    ).json()
    assert [s["type"] for s in body["seeds"]] == ["ARTIST", "GENRE"] and len(body["tracks"]) == 10
    # Only a handful of songs exceed this floor: the answer holds exactly those, not padding.
    floor = sorted(Song.objects.values_list("energy", flat=True))[-4]
    strict = api.get("/api/recommendations/", {"seed_genres": genre, "limit": 50, "min_energy": floor}).json()
    expected = Song.objects.filter(energy__gte=floor).count()
    assert 0 < len(strict["tracks"]) <= expected < 50
    assert all(t["energy"] >= floor for t in strict["tracks"])


@pytest.mark.parametrize(
    "params, message",
    [
        ({}, "at least one seed"),
        ({"seed_genres": "a,b,c,d,e,f"}, "At most 5 seeds"),
        ({"seed_songs": "x,y,z", "seed_genres": "a,b,c"}, "At most 5 seeds"),
        ({"seed_genres": "rock", "limit": 0}, "limit"),
        ({"seed_genres": "rock", "limit": 101}, "limit"),
        ({"seed_genres": "rock", "limit": "ten"}, "limit"),
        ({"seed_genres": "rock", "min_energy": "NaN"}, "min_energy"),
        ({"seed_genres": "rock", "target_tempo": "inf"}, "target_tempo"),
        ({"seed_genres": "rock", "min_energy": 2}, "min_energy"),
        ({"seed_genres": "rock", "min_energy": 0.9, "max_energy": 0.1}, "min_energy"),
        ({"seed_genres": "rock,,pop"}, "seed_genres"),
        ({"seed_songs": "no-such-song"}, "no-such-song"),
        ({"seed_artists": "no-such-artist"}, "no-such-artist"),
        ({"seed_genres": "no-such-genre"}, "no-such-genre"),
    ],
)
def test_recommendations_reject_bad_input(api, trained_demo_with_twins, params, message):
    response = api.get("/api/recommendations/", params)
    assert response.status_code == 400
    assert message in response.json()["detail"]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"max_per_artist": 0}, "max_per_artist"),
        ({"same_cluster": "maybe"}, "same_cluster"),
        ({"min_tempo": "nan"}, "min_tempo"),
        ({"max_loudness": 99}, "max_loudness"),
    ],
)
def test_similar_rejects_bad_input(api, trained_demo_with_twins, params, message):
    response = api.get(f"/api/songs/{trained_demo_with_twins['seed'].external_id}/similar/", params)
    assert response.status_code == 400 and message in response.json()["detail"]


def test_unknown_ids_are_404(api, trained_demo_with_twins):
    seed = trained_demo_with_twins["seed"]
    for url in (
        "/api/songs/nope/similar/",
        "/api/songs/nope/radio/",
        "/api/clusters/999999/playlist/",
        f"/api/path/?from=nope&to={seed.external_id}",
        f"/api/path/?from={seed.external_id}&to=nope",
    ):
        response = api.get(url)
        assert response.status_code == 404, url
        assert response.json()["detail"]


def test_song_path_moves_smoothly_without_repeats(api, trained_demo_with_twins):
    songs = list(Song.objects.select_related("artist").order_by("id"))
    source = trained_demo_with_twins["seed"]
    X = np.array([[getattr(s, f) for f in FEATURE_NAMES] for s in songs])
    Z = (X - X.mean(0)) / X.std(0)
    far = songs[int(np.argmax(np.linalg.norm(Z - Z[songs.index(source)], axis=1)))]
    body = api.get("/api/path/", {"from": source.external_id, "to": far.external_id, "length": 12}).json()
    path = body["songs"]
    assert len(path) == 12 and path[0]["id"] == source.external_id and path[-1]["id"] == far.external_id
    ids = [s["id"] for s in path]
    assert len(set(ids)) == 12 and "dup-1" not in ids and "dup-2" not in ids
    artists = [s["artist_id"] for s in path]
    assert all(a != b for a, b in pairwise(artists))
    middle = artists[1:-1]
    assert len(middle) == len(set(middle))
    # Smooth: no step is a jump across the whole path.
    start = np.array([path[0][f] for f in FEATURE_NAMES])
    end = np.array([path[-1][f] for f in FEATURE_NAMES])
    total = np.linalg.norm((end - start) / X.std(0))
    steps = [
        np.linalg.norm((np.array([b[f] for f in FEATURE_NAMES]) - np.array([a[f] for f in FEATURE_NAMES])) / X.std(0))
        for a, b in pairwise(path)
    ]
    assert max(steps) < 0.6 * total
    assert len(body["steps"]) == 11


@pytest.mark.parametrize(
    "params, message",
    [
        ({"length": 2}, "length"),
        ({"length": 51}, "length"),
        ({"length": "x"}, "length"),
        ({}, "from"),
    ],
)
def test_song_path_rejects_bad_input(api, trained_demo_with_twins, params, message):
    seed = trained_demo_with_twins["seed"]
    base = {"from": seed.external_id, "to": Song.objects.order_by("-id")[0].external_id}
    if params == {}:
        base.pop("from")
    response = api.get("/api/path/", {**base, **params})
    assert response.status_code == 400 and message in response.json()["detail"]
    same = api.get("/api/path/", {"from": seed.external_id, "to": seed.external_id})
    assert same.status_code == 400 and "same song" in same.json()["detail"]


def test_cluster_playlist_and_radio_exports(api, trained_demo_with_twins):
    cluster = trained_demo_with_twins["run"].clusters.order_by("-size").first()
    body = api.get(f"/api/clusters/{cluster.pk}/playlist/", {"limit": 20, "max_per_artist": 2}).json()
    songs = body["songs"]
    assert len(songs) == 20 and all(s["cluster"]["id"] == cluster.pk for s in songs)
    artists = [s["artist_id"] for s in songs]
    assert max(artists.count(a) for a in artists) <= 2
    m3u = api.get(f"/api/clusters/{cluster.pk}/playlist/", {"limit": 5, "fmt": "m3u"})
    assert m3u.status_code == 200 and "attachment" in m3u["Content-Disposition"]
    lines = m3u.content.decode().splitlines()
    assert lines[0] == "#EXTM3U" and sum(line.startswith("#EXTINF:") for line in lines) == 5
    rows = list(
        csv.DictReader(
            io.StringIO(api.get(f"/api/clusters/{cluster.pk}/playlist/", {"limit": 5, "fmt": "csv"}).content.decode())
        )
    )
    assert [r["id"] for r in rows] == [s["id"] for s in songs[:5]]
    seed = trained_demo_with_twins["seed"]
    radio = api.get(f"/api/songs/{seed.external_id}/radio/", {"limit": 10}).json()
    assert radio["songs"][0]["id"] == seed.external_id and len(radio["songs"]) == 10
    others = [s["artist_id"] for s in radio["songs"][1:] if s["artist_id"] != seed.artist.external_id]
    assert len(others) == len(set(others))
    assert api.get(f"/api/songs/{seed.external_id}/radio/", {"fmt": "xml"}).status_code == 400


def test_a_song_imported_after_training_can_seed_and_is_returned(api, trained_demo_with_twins):
    # Not in the run's index: searched in the delta beside it (test_delta.py).
    seed = trained_demo_with_twins["seed"]
    late = song_twin(seed, "late-1", name="A brand new song")
    body = api.get(f"/api/songs/{late.external_id}/similar/", {"limit": 5}).json()
    assert len(body["results"]) == 5 and "late-1" not in _ids(body["results"])
    assert _ids(api.get(f"/api/songs/{seed.external_id}/similar/").json()["results"])[0] == "late-1"


def test_missing_or_altered_index_is_a_clear_503(api, trained_demo_with_twins):
    run = trained_demo_with_twins["run"]
    url = f"/api/songs/{trained_demo_with_twins['seed'].external_id}/similar/"
    artifacts.cache_clear()
    # The index is a folder: a file changed after its manifest was written, then the manifest itself.
    with open(Path(run.index_path) / "vectors.npy", "ab") as fh:
        fh.write(b"tampered")
    response = api.get(url)
    assert response.status_code == 503 and "altered" in response.json()["detail"]
    with open(Path(run.index_path) / "manifest.json", "ab") as fh:
        fh.write(b" ")
    response = api.get(url)
    assert response.status_code == 503 and "altered" in response.json()["detail"]
    import shutil

    shutil.rmtree(run.index_path)
    response = api.get(url)
    assert response.status_code == 503 and "missing" in response.json()["detail"]
    assert api.get("/api/recommendations/", {"seed_genres": "rock"}).status_code == 503


def test_no_model_is_a_503(api, demo_catalog):
    song = Song.objects.first()
    response = api.get(f"/api/songs/{song.external_id}/similar/")
    assert response.status_code == 503 and "no model is active" in response.json()["detail"]


def test_activating_another_run_switches_the_index_without_restart(api, trained_demo_with_twins):
    seed = trained_demo_with_twins["seed"]
    url = f"/api/songs/{seed.external_id}/similar/"
    first = trained_demo_with_twins["run"]
    assert api.get(url).json()["run"] == first.pk
    second = _train(k=3)
    assert TrainingRun.objects.get(is_active=True).pk == second.pk
    assert api.get(url).json()["run"] == second.pk  # the process picked up the new index on its own
    services.training_run_activate(run=first)
    assert api.get(url).json()["run"] == first.pk
    assert json.loads(api.get(url).content)["results"]


def test_missing_model_file_is_a_503_for_predict_and_similar(api, trained_demo_with_twins):
    import os

    run = trained_demo_with_twins["run"]
    artifacts.cache_clear()
    os.remove(run.artifact_path)
    vector = {f: getattr(trained_demo_with_twins["seed"], f) for f in FEATURE_NAMES}
    response = api.post("/api/predict/", vector, format="json")
    assert response.status_code == 503 and "missing" in response.json()["detail"]
    # The index is a separate file: similar songs still answer.
    assert api.get(f"/api/songs/{trained_demo_with_twins['seed'].external_id}/similar/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_on_postgres_the_index_builds_while_labels_are_written(api, demo_catalog):
    from django.db import connection

    from tests.conftest import _require

    if connection.vendor != "postgresql":
        _require("the overlapped index build is Postgres-only")
    run = _train()
    assert run.status == "succeeded" and run.is_active and run.index_sha256 and run.timings["index"] > 0
    song = Song.objects.order_by("id")[3]
    body = api.get(f"/api/songs/{song.external_id}/similar/", {"limit": 5}).json()
    assert body["run"] == run.pk and len(body["results"]) == 5


def test_song_records_have_exactly_the_api_shape(api, trained_demo_with_twins):
    from songs.api import SongSerializer

    late = song_twin(
        trained_demo_with_twins["seed"],
        "late-2",
        name="Unlabelled <b>",
        release_date=None,
        genres=[],
        explicit=None,
        popularity=None,
    )
    songs = [*Song.objects.select_related("artist").order_by("id")[:5], late]
    records = selectors.song_records(ids=[s.pk for s in songs])
    for song in songs:
        expected = json.loads(json.dumps(SongSerializer(song).data))
        assert json.loads(json.dumps(records[song.pk])) == expected
        assert records[song.pk].pk == song.pk and records[song.pk].artist_pk == song.artist_id
    assert selectors.song_records(external_ids=["late-2"])["late-2"]["cluster"] is None


@pytest.mark.parametrize("sort, desc", [("id", False), ("id", True), ("energy", True), ("tempo", False)])
def test_cluster_pages_are_ordered_by_the_index_or_the_labels(trained_demo_with_twins, sort, desc):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from clustering.selectors import cluster_songs_page

    cluster = trained_demo_with_twins["run"].clusters.order_by("-size").first()
    order = [f"-{sort}", "-id"] if desc else [sort, "id"]
    expected = list(cluster_members(cluster).order_by(*order).values_list("id", flat=True))
    seen, after = [], None
    while True:
        with CaptureQueriesContext(connection) as queries:
            page = cluster_songs_page(cluster_id=cluster.pk, sort=sort, desc=desc, after=after, size=40)
        sql = " ".join(q["sql"] for q in queries.captured_queries)
        if sort == "id":  # walked on the run's labels, (run, cluster, song) in order
            assert "clustering_songlabel" in sql and "ORDER BY" in sql
        else:  # the order came from the index, not a scan of the cluster
            assert "clustering_songlabel" not in sql
        seen += [s.pk for s in page.items]
        if not page.next_cursor:
            break
        after = page.next_cursor
    assert seen == expected
    # Walking back from the last page gives the previous page, in order.
    back = cluster_songs_page(cluster_id=cluster.pk, sort=sort, desc=desc, before=page.prev_cursor, size=40)
    last = len(page.items)
    assert [s.pk for s in back.items] == expected[-last - 40 : -last]


def test_a_process_rechecks_the_active_run_within_the_interval(api, trained_demo_with_twins, settings, monkeypatch):
    seed = trained_demo_with_twins["seed"]
    url = f"/api/songs/{seed.external_id}/similar/"
    settings.MODEL_RECHECK_SECONDS = 60
    clock = [1000.0]
    monkeypatch.setattr(artifacts.time, "monotonic", lambda: clock[0])
    artifacts.cache_clear()
    first = trained_demo_with_twins["run"]
    assert api.get(url).json()["run"] == first.pk
    second = _train(k=3)
    assert api.get(url).json()["run"] == first.pk  # within the interval: no query, the run it knew
    clock[0] += 61
    assert api.get(url).json()["run"] == second.pk


def test_similar_finds_its_seed_without_a_lookup_query(api, trained_demo_with_twins, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    seed = trained_demo_with_twins["seed"]
    api.get(f"/api/songs/{seed.external_id}/similar/")  # loads the index
    settings.MODEL_RECHECK_SECONDS = 3600  # the run is known: count only the request's own queries
    with CaptureQueriesContext(connection) as queries:
        body = api.get(f"/api/songs/{seed.external_id}/similar/", {"limit": 5}).json()
    assert body["seed"]["id"] == seed.external_id and len(body["results"]) == 5
    assert len(queries.captured_queries) == 1  # seed and results in one query


def test_an_index_keyed_before_the_arrow_hash_still_finds_its_seed_without_a_query(
    api, trained_demo_with_twins, settings
):
    """Indexes built before the public ids were hashed from Arrow's buffers
    keyed them with blake2b: their seeds are still found in the index (one
    query, not a lookup first), until such runs are pruned."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from clustering.ml.similarity import external_id_hashes

    seed = trained_demo_with_twins["seed"]
    api.get(f"/api/songs/{seed.external_id}/similar/")  # loads the index
    settings.MODEL_RECHECK_SECONDS = 3600
    _, index = artifacts.active_index()
    public = dict(Song.objects.values_list("id", "external_id"))
    legacy = external_id_hashes([public[int(pk)] for pk in index.ids_])
    by_hash = np.argsort(legacy, kind="stable")
    index.key_hashes_, index.key_rows_ = legacy[by_hash], by_hash
    with CaptureQueriesContext(connection) as queries:
        body = api.get(f"/api/songs/{seed.external_id}/similar/", {"limit": 5}).json()
    assert body["seed"]["id"] == seed.external_id and len(body["results"]) == 5
    assert len(queries.captured_queries) == 1


def test_a_song_deleted_since_training_is_404_not_500(api, trained_demo_with_twins):
    seed = trained_demo_with_twins["seed"]
    Song.objects.filter(external_id="dup-1").delete()
    victim = Song.objects.exclude(pk=seed.pk).order_by("id")[20]
    Song.objects.filter(pk=victim.pk).delete()
    assert api.get(f"/api/songs/{victim.external_id}/similar/").status_code == 404
    ids = [r["song"]["id"] for r in api.get(f"/api/songs/{seed.external_id}/similar/", {"limit": 50}).json()["results"]]
    assert victim.external_id not in ids and len(ids) == 50


def test_song_path_keeps_the_artist_rules_when_neighbours_share_an_artist(api, trained_demo_with_twins):
    # Reported: a path whose neighbourhood is one prolific artist fell back to
    # the nearest song and repeated that artist. Give one artist most songs
    # near the end point and check the rules hold anyway.
    songs = list(Song.objects.select_related("artist").order_by("id"))
    source, target = songs[0], songs[-1]
    for i in range(40):
        song_twin(target, f"clone-{i}", name=f"Clone {i}", energy=min(1.0, target.energy + i * 0.001))
    _train()
    path = api.get("/api/path/", {"from": source.external_id, "to": target.external_id, "length": 20}).json()["songs"]
    artists = [s["artist_id"] for s in path]
    assert all(a != b for a, b in pairwise(artists))
    assert len(artists[1:-1]) == len(set(artists[1:-1]))


def test_after_a_rollback_cluster_pages_still_come_from_the_index(trained_demo_with_twins):
    """A run's labels never change: its index's labels are its labels, after a rollback too."""
    from clustering.selectors import cluster_songs_page

    first = trained_demo_with_twins["run"]
    _train(k=3)
    services.training_run_activate(run=first)
    cluster = first.clusters.order_by("-size").first()
    keys, _more = engine_selectors.cluster_song_keys(
        cluster_id=cluster.pk, sort="id", desc=False, after=None, before=None, size=10
    )
    members = cluster_members(cluster)
    assert [pk for _, pk in keys] == list(members.order_by("id").values_list("id", flat=True)[:10])
    page = cluster_songs_page(cluster_id=cluster.pk, sort="energy", desc=True, size=10)
    expected = list(members.order_by("-energy", "-id").values_list("id", flat=True)[:10])
    assert [s.pk for s in page.items] == expected


def test_bounds_are_checked_on_the_stored_values_not_float32_copies(api, trained_demo_with_twins):
    seed = trained_demo_with_twins["seed"]
    edge = song_twin(seed, "edge-1", name="Just Over", energy=0.7 + 1e-7)  # float32 rounds it to 0.7
    _train()
    ids = [
        r["song"]["id"]
        for r in api.get(f"/api/songs/{seed.external_id}/similar/", {"limit": 50, "max_energy": 0.7}).json()["results"]
    ]
    assert ids and edge.external_id not in ids
    tracks = api.get("/api/recommendations/", {"seed_songs": seed.external_id, "limit": 50, "max_energy": 0.7}).json()[
        "tracks"
    ]
    assert tracks and all(t["energy"] <= 0.7 for t in tracks)


def test_enough_songs_is_decided_on_a_prefix_only_when_the_prefix_holds_enough():
    """Whether a genre seed's songs fill a list: many rows are judged on a
    prefix when it holds enough (more rows never hold fewer songs), and on
    every row when it does not; the answer is the whole rows' either way."""
    from types import SimpleNamespace

    import numpy as np

    from clustering import similarity

    def whole(index, rows, limit, cap):  # the definition, on every row
        keys, first = np.unique(index.dup_keys_[rows], return_index=True)
        if not cap:
            return len(keys) >= limit
        _, per_artist = np.unique(index.artists_[rows[first]], return_counts=True)
        return int(np.minimum(per_artist, cap).sum()) >= limit

    rng = np.random.default_rng(5)
    n = 5_000
    cases = {
        "varied": (rng.integers(0, 2**62, n), rng.integers(0, 900, n)),
        "one artist first": (rng.integers(0, 2**62, n), np.where(np.arange(n) < 4_000, 7, np.arange(n))),
        "duplicates first": (np.where(np.arange(n) < 4_500, 11, np.arange(n)), np.arange(n)),
        "one artist": (rng.integers(0, 2**62, n), np.full(n, 3)),
    }
    for name, (keys, artists) in cases.items():
        index = SimpleNamespace(dup_keys_=keys, artists_=artists)
        rows = rng.permutation(n) if name == "varied" else np.arange(n)
        for limit, cap in ((20, 2), (20, None), (50, 1), (10, 2)):
            got = similarity._enough(index, rows, limit=limit, max_per_artist=cap)
            assert got == whole(index, rows, limit, cap), (name, limit, cap)
    one = SimpleNamespace(dup_keys_=rng.integers(0, 2**62, n), artists_=np.full(n, 3))
    assert not similarity._enough(one, np.arange(n), limit=20, max_per_artist=2)  # one artist, capped at 2
