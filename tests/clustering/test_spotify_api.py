"""The Spotify-compatible surface (/spotify/v1/): Spotify's shapes over the
same services as /api/."""

import numpy as np
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from clustering import artifacts
from songs.models import Artist, Song
from songs.services import songs_import_file
from tests.conftest import train_run

pytestmark = pytest.mark.django_db

DEMO = settings.BASE_DIR / "fixtures" / "demo_catalog.csv"
BASE = "http://testserver/spotify/v1/"
FEATURES = ("acousticness", "danceability", "energy", "instrumentalness", "liveness", "loudness", "speechiness",
            "tempo", "valence")  # fmt: skip
TRACK_KEYS = {"album", "artists", "duration_ms", "explicit", "external_ids", "external_urls", "href", "id",
              "is_local", "is_playable", "name", "popularity", "preview_url", "type", "uri"}  # fmt: skip
ARTIST_REF_KEYS = {"external_urls", "href", "id", "name", "type", "uri"}
ARTIST_KEYS = ARTIST_REF_KEYS | {"followers", "genres", "images", "popularity"}
AUDIO_KEYS = {*FEATURES, "analysis_url", "duration_ms", "id", "key", "mode", "time_signature", "track_href", "type",
              "uri"}  # fmt: skip
PAGING_KEYS = {"href", "items", "limit", "next", "offset", "previous", "total"}


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def trained(tmp_path, settings):
    settings.MODEL_DIR = tmp_path / "models"
    artifacts.cache_clear()
    assert songs_import_file(path=DEMO).status == "succeeded"
    return train_run()


def _song(n=7):
    return Song.objects.select_related("artist").order_by("id")[n]


def assert_track(track, song=None):
    assert set(track) == TRACK_KEYS
    assert track["type"] == "track" and track["uri"] == f"musiccluster:track:{track['id']}"
    assert track["href"] == f"{BASE}tracks/{track['id']}"
    assert isinstance(track["duration_ms"], int) and isinstance(track["explicit"], bool)
    assert isinstance(track["popularity"], int) and track["is_playable"] is True and track["preview_url"] is None
    assert isinstance(track["external_ids"], dict)
    (artist,) = track["artists"]
    assert set(artist) == ARTIST_REF_KEYS and artist["type"] == "artist"
    assert artist["uri"] == f"musiccluster:artist:{artist['id']}" and artist["href"] == f"{BASE}artists/{artist['id']}"
    album = track["album"]
    assert album["type"] == "album" and isinstance(album["name"], str) and album["artists"] == track["artists"]
    assert album["release_date_precision"] in ("day", "year", None)
    if song is not None:
        assert track["id"] == song.external_id and track["name"] == song.name
        assert artist["id"] == song.artist.external_id and artist["name"] == song.artist.name
        assert track["duration_ms"] == song.duration_ms
        assert album["release_date"] == (song.release_date.isoformat() if song.release_date else None)
        # Demo ids are 22-character base62 ids, like Spotify's.
        assert track["external_urls"] == {"spotify": f"https://open.spotify.com/track/{song.external_id}"}


def assert_artist(artist):
    assert set(artist) == ARTIST_KEYS and artist["type"] == "artist"
    assert artist["uri"] == f"musiccluster:artist:{artist['id']}" and artist["href"] == f"{BASE}artists/{artist['id']}"
    assert isinstance(artist["genres"], list) and isinstance(artist["followers"]["total"], int)
    assert isinstance(artist["popularity"], int) and artist["images"] == []


def assert_error(response, status, *fragments):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"status", "message"}
    assert body["error"]["status"] == status and isinstance(body["error"]["message"], str)
    for fragment in fragments:
        assert fragment in body["error"]["message"], body


