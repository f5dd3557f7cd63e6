"""The Spotify-compatible surface driven by spotipy, Spotify's Python client,
against a live server: its base URL pointed at /spotify/v1/, one of the
site's tokens as its Bearer token, nothing else changed.

The server is the gunicorn of the schemathesis test (the demo catalog,
imported and clustered by `setup_demo`, on SQLite or on a scratch Postgres
database when DATABASE_URL is set); what each call returns is checked
against the catalog file it imported and against /api/ for the same query.

spotipy checks ids before it sends them: a bare base62 id, a
`spotify:track:ID` URI or an open.spotify.com URL (it sends the bare id).
The demo catalog's ids are 22-character base62 ids, as Spotify's are.
spotipy refuses this site's own `musiccluster:track:ID` URIs itself, before
any request; the server accepts both URI forms from other clients.
"""

import ast
import csv
import json
import re
import shutil
import statistics
import subprocess
import sys
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
import requests
import spotipy

from tests.musiccluster.test_schema_fuzz import MAX_EXAMPLES, live_api  # noqa: F401  (live_api: the live server, a module fixture)

# spotipy warns that Spotify deprecated these endpoints: that is why this surface exists.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:spotipy")

DEMO = Path(__file__).resolve().parents[2] / "fixtures" / "demo_catalog.csv"
UNKNOWN = "0000000000000000000000"  # a well-formed Spotify id that is not in the catalog


@pytest.fixture(scope="module")
def catalog():
    """The demo catalog as the server imported it: {track id: row}, {artist id: rows}."""
    with DEMO.open(newline="", encoding="utf-8") as f:
        rows = {row["id_songs"]: row for row in csv.DictReader(f)}
    artists: dict[str, list[dict]] = {}
    for row in rows.values():
        artists.setdefault(row["id_artists"], []).append(row)
    return rows, artists


@pytest.fixture(scope="module")
def live(live_api):  # noqa: F811  (the imported fixture)
    base, token, _ = live_api
    return base, token


def client(base: str, token: str | None) -> spotipy.Spotify:
    # A plain session: spotipy's own retries (on 429 and 5xx) would hide a server error.
    sp = spotipy.Spotify(auth=token, requests_session=requests.Session(), requests_timeout=60)
    sp.prefix = f"{base}/spotify/v1/"
    return sp


@pytest.fixture(scope="module")
def sp(live):
    return client(*live)


def api_get(base: str, path: str, **params) -> dict:
    with urllib.request.urlopen(f"{base}{path}?{urllib.parse.urlencode(params)}", timeout=60) as response:
        return json.loads(response.read())


def assert_track_is(track: dict, row: dict) -> None:
    """A track object as spotipy returns it, against the catalog's row."""
    assert track["id"] == row["id_songs"] and track["name"] == row["name_song"] and track["type"] == "track"
    assert track["uri"] == f"musiccluster:track:{row['id_songs']}"
    assert track["duration_ms"] == int(row["duration_ms"]) and track["popularity"] == int(row["popularity_songs"])
    assert track["explicit"] is (row["explicit"] == "1")
    assert [(a["id"], a["name"]) for a in track["artists"]] == [(row["id_artists"], row["name_artists"])]
    assert track["album"]["release_date"] == row["release_date"]
    assert track["href"].endswith(f"/spotify/v1/tracks/{row['id_songs']}")


def test_recommendations_with_seed_tracks_targets_and_bounds(sp, live, catalog):
    rows, _ = catalog
    seed = next(iter(rows))
    result = sp.recommendations(seed_tracks=[seed], limit=25, target_energy=0.8, min_tempo=120, country="US")
    assert [(s["type"], s["id"]) for s in result["seeds"]] == [("TRACK", seed)]
    assert result["seeds"][0]["href"].endswith(f"/spotify/v1/tracks/{seed}")
    tracks = result["tracks"]
    assert 0 < len(tracks) <= 25 and seed not in [t["id"] for t in tracks]
    for track in tracks:
        row = rows[track["id"]]
        assert_track_is(track, row)
        assert float(row["tempo"]) >= 120  # min_tempo is a hard bound
    # target_energy pulls towards 0.8: the picks sit nearer to it than the tracks the bound allows.
    allowed = [float(r["energy"]) for r in rows.values() if float(r["tempo"]) >= 120]
    picked = [float(rows[t["id"]]["energy"]) for t in tracks]
    assert statistics.mean(abs(e - 0.8) for e in picked) < statistics.mean(abs(e - 0.8) for e in allowed)
    # The same tracks as /api/ for the same query: one implementation behind both surfaces.
    base, _ = live
    ours = api_get(base, "/api/recommendations/", seed_songs=seed, limit=25, target_energy=0.8, min_tempo=120)
    assert [t["id"] for t in tracks] == [t["id"] for t in ours["tracks"]]


