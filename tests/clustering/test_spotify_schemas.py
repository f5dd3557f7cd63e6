"""Every answer of /spotify/v1/, errors included, against JSON Schemas written
from Spotify's public Web API reference (tests/clustering/spotify_schemas/:
the track, simplified artist and album, artist, audio-features,
recommendations and seed, genre seeds, paging and search, related-artists
and error objects). Each file's `$comment` says where the surface departs
from the reference and why (what the catalog cannot fill)."""

import json
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from songs.models import Song

pytestmark = pytest.mark.django_db

SCHEMAS = Path(__file__).with_name("spotify_schemas")
BASE = "https://musiccluster.invalid/spotify/"
UNKNOWN = "0000000000000000000000"


def _registry() -> Registry:
    resources = []
    for path in sorted(SCHEMAS.glob("*.json")):
        schema = json.loads(path.read_text())
        assert schema["$id"] == BASE + path.name, path
        Draft202012Validator.check_schema(schema)
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


REGISTRY = _registry()


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": BASE + name}, registry=REGISTRY)


def assert_valid(response, name: str, status: int = 200) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(name).iter_errors(body)]
    assert not errors, f"{response.wsgi_request.get_full_path()} against {name}:\n" + "\n".join(errors[:10])
    return body


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def songs(trained_demo):
    return list(Song.objects.select_related("artist").order_by("id")[:60])


def test_the_schemas_refuse_other_shapes():
    """The schemas are strict enough to fail: /api/'s shapes and broken objects are refused."""
    assert not validator("error.json").is_valid({"detail": "Not found."})
    assert not validator("error.json").is_valid({"error": {"status": 200, "message": "x"}})
    assert not validator("error.json").is_valid({"error": {"status": 400}})
    track = {"album": {"album_type": "album", "artists": [], "external_urls": {}, "href": None, "id": None,
                       "images": [], "name": "", "release_date": "2001-02-03", "release_date_precision": "day",
                       "type": "album", "uri": None},
             "artists": [{"external_urls": {}, "href": "h", "id": "a", "name": "n", "type": "artist", "uri": "u"}],
             "duration_ms": 1000, "explicit": False, "external_ids": {}, "external_urls": {}, "href": "h", "id": "t",
             "is_local": False, "is_playable": True, "name": "n", "popularity": 3, "preview_url": None,
             "type": "track", "uri": "u"}  # fmt: skip
    assert validator("track.json").is_valid(track)
    assert not validator("track.json").is_valid({**track, "artists": [{"name": "flat string artist"}]})
    assert not validator("track.json").is_valid({**track, "type": "song"})
    assert not validator("track.json").is_valid({k: v for k, v in track.items() if k != "uri"})
    assert not validator("tracks.json").is_valid({"tracks": [track, {"id": "half"}]})
    seed = {"afterFilteringSize": 1, "afterRelinkingSize": 1, "href": "h", "id": "x", "initialPoolSize": 2}
    assert not validator("recommendations.json").is_valid({"seeds": [{**seed, "type": "SONG"}], "tracks": []})
    assert not validator("recommendations.json").is_valid({"seeds": [{**seed, "type": "GENRE"}], "tracks": []})
    assert validator("recommendations.json").is_valid({"seeds": [{**seed, "type": "TRACK"}], "tracks": [track]})
    assert not validator("search.json").is_valid({"albums": {}})


def test_recommendations_and_genre_seeds(api, songs):
    seed, other = songs[7], songs[30]
    genres = assert_valid(api.get("/spotify/v1/recommendations/available-genre-seeds"), "genre_seeds.json")
    for params in (
        {"seed_tracks": seed.external_id, "target_energy": 0.8, "min_tempo": 100},
        {
            "seed_tracks": f"{seed.external_id},{other.external_id}",
            "seed_artists": seed.artist.external_id,
            "seed_genres": genres["genres"][0],
            "limit": 100,
            "market": "US",
        },
        {"seed_genres": genres["genres"][-1], "max_popularity": 0, "min_popularity": 0},  # maybe no track at all
    ):
        body = assert_valid(api.get("/spotify/v1/recommendations", params), "recommendations.json")
        assert len(body["seeds"]) == sum(len(v.split(",")) for k, v in params.items() if k.startswith("seed_"))
    assert body["tracks"] == [] or all(t["popularity"] == 0 for t in body["tracks"])