def test_recommendations_shape_seeds_never_returned_and_bounds(api, trained):
    seed, other = _song(7), _song(40)
    params = {"seed_tracks": f"{seed.external_id},{other.external_id}", "seed_artists": seed.artist.external_id,
              "seed_genres": "rock", "limit": 30, "market": "DE", "min_energy": 0.3, "max_energy": 0.9,
              "target_danceability": 0.7, "min_tempo": 90}  # fmt: skip
    response = api.get("/spotify/v1/recommendations", params)
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"seeds", "tracks"}
    assert [(s["type"], s["id"]) for s in body["seeds"]] == [
        ("TRACK", seed.external_id), ("TRACK", other.external_id), ("ARTIST", seed.artist.external_id),
        ("GENRE", "rock")]  # fmt: skip
    for s in body["seeds"]:
        assert set(s) == {"afterFilteringSize", "afterRelinkingSize", "href", "id", "initialPoolSize", "type"}
        assert all(isinstance(s[k], int) for k in ("afterFilteringSize", "afterRelinkingSize", "initialPoolSize"))
    assert body["seeds"][0]["href"] == f"{BASE}tracks/{seed.external_id}" and body["seeds"][3]["href"] is None
    assert body["seeds"][2]["href"] == f"{BASE}artists/{seed.artist.external_id}"
    tracks = body["tracks"]
    assert 0 < len(tracks) <= 30
    for track in tracks:
        assert_track(track)
    ids = [t["id"] for t in tracks]
    assert seed.external_id not in ids and other.external_id not in ids
    songs = Song.objects.in_bulk(ids, field_name="external_id")
    assert all(0.3 <= songs[i].energy <= 0.9 and songs[i].tempo >= 90 for i in ids)


def test_recommendations_match_the_api_surface(api, trained):
    seed = _song(12)
    common = {"seed_artists": _song(100).artist.external_id, "seed_genres": "hip hop", "limit": 25,
              "target_energy": 0.8, "min_valence": 0.2, "max_popularity": 90}  # fmt: skip
    ours = api.get("/api/recommendations/", {**common, "seed_songs": seed.external_id}).json()
    theirs = api.get("/spotify/v1/recommendations/", {**common, "seed_tracks": seed.external_id}).json()
    assert [t["id"] for t in theirs["tracks"]] == [t["id"] for t in ours["tracks"]] and ours["tracks"]
    assert [(s["id"], s["initialPoolSize"], s["afterFilteringSize"]) for s in theirs["seeds"]] == [
        (s["id"], s["initialPoolSize"], s["afterFilteringSize"]) for s in ours["seeds"]
    ]


@pytest.mark.parametrize(
    "params, message",
    [
        ({}, "seed_tracks: Give at least one seed in seed_tracks, seed_artists or seed_genres."),
        ({"seed_genres": "rock,pop,jazz,metal,soul,funk"}, "seed_tracks: At most 5 seeds in all; got 6."),
        ({"seed_genres": "rock", "limit": 101}, "limit: Ensure this value is less than or equal to 100."),
        ({"seed_genres": "rock", "limit": 0}, "limit: Ensure this value is greater than or equal to 1."),
        ({"seed_genres": "rock", "min_energy": 1.5}, "min_energy: Ensure this value is less than or equal to 1."),
        ({"seed_genres": "rock", "min_tempo": 150, "max_tempo": 100}, "min_tempo (150) is greater than max_tempo"),
        ({"seed_tracks": "no-such-track"}, "unknown seed(s): song 'no-such-track'"),
    ],
)
def test_recommendations_errors_in_spotify_shape(api, trained, params, message):
    assert_error(api.get("/spotify/v1/recommendations", params), 400, message)
    if "seed_tracks" not in params:  # /api/ says the same about its own parameters
        ours = api.get("/api/recommendations/", params).json()["detail"]
        assert message.replace("seed_tracks", "seed_songs") in ours


def test_available_genre_seeds(api, trained):
    body = api.get("/spotify/v1/recommendations/available-genre-seeds").json()
    genres = api.get("/api/recommendations/genres/").json()["genres"]
    assert body == {"genres": list(genres)} and "rock" in body["genres"]