def test_recommendations_accept_what_spotipy_sends_for_uris_and_urls(sp, catalog):
    rows, artists = catalog
    track_id, artist_id = next(iter(rows)), next(iter(artists))
    plain = sp.recommendations(seed_tracks=[track_id], seed_artists=[artist_id], limit=10)
    for seeds in (
        {"seed_tracks": [f"spotify:track:{track_id}"], "seed_artists": [f"spotify:artist:{artist_id}"]},
        {"seed_tracks": [f"https://open.spotify.com/track/{track_id}"], "seed_artists": [artist_id]},
    ):
        assert sp.recommendations(**seeds, limit=10)["tracks"] == plain["tracks"]
    assert [(s["type"], s["id"]) for s in plain["seeds"]] == [("TRACK", track_id), ("ARTIST", artist_id)]
    # spotipy itself refuses this site's URIs (it knows only spotify: ones); pass track["id"] instead.
    with pytest.raises(spotipy.SpotifyException, match="Unsupported URL / URI"):
        sp.recommendations(seed_tracks=[f"musiccluster:track:{track_id}"])


def test_genre_seeds_and_recommendations_from_a_genre(sp, catalog):
    rows, _ = catalog
    genres = sp.recommendation_genre_seeds()["genres"]
    in_catalog = {g for row in rows.values() for g in ast.literal_eval(row["genres"])}
    assert genres and set(genres) <= in_catalog
    genre = genres[0]
    result = sp.recommendations(seed_genres=[genre], limit=100, max_popularity=60, min_danceability=0.3)
    assert [(s["type"], s["id"], s["href"]) for s in result["seeds"]] == [("GENRE", genre, None)]
    assert 0 < len(result["tracks"]) <= 100
    for track in result["tracks"]:
        row = rows[track["id"]]
        assert int(row["popularity_songs"]) <= 60 and float(row["danceability"]) >= 0.3


def test_audio_features_with_an_unknown_id_in_place(sp, catalog):
    rows, _ = catalog
    first, second = list(rows)[3:5]
    features = sp.audio_features([first, UNKNOWN, f"spotify:track:{second}"])
    assert len(features) == 3 and features[1] is None
    for item, track_id in ((features[0], first), (features[2], second)):
        row = rows[track_id]
        assert item["type"] == "audio_features" and item["id"] == track_id
        assert item["uri"] == f"musiccluster:track:{track_id}" and item["track_href"].endswith(f"/tracks/{track_id}")
        for name in ("danceability", "energy", "loudness", "speechiness", "acousticness", "instrumentalness",
                     "liveness", "valence", "tempo"):  # fmt: skip
            assert item[name] == pytest.approx(float(row[name])), name
        assert item["duration_ms"] == int(row["duration_ms"])
        assert (item["key"], item["mode"], item["time_signature"]) == (
            int(row["key"]),
            int(row["mode"]),
            int(row["time_signature"]),
        )
    assert sp.audio_features([UNKNOWN]) == [None]
    with pytest.raises(spotipy.SpotifyException) as error:
        sp.audio_features([first] * 101)
    assert error.value.http_status == 400 and "ids: At most 100 ids; got 101." in error.value.msg


def test_track_and_tracks(sp, catalog):
    rows, _ = catalog
    ids = list(rows)[10:13]
    one = sp.track(ids[0], market="DE")
    assert_track_is(one, rows[ids[0]])
    many = sp.tracks([ids[1], UNKNOWN, ids[0], ids[2]])["tracks"]
    assert many[1] is None and many[2] == one
    for track, track_id in zip((many[0], many[3]), (ids[1], ids[2]), strict=True):
        assert_track_is(track, rows[track_id])
    with pytest.raises(spotipy.SpotifyException) as error:
        sp.track(UNKNOWN)
    assert error.value.http_status == 404 and f"No track with id '{UNKNOWN}'." in error.value.msg