def test_tracks_audio_features_and_artists(api, songs):
    song, other = songs[3], songs[4]
    assert_valid(api.get(f"/spotify/v1/tracks/{song.external_id}"), "track.json")
    many = assert_valid(api.get("/spotify/v1/tracks", {"ids": f"{song.external_id},{UNKNOWN}"}), "tracks.json")
    assert many["tracks"][1] is None
    assert_valid(api.get(f"/spotify/v1/audio-features/{song.external_id}"), "audio_features.json")
    ids = f"{UNKNOWN},{song.external_id},{other.external_id}"
    features = assert_valid(api.get("/spotify/v1/audio-features/", {"ids": ids}), "audio_features_list.json")
    assert features["audio_features"][0] is None
    assert_valid(api.get(f"/spotify/v1/artists/{song.artist.external_id}"), "artist.json")
    related = assert_valid(
        api.get(f"/spotify/v1/artists/{song.artist.external_id}/related-artists"), "related_artists.json"
    )
    assert related["artists"]


def test_tracks_with_what_the_catalog_may_lack(api, songs):
    """A song with no release date, album, key, mode or time signature still fits the schemas."""
    song = songs[11]
    Song.objects.filter(pk=song.pk).update(release_date=None, release_year=None, album=None, key=None, mode=None,
                                           time_signature=None, popularity=None, explicit=None)  # fmt: skip
    track = assert_valid(api.get(f"/spotify/v1/tracks/{song.external_id}"), "track.json")
    assert track["album"]["release_date"] is None and track["album"]["release_date_precision"] is None
    features = assert_valid(api.get(f"/spotify/v1/audio-features/{song.external_id}"), "audio_features.json")
    assert features["key"] == -1 and features["mode"] is None


def test_search(api, songs):
    word = songs[20].artist.name.split()[-1]
    for params in (
        {"q": word, "type": "track,artist", "limit": 5, "offset": 5},
        {"q": word, "type": "artist"},
        {"q": word, "type": "track", "limit": 0},
        {"q": "zzqx no such words", "type": "track,artist"},
        {"q": word, "type": "track", "offset": 1000, "limit": 50},
    ):
        body = assert_valid(api.get("/spotify/v1/search", params), "search.json")
        assert set(body) == {f"{kind}s" for kind in params["type"].split(",")}


@pytest.mark.parametrize(
    "path, params, status",
    [
        ("recommendations", {}, 400),
        ("recommendations", {"seed_genres": "rock", "limit": 101}, 400),
        ("recommendations", {"seed_tracks": "no-such-track"}, 400),
        ("recommendations", {"seed_genres": "rock", "min_tempo": 150, "max_tempo": 100}, 400),
        ("recommendations", {"seed_tracks": "musiccluster:artist:x"}, 400),
        ("audio-features", {"ids": ",".join(["x"] * 101)}, 400),
        ("audio-features", {}, 400),
        (f"audio-features/{UNKNOWN}", {}, 404),
        ("tracks", {"ids": "a,,b"}, 400),
        (f"tracks/{UNKNOWN}", {}, 404),
        (f"artists/{UNKNOWN}", {}, 404),
        (f"artists/{UNKNOWN}/related-artists", {}, 404),
        ("search", {"q": "x", "type": "album"}, 400),
        ("search", {"q": "x", "type": "track", "offset": 1001}, 400),
        ("search", {"type": "track"}, 400),
        ("me/player", {}, 404),
        ("tracks/x", {"market": "a\x00b"}, 400),
        ("tracks/musiccluster:artist:x", {}, 400),
        ("artists/spotify:track:x/related-artists", {}, 400),
    ],
)
def test_error_bodies(api, trained_demo, path, params, status):
    body = assert_valid(api.get(f"/spotify/v1/{path}", params), "error.json", status)
    assert body["error"]["status"] == status


def test_error_bodies_401_and_503(api, settings, tmp_path):
    user = get_user_model().objects.create_user("robot")
    Token.objects.create(user=user)
    api.credentials(HTTP_AUTHORIZATION="Bearer not-a-key")
    assert_valid(api.get(f"/spotify/v1/tracks/{UNKNOWN}"), "error.json", 401)
    api.credentials()
    settings.MODEL_DIR = tmp_path / "models"  # no model is active: 503
    assert_valid(api.get("/spotify/v1/recommendations", {"seed_genres": "rock"}), "error.json", 503)
    assert_valid(api.get("/spotify/v1/recommendations/available-genre-seeds"), "error.json", 503)


def test_error_body_429(api, monkeypatch):
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "anon": "1/minute"})
    assert api.get(f"/spotify/v1/tracks/{UNKNOWN}").status_code == 404
    response = api.get(f"/spotify/v1/tracks/{UNKNOWN}")
    assert_valid(response, "error.json", 429)
    assert response.has_header("Retry-After")