def test_audio_features_one_and_many_with_unknown_as_null(api, trained):
    song = _song(3)
    one = api.get(f"/spotify/v1/audio-features/{song.external_id}").json()
    assert set(one) == AUDIO_KEYS and one["type"] == "audio_features" and one["analysis_url"] is None
    assert one["id"] == song.external_id and one["uri"] == f"musiccluster:track:{song.external_id}"
    assert one["track_href"] == f"{BASE}tracks/{song.external_id}"
    assert all(one[name] == getattr(song, name) for name in FEATURES)
    assert one["duration_ms"] == song.duration_ms and isinstance(one["duration_ms"], int)
    assert one["key"] == song.key and one["mode"] == song.mode and one["time_signature"] == song.time_signature
    other = _song(4)
    many = api.get("/spotify/v1/audio-features/", {"ids": f"{song.external_id},nope,{other.external_id}"}).json()
    assert set(many) == {"audio_features"}
    first, missing, last = many["audio_features"]
    assert first == one and missing is None and last["id"] == other.external_id
    assert_error(api.get("/spotify/v1/audio-features/nope"), 404, "No track with id 'nope'.")
    ids = ",".join(f"x{i}" for i in range(101))
    assert_error(api.get("/spotify/v1/audio-features", {"ids": ids}), 400, "ids: At most 100 ids; got 101.")
    assert_error(api.get("/spotify/v1/audio-features"), 400, "ids: This field is required.")
    assert_error(api.get("/spotify/v1/audio-features", {"ids": "a,,b"}), 400, "ids has an empty item")


def test_tracks_one_and_many(api, trained):
    song = _song(5)
    track = api.get(f"/spotify/v1/tracks/{song.external_id}", {"market": "US"}).json()
    assert_track(track, song)
    body = api.get("/spotify/v1/tracks/", {"ids": f"nope,{song.external_id}"}).json()
    assert set(body) == {"tracks"} and body["tracks"] == [None, track]
    assert_error(api.get("/spotify/v1/tracks/nope"), 404, "No track with id 'nope'.")
    ids = ",".join(f"x{i}" for i in range(51))
    assert_error(api.get("/spotify/v1/tracks", {"ids": ids}), 400, "ids: At most 50 ids; got 51.")


def test_artists_and_related_artists(api, trained):
    artist = _song(9).artist
    body = api.get(f"/spotify/v1/artists/{artist.external_id}").json()
    assert_artist(body)
    assert body["id"] == artist.external_id and body["name"] == artist.name and body["genres"] == artist.genres
    related = api.get(f"/spotify/v1/artists/{artist.external_id}/related-artists").json()
    assert set(related) == {"artists"} and len(related["artists"]) == 20
    for item in related["artists"]:
        assert_artist(item)
    names = [a["id"] for a in related["artists"]]
    assert artist.external_id not in names and len(set(names)) == 20
    # Nearest by sound: related artists share the artist's genre more often than artists at large.
    genre = artist.genres[0]
    share = sum(genre in a["genres"] for a in related["artists"]) / 20
    overall = sum(genre in (a.genres or []) for a in Artist.objects.all()) / Artist.objects.count()
    assert share > overall
    assert_error(api.get("/spotify/v1/artists/nope"), 404, "No artist with id 'nope'.")
    assert_error(api.get("/spotify/v1/artists/nope/related-artists"), 404, "No artist with id 'nope'.")