def test_artist_and_related_artists(sp, catalog):
    _, artists = catalog
    artist_id = next(iter(artists))
    row = artists[artist_id][0]
    artist = sp.artist(f"spotify:artist:{artist_id}")
    assert artist["id"] == artist_id and artist["name"] == row["name_artists"] and artist["type"] == "artist"
    assert artist["genres"] == ast.literal_eval(row["genres"])
    assert artist["followers"]["total"] == int(row["followers"])
    assert artist["popularity"] == int(row["popularity_artists"])
    related = sp.artist_related_artists(artist_id)["artists"]
    ids = [a["id"] for a in related]
    assert len(ids) == 20 == len(set(ids)) and artist_id not in ids
    for item in related:
        assert item["name"] == artists[item["id"]][0]["name_artists"]
    with pytest.raises(spotipy.SpotifyException) as error:
        sp.artist_related_artists(UNKNOWN)
    assert error.value.http_status == 404


def test_search_tracks_and_artists_and_its_next_page(sp, catalog):
    rows, artists = catalog
    word = next(iter(rows.values()))["name_artists"].split()[-1]

    def matches(row: dict) -> bool:
        return word.lower() in row["name_song"].lower() or word.lower() in row["name_artists"].lower()

    expected = sum(matches(row) for row in rows.values())
    result = sp.search(q=word, type="track,artist", limit=7)
    tracks, found_artists = result["tracks"], result["artists"]
    assert tracks["total"] == min(expected, 1050) and tracks["limit"] == 7 and tracks["offset"] == 0
    assert 0 < len(tracks["items"]) <= 7
    for track in tracks["items"]:
        assert matches(rows[track["id"]])
        assert_track_is(track, rows[track["id"]])
    for artist in found_artists["items"]:
        assert word.lower() in artist["name"].lower() and artist["id"] in artists
    if expected > 7:  # spotipy follows the absolute `next` link it was given
        following = sp.next(tracks)["tracks"]
        assert following["offset"] == 7 and following["items"]
        assert not {t["id"] for t in following["items"]} & {t["id"] for t in tracks["items"]}
    nothing = sp.search(q="no such title anywhere zzqx", type="track")["tracks"]
    assert (nothing["items"], nothing["total"], nothing["next"], nothing["previous"]) == ([], 0, None, None)
    with pytest.raises(spotipy.SpotifyException) as error:
        sp.search(q=word, type="album")
    assert error.value.http_status == 400 and "'album' cannot be searched" in error.value.msg


def test_errors_reach_spotipy_in_spotify_shape_and_tokens(live, catalog):
    base, token = live
    sp = client(base, token)
    with pytest.raises(spotipy.SpotifyException) as error:
        sp.recommendations(seed_genres=["rock"], limit=101)
    assert error.value.http_status == 400
    assert "limit: Ensure this value is less than or equal to 100." in error.value.msg
    with pytest.raises(spotipy.SpotifyException) as error:
        client(base, "not-a-token").track(next(iter(catalog[0])))
    assert error.value.http_status == 401 and "Invalid token." in error.value.msg
    # Reads need no token (the anonymous throttle applies).
    assert client(base, None).track(next(iter(catalog[0])))["id"] == next(iter(catalog[0]))


def test_other_clients_may_send_either_uri_form_where_an_id_goes(live, catalog):
    """Clients that pass ids through unchanged (curl, other SDKs) may send
    this site's URIs or Spotify's: the server takes them as their ids."""
    base, token = live
    rows, artists = catalog
    first, second = list(rows)[20:22]
    artist_id = next(iter(artists))
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    def get(path: str, **params):
        return session.get(f"{base}/spotify/v1/{path}", params=params, timeout=60)

    plain = get(f"tracks/{first}").json()
    assert get(f"tracks/musiccluster:track:{first}").json() == plain == get(f"tracks/spotify:track:{first}").json()
    both = get("tracks", ids=f"musiccluster:track:{first},spotify:track:{second},{UNKNOWN}").json()["tracks"]
    assert both[0] == plain and both[1]["id"] == second and both[2] is None
    assert get(f"audio-features/musiccluster:track:{second}").json()["id"] == second
    assert get(f"artists/musiccluster:artist:{artist_id}").json()["id"] == artist_id
    related = get(f"artists/spotify:artist:{artist_id}/related-artists").json()
    assert related == get(f"artists/{artist_id}/related-artists").json()
    seeded = get("recommendations", seed_tracks=f"musiccluster:track:{first}", limit=5).json()
    assert seeded["seeds"][0]["id"] == first and seeded == get("recommendations", seed_tracks=first, limit=5).json()
    wrong = get("recommendations", seed_tracks=f"musiccluster:artist:{artist_id}")
    assert wrong.status_code == 400 and wrong.json() == {
        "error": {
            "status": 400,
            "message": f"seed_tracks: 'musiccluster:artist:{artist_id}' is an artist URI; seed_tracks takes tracks.",
        }
    }


def test_schemathesis_with_catalog_ids_finds_no_server_error(live, catalog, tmp_path):
    """The site-wide schemathesis run (tests/musiccluster/test_schema_fuzz.py)
    covers /spotify/v1/ with made-up ids, which only ever reach a 404 or an
    unknown-seed 400. Here the id parameters draw from the catalog (most of
    the time), so generated bounds, targets, limits and offsets reach the
    recommendation, lookup and search code behind the surface."""
    base, token = live
    rows, artists = catalog
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert cli, "schemathesis is not installed: `make install-dev`"
    tracks, artist_ids = list(rows)[:40], list(artists)[:40]
    words = sorted({row["name_artists"].split()[-1] for row in list(rows.values())[:40]})

    def values(items):
        return "[" + ", ".join(json.dumps(item) for item in items) + "]"

    def bind(name: str, dictionary: str) -> str:
        return f'"{name}" = {{ dictionary = "{dictionary}", probability = 0.9 }}'

    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f"""
[dictionaries.tracks]
values = {values(tracks)}
[dictionaries.track_lists]
values = {values([",".join(tracks[i : i + 3]) for i in range(0, 30, 3)] + [f"{tracks[0]},{UNKNOWN}"])}
[dictionaries.artists]
values = {values(artist_ids)}
[dictionaries.words]
values = {values(words)}

[[operations]]
include-path-regex = "^/spotify/v1/(tracks|audio-features)/\\\\{{external_id\\\\}}/$"
parameters = {{ {bind("path.external_id", "tracks")} }}
[[operations]]
include-path-regex = "^/spotify/v1/artists/"
parameters = {{ {bind("path.external_id", "artists")} }}
[[operations]]
include-path-regex = "^/spotify/v1/(tracks|audio-features)/$"
parameters = {{ {bind("query.ids", "track_lists")} }}
[[operations]]
include-path-regex = "^/spotify/v1/recommendations/$"
parameters = {{ {bind("query.seed_tracks", "tracks")}, {bind("query.seed_artists", "artists")} }}
[[operations]]
include-path-regex = "^/spotify/v1/search/$"
parameters = {{ {bind("query.q", "words")} }}
"""
    )
    reports = tmp_path / "reports"
    args = [cli, "--config-file", str(config), "run", f"{base}/api/schema/", "--include-path-regex", "^/spotify/v1/",
            "--checks", "not_a_server_error", "--max-examples", str(MAX_EXAMPLES), "--seed", "20261129",
            "--header", f"Authorization: Bearer {token}", "--request-timeout", "120",
            "--generation-database", "none", "--report", "json,har", "--report-dir", str(reports), "--no-color"]  # fmt: skip
    result = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False)
    found = sorted(reports.glob("json-*.json"))
    assert found, f"schemathesis wrote no report (exit {result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr}"
    report = json.loads(found[-1].read_text())
    assert report["operations"]["tested"] == 9, report["operations"]
    assert not report["failures"] and not report["errors"], result.stdout[-8000:]
    assert result.returncode == 0, result.stdout[-4000:]
    # Every operation was answered with a 200 too: the catalog ids reached the code behind it.
    (har,) = reports.glob("har-*.json")
    statuses: dict[str, Counter] = {}
    for entry in json.loads(har.read_text())["log"]["entries"]:
        path = urllib.parse.urlsplit(entry["request"]["url"]).path
        if not path.startswith("/spotify/v1/"):
            continue
        path = path.removeprefix("/spotify/v1/").rstrip("/")
        operation = re.sub(r"^(tracks|audio-features|artists)/[^/]+", r"\1/{id}", path)
        statuses.setdefault(operation, Counter())[entry["response"]["status"]] += 1
    print(f"schemathesis on /spotify/v1/ with catalog ids: {report['test_cases']['generated']} requests, {statuses}")
    assert len(statuses) == 9 and all(counts[200] for counts in statuses.values()), statuses
    assert not any(status >= 500 for counts in statuses.values() for status in counts), statuses