def test_search_tracks_and_artists_with_paging(api, trained):
    song = _song(20)
    word = song.artist.name.split()[-1]
    body = api.get("/spotify/v1/search", {"q": word, "type": "track,artist", "limit": 5, "offset": 5}).json()
    assert set(body) == {"tracks", "artists"}
    tracks, artists = body["tracks"], body["artists"]
    assert set(tracks) == PAGING_KEYS and set(artists) == PAGING_KEYS
    expected = Song.objects.filter(artist__name__icontains=word) | Song.objects.filter(name__icontains=word)
    assert tracks["total"] == min(expected.count(), 1050) and tracks["limit"] == 5 and tracks["offset"] == 5
    assert [t["id"] for t in tracks["items"]] == list(
        expected.order_by("id").values_list("external_id", flat=True)[5:10]
    )
    for track in tracks["items"]:
        assert_track(track)
    assert tracks["href"].startswith(f"{BASE}search?") and "offset=5" in tracks["href"]
    assert "offset=0" in tracks["previous"]
    assert (tracks["next"] is not None and "offset=10" in tracks["next"]) == (tracks["total"] > 10)
    for artist in artists["items"]:
        assert_artist(artist)
        assert word.lower() in artist["name"].lower()
    follow = api.get(tracks["href"].removeprefix("http://testserver")).json()
    assert set(follow) == {"tracks"} and follow["tracks"]["items"] == tracks["items"]
    first = api.get("/spotify/v1/search", {"q": word, "type": "artist"}).json()["artists"]
    assert first["previous"] is None and first["limit"] == 20
    assert_error(api.get("/spotify/v1/search", {"q": word, "type": "album"}), 400, "'album' cannot be searched")
    assert_error(api.get("/spotify/v1/search", {"type": "track"}), 400, "q: This field is required.")
    assert_error(api.get("/spotify/v1/search", {"q": "x", "type": "track", "limit": 51}), 400, "limit:")
    assert_error(api.get("/spotify/v1/search", {"q": "x", "type": "track", "offset": 1001}), 400, "offset:")


def test_bearer_tokens_on_both_surfaces(api, trained):
    user = get_user_model().objects.create_user("robot")
    key = Token.objects.create(user=user).key
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    song = _song(1)
    response = api.get(f"/spotify/v1/tracks/{song.external_id}")
    assert response.status_code == 200 and response.wsgi_request.user == user
    assert api.post("/api/playlists/", {"name": "Mine"}, format="json").status_code == 201
    api.credentials(HTTP_AUTHORIZATION="Bearer not-a-key")
    assert_error(api.get(f"/spotify/v1/tracks/{song.external_id}"), 401, "Invalid token.")
    assert api.post("/api/playlists/", {"name": "x"}, format="json").status_code == 401


def test_anonymous_reads_are_throttled_with_retry_after(api, monkeypatch):
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "anon": "2/minute"})
    codes = [api.get("/spotify/v1/tracks/nope").status_code for _ in range(3)]
    assert codes == [404, 404, 429]
    response = api.get("/spotify/v1/tracks/nope")
    assert_error(response, 429, "throttled")
    assert response.has_header("Retry-After")


def test_no_model_unknown_paths_and_the_schema(api, tmp_path, settings):
    settings.MODEL_DIR = tmp_path / "models"
    assert_error(api.get("/spotify/v1/recommendations", {"seed_genres": "rock"}), 503, "no model is active")
    assert_error(api.get("/spotify/v1/recommendations/available-genre-seeds"), 503, "no model is active")
    assert_error(api.get("/spotify/v1/me/player"), 404, "No endpoint at /spotify/v1/me/player")
    assert_error(api.get("/spotify/v1/tracks/x", {"market": "a\x00b"}), 400, "NUL character")
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    spotify = {path: ops for path, ops in schema["paths"].items() if path.startswith("/spotify/v1/")}
    assert len(spotify) == 9
    assert all(ops["get"]["tags"] == ["Spotify-compatible"] for ops in spotify.values())
    assert "bearerAuth" in schema["components"]["securitySchemes"]


def test_related_artists_are_nearest_by_the_mean_of_their_index_vectors(trained):
    _, index = artifacts.active_index()
    artists = np.unique(index.artists_)
    means = np.stack([index.vector(np.flatnonzero(index.artists_ == a)).mean(axis=0) for a in artists])
    for artist in artists[:5].tolist():
        d = np.linalg.norm(means - means[artists == artist], axis=1)
        d[artists == artist] = np.inf
        expected = artists[np.argsort(d)[:10]].tolist()
        found, dist = index.artists_near(artist, k=10)
        assert len(found) == 10 and artist not in found.tolist() and np.all(np.diff(dist) >= 0)
        assert len(set(found.tolist()) & set(expected)) >= 9  # float16 vectors may swap a near tie
    assert len(index.artists_near(-1, k=10)[0]) == 0
