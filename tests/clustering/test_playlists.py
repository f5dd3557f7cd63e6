"""Saved playlists: services, files (M3U, CSV, JSON, XSPF) and the REST API."""

import csv
import io
import json
import xml.etree.ElementTree as ET

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from clustering import artifacts, playlists, services
from clustering.models import Cluster, Playlist, PlaylistItem, TrainingRun
from songs.models import Song
from songs.services import songs_import_file
from tests.conftest import cluster_members, flagship_rows, train_run, write_csv

pytestmark = pytest.mark.django_db

XSPF = "{http://xspf.org/ns/0/}"
FORMULA = '=HYPERLINK("http://evil.example/","click")'
SCRIPT_ARTIST = "<script>alert('x')</script> & \"Friends\""


@pytest.fixture
def thirty_songs(tmp_path):
    """30 songs; the first has a formula for a title, the second a hostile artist name."""
    rows = flagship_rows(30)
    rows[0]["name_song"] = FORMULA
    rows[1]["name_artists"] = SCRIPT_ARTIST
    rows[1]["id_artists"] = "ART_SCRIPT"
    job = songs_import_file(path=write_csv(tmp_path / "catalog.csv", rows))
    assert job.status == "succeeded", job.error
    return list(Song.objects.select_related("artist").order_by("id"))


@pytest.fixture
def users():
    User = get_user_model()
    return User.objects.create_user("alice"), User.objects.create_user("bob")  # no password: no slow hashing


@pytest.fixture
def api():
    return APIClient()


def ids(songs):
    return [s.external_id for s in songs]


# --- services ---------------------------------------------------------------


def test_create_keeps_order_and_repeats(thirty_songs, users):
    alice, _ = users
    order = [thirty_songs[5].external_id, thirty_songs[0].external_id, thirty_songs[5].external_id]
    playlist = playlists.playlist_create(owner=alice, name="  Mix  ", song_ids=order, source="radio")
    assert playlist.name == "Mix" and playlist.source == "radio" and playlist.is_public is False
    assert ids(playlists.playlist_songs(playlist=playlist)) == order
    assert list(playlist.items.values_list("position", flat=True)) == [0, 1, 2]


def test_unknown_songs_are_named_and_nothing_is_written(thirty_songs, users):
    alice, _ = users
    with pytest.raises(playlists.UnknownSongsError) as exc:
        playlists.playlist_create(owner=alice, name="x", song_ids=[thirty_songs[0].external_id, "nope-1", "nope-2"])
    assert exc.value.unknown == ["nope-1", "nope-2"] and "nope-1, nope-2" in str(exc.value)
    assert not Playlist.objects.exists() and not PlaylistItem.objects.exists()


def test_replacing_songs_is_all_or_nothing(thirty_songs, users):
    alice, _ = users
    playlist = playlists.playlist_create(owner=alice, name="x", song_ids=ids(thirty_songs[:3]))
    with pytest.raises(playlists.UnknownSongsError):
        playlists.playlist_songs_set(playlist=playlist, song_ids=[thirty_songs[4].external_id, "missing"])
    assert ids(playlists.playlist_songs(playlist=playlist)) == ids(thirty_songs[:3])
    with pytest.raises(playlists.PlaylistError, match="at most 1,000"):
        playlists.playlist_update(playlist=playlist, name="renamed", song_ids=[thirty_songs[0].external_id] * 1001)
    playlist.refresh_from_db()
    assert playlist.name == "x" and playlist.items.count() == 3
    playlists.playlist_songs_set(playlist=playlist, song_ids=ids(thirty_songs[10:12]))
    assert ids(playlists.playlist_songs(playlist=playlist)) == ids(thirty_songs[10:12])


def test_bad_names_and_sources_are_refused(thirty_songs, users):
    alice, _ = users
    with pytest.raises(playlists.PlaylistError) as exc:
        playlists.playlist_create(owner=alice, name="   ")
    assert exc.value.field == "name"
    with pytest.raises(playlists.PlaylistError, match="choose one of manual, radio") as exc:
        playlists.playlist_create(owner=alice, name="x", source="spotify")
    assert exc.value.field == "source"


def test_playlists_keep_their_songs_across_retrains(trained_demo, users):
    first = trained_demo
    cluster = first.clusters.order_by("label").first()
    chosen = list(cluster_members(cluster).order_by("id").values_list("external_id", flat=True)[:25])
    playlist = playlists.playlist_create(owner=users[0], name=cluster.name, song_ids=chosen, source="cluster")

    second = train_run(k=6)
    assert second.is_active and not TrainingRun.objects.get(pk=first.pk).is_active
    songs = playlists.playlist_songs(playlist=playlist)
    assert ids(songs) == chosen
    # The songs now carry the new run's clusters, and the file says so.
    assert set(Cluster.objects.filter(pk__in={s.cluster_id for s in songs}).values_list("run_id", flat=True)) == {
        second.pk
    }
    body = json.loads(playlists.playlist_export(title=playlist.name, songs=songs, fmt="json")[0])
    new_names = set(second.clusters.values_list("name", flat=True))
    assert {s["cluster"] for s in body["songs"]} <= new_names
    # Even dropping the old run (and its clusters) leaves the playlist whole.
    first.delete()
    assert ids(playlists.playlist_songs(playlist=playlist)) == chosen


def test_deleting_a_song_removes_it_from_playlists(thirty_songs, users):
    playlist = playlists.playlist_create(owner=users[0], name="x", song_ids=ids(thirty_songs[:3]))
    thirty_songs[1].delete()
    assert ids(playlists.playlist_songs(playlist=playlist)) == [
        thirty_songs[0].external_id,
        thirty_songs[2].external_id,
    ]


# --- files ------------------------------------------------------------------


def test_m3u_is_extended_m3u_with_song_pages_as_locations(thirty_songs):
    songs = thirty_songs[:3]
    songs[2].name = "Two\nLines"
    content, content_type, filename = playlists.playlist_export(
        title="Road Trip", songs=songs, fmt="m3u", base_url="https://music.example.org/"
    )
    lines = content.decode("utf-8").splitlines()
    assert content_type.startswith("audio/x-mpegurl") and filename == "road-trip.m3u8"
    assert lines[0] == "#EXTM3U" and lines[1] == "#PLAYLIST:Road Trip"
    assert lines[2] == f"#EXTINF:215,Synthetic Artist 1 - {FORMULA}"
    assert lines[3] == f"https://music.example.org/songs/{songs[0].external_id}/"
    assert lines[6] == "#EXTINF:215,Synthetic Artist 3 - Two Lines"  # a line break cannot split an entry
    assert len(lines) == 2 + 2 * len(songs)


def test_csv_columns_and_formula_injection(thirty_songs):
    content, content_type, filename = playlists.playlist_export(title="=cmd()", songs=thirty_songs[:3], fmt="csv")
    assert content_type.startswith("text/csv") and filename == "cmd.csv"
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8"))))
    assert list(rows[0]) == [
        "id",
        "title",
        "artist",
        "album",
        "duration_ms",
        "danceability",
        "energy",
        "loudness",
        "speechiness",
        "acousticness",
        "instrumentalness",
        "liveness",
        "valence",
        "tempo",
        "cluster",
    ]
    assert rows[0]["title"] == "'" + FORMULA  # a spreadsheet shows it as text
    assert rows[1]["artist"] == SCRIPT_ARTIST
    assert float(rows[0]["loudness"]) == -6.4  # numbers stay numbers, minus sign and all
    assert [r["id"] for r in rows] == ids(thirty_songs[:3]) and rows[0]["duration_ms"] == "215000"
    assert rows[0]["cluster"] == ""  # no model trained


def test_json_file(thirty_songs):
    content, content_type, filename = playlists.playlist_export(title="Mix ünïcode", songs=thirty_songs[:2], fmt="json")
    body = json.loads(content)
    assert content_type == "application/json" and filename == "mix-unicode.json"
    assert body["title"] == "Mix ünïcode" and [s["id"] for s in body["songs"]] == ids(thirty_songs[:2])
    assert body["songs"][0]["title"] == FORMULA and body["songs"][1]["artist"] == SCRIPT_ARTIST
    assert body["songs"][0]["energy"] == thirty_songs[0].energy


def test_xspf_is_valid_xml_with_names_escaped(thirty_songs):
    songs = thirty_songs[:3]
    songs[2].name = "Bell\x07 & <Whistle>"
    content, content_type, filename = playlists.playlist_export(
        title='<b>Mine</b> & "yours"', songs=songs, fmt="xspf", base_url="http://h"
    )
    assert content_type == "application/xspf+xml" and filename == "bmineb-yours.xspf"
    assert b"<script>" not in content and b"&lt;script&gt;" in content
    root = ET.fromstring(content)
    assert root.tag == f"{XSPF}playlist" and root.get("version") == "1"
    assert root.find(f"{XSPF}title").text == '<b>Mine</b> & "yours"'
    tracks = root.findall(f"{XSPF}trackList/{XSPF}track")
    assert len(tracks) == 3
    assert [child.tag.removeprefix(XSPF) for child in tracks[0]] == [
        "location",
        "identifier",
        "title",
        "creator",
        "duration",
    ]
    assert tracks[0].find(f"{XSPF}title").text == FORMULA
    assert tracks[1].find(f"{XSPF}creator").text == SCRIPT_ARTIST
    assert tracks[2].find(f"{XSPF}title").text == "Bell & <Whistle>"  # no control characters in XML
    assert tracks[0].find(f"{XSPF}duration").text == "215000"
    assert tracks[0].find(f"{XSPF}location").text == f"http://h/songs/{songs[0].external_id}/"
    assert tracks[0].find(f"{XSPF}identifier").text == f"urn:musiccluster:song:{songs[0].external_id}"


def test_unknown_format_names_the_choices(thirty_songs):
    with pytest.raises(ValueError, match=r"'pdf'.*m3u, csv, json, xspf"):
        playlists.playlist_export(title="x", songs=thirty_songs[:1], fmt="pdf")


def test_export_fetches_cluster_names_in_one_query(thirty_songs, django_assert_num_queries, tmp_path, settings):
    settings.MODEL_DIR = tmp_path / "models"
    artifacts.cache_clear()
    run = services.training_run_create(k=2, enqueue=False)
    services.training_run_claim(run_id=run.pk)
    services.training_run_execute(run_id=run.pk)
    songs = list(Song.objects.select_related("artist").order_by("id"))
    with django_assert_num_queries(1):
        content = playlists.playlist_export(title="x", songs=songs, fmt="csv")[0]
    names = {r["cluster"] for r in csv.DictReader(io.StringIO(content.decode()))}
    assert names == set(run.clusters.values_list("name", flat=True))


# --- API --------------------------------------------------------------------


def test_create_through_the_api(api, thirty_songs, users):
    alice, _ = users
    api.force_authenticate(alice)
    chosen = [thirty_songs[3].external_id, thirty_songs[1].external_id]
    response = api.post("/api/playlists/", {"name": "Evening", "songs": chosen, "is_public": True}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "Evening" and body["owner"] == "alice" and body["is_public"] is True
    assert body["source"] == "manual" and body["song_count"] == 2 and body["duration_ms"] == 2 * 215000
    assert body["songs"][1] == {
        "id": thirty_songs[1].external_id,
        "name": thirty_songs[1].name,
        "artist": SCRIPT_ARTIST,
        "duration_ms": 215000,
    }
    assert Playlist.objects.get(pk=body["id"]).owner == alice


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"songs": []}, "name: This field is required."),
        ({"name": "", "songs": []}, "name: This field may not be blank."),
        ({"name": "x", "songs": ["nope-1", "nope-2"]}, "songs: Unknown song ids: nope-1, nope-2."),
        ({"name": "x", "songs": ["a"] * 1001}, "songs: Ensure this field has no more than 1000 elements."),
        ({"name": "x", "songs": "abc"}, 'songs: Expected a list of items but got type "str".'),
        ({"name": "x", "source": "nowhere"}, 'source: "nowhere" is not a valid choice.'),
        ({"name": "x" * 201}, "name: Ensure this field has no more than 200 characters."),
    ],
)
def test_bad_writes_are_400_naming_the_field(api, thirty_songs, users, payload, message):
    api.force_authenticate(users[0])
    response = api.post("/api/playlists/", payload, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == message
    assert message.split(":")[0] in body["errors"]
    assert not Playlist.objects.exists()


def test_several_bad_fields_are_joined(api, users):
    api.force_authenticate(users[0])
    body = api.post("/api/playlists/", {"songs": "x", "is_public": "maybe"}, format="json").json()
    assert body["detail"].count("; ") == 2
    assert {"name", "songs", "is_public"} == set(body["errors"])


@pytest.fixture
def three(thirty_songs, users):
    alice, bob = users
    return (
        playlists.playlist_create(owner=alice, name="alice private", song_ids=ids(thirty_songs[:2])),
        playlists.playlist_create(owner=alice, name="alice public", song_ids=ids(thirty_songs[2:4]), is_public=True),
        playlists.playlist_create(owner=bob, name="bob private", song_ids=ids(thirty_songs[4:5])),
    )


def names(response):
    assert response.status_code == 200, response.content
    return sorted(p["name"] for p in response.json()["results"])


def test_who_sees_which_playlists(api, users, three):
    alice, bob = users
    assert names(api.get("/api/playlists/")) == ["alice public"]
    api.force_authenticate(bob)
    assert names(api.get("/api/playlists/")) == ["alice public", "bob private"]
    assert names(api.get("/api/playlists/", {"mine": "true"})) == ["bob private"]
    listed = api.get("/api/playlists/").json()["results"]
    assert "songs" not in listed[0] and {p["song_count"] for p in listed} == {1, 2}
    assert api.get(f"/api/playlists/{three[1].pk}/").json()["songs"][0]["id"] == three[1].items.first().song.external_id
    hidden = api.get(f"/api/playlists/{three[0].pk}/")
    assert hidden.status_code == 404 and set(hidden.json()) == {"detail"}
    api.force_authenticate(alice)
    assert names(api.get("/api/playlists/")) == ["alice private", "alice public"]
    assert api.get(f"/api/playlists/{three[0].pk}/").status_code == 200


def test_only_the_owner_edits(api, thirty_songs, users, three):
    alice, bob = users
    private, public, _ = three
    assert api.patch(f"/api/playlists/{public.pk}/", {"name": "x"}, format="json").status_code == 401
    api.force_authenticate(bob)
    refused = api.patch(f"/api/playlists/{public.pk}/", {"name": "mine now"}, format="json")
    assert refused.status_code == 403 and "owner" in refused.json()["detail"]
    assert api.delete(f"/api/playlists/{public.pk}/").status_code == 403
    assert api.patch(f"/api/playlists/{private.pk}/", {"name": "x"}, format="json").status_code == 404
    assert api.delete(f"/api/playlists/{private.pk}/").status_code == 404
    public.refresh_from_db()
    assert public.name == "alice public" and Playlist.objects.count() == 3

    api.force_authenticate(alice)
    kept = api.patch(f"/api/playlists/{public.pk}/", {"is_public": False}, format="json").json()
    assert kept["is_public"] is False and kept["song_count"] == 2  # songs left out: kept
    replaced = api.patch(f"/api/playlists/{public.pk}/", {"songs": ids(thirty_songs[7:10])}, format="json").json()
    assert [s["id"] for s in replaced["songs"]] == ids(thirty_songs[7:10])
    assert api.put(f"/api/playlists/{public.pk}/", {"songs": []}, format="json").status_code == 400  # PUT needs a name
    put = api.put(f"/api/playlists/{public.pk}/", {"name": "Renamed", "description": "d", "songs": []}, format="json")
    assert put.status_code == 200 and put.json()["song_count"] == 0 and put.json()["description"] == "d"
    assert api.delete(f"/api/playlists/{public.pk}/").status_code == 204
    assert not PlaylistItem.objects.filter(playlist_id=public.pk).exists()


def test_unknown_and_malformed_ids_are_404(api, users, three):
    api.force_authenticate(users[0])
    for url in (
        "/api/playlists/999999/",
        "/api/playlists/999999/export/?fmt=csv",
        "/api/playlists/shared/00000000-0000-0000-0000-000000000000/",
        "/api/playlists/shared/not-a-uuid/",
        "/api/playlists/shared/not-a-uuid/export/?fmt=m3u",
        "/api/playlists/abc/",
    ):
        response = api.get(url)
        assert response.status_code == 404, url
        assert response["Content-Type"] == "application/json" or url.endswith("abc/")


def test_share_link_opens_a_private_playlist_for_anyone(api, three):
    private = three[0]
    body = api.get(f"/api/playlists/shared/{private.share_id}/").json()
    # The share id is the owner's to give out: not in the answer for others.
    assert body["id"] == private.pk and body["song_count"] == 2 and "share_id" not in body
    exported = api.get(f"/api/playlists/shared/{private.share_id}/export/", {"fmt": "json"})
    assert exported.status_code == 200 and json.loads(exported.content)["title"] == "alice private"
    # The plain routes still hide it.
    assert api.get(f"/api/playlists/{private.pk}/").status_code == 404


@pytest.mark.parametrize(
    "fmt, content_type, ext",
    [
        ("m3u", "audio/x-mpegurl", "m3u8"),
        ("csv", "text/csv", "csv"),
        ("json", "application/json", "json"),
        ("xspf", "application/xspf+xml", "xspf"),
    ],
)
def test_export_endpoint(api, three, fmt, content_type, ext):
    public = three[1]
    response = api.get(f"/api/playlists/{public.pk}/export/", {"fmt": fmt})
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)
    assert response["Content-Disposition"] == f'attachment; filename="alice-public.{ext}"'
    first = public.items.order_by("position").first().song.external_id
    assert first in response.content.decode()
    if fmt == "m3u":
        assert f"http://testserver/songs/{first}/" in response.content.decode()


def test_export_query_errors(api, three):
    url = f"/api/playlists/{three[1].pk}/export/"
    missing = api.get(url)
    assert (
        missing.status_code == 400
        and missing.json()["detail"] == "fmt: Choose the file format with ?fmt= (m3u, csv, json, xspf)."
    )
    wrong = api.get(url, {"fmt": "pdf"}).json()["detail"]
    assert wrong == 'fmt: "pdf" is not a format; choose one of m3u, csv, json, xspf.'
    reserved = api.get(url, {"format": "csv"})
    assert reserved.status_code == 400 and "?fmt=" in reserved.json()["detail"]
    # A player's own Accept header does not get in the way.
    assert api.get(url, {"fmt": "m3u"}, HTTP_ACCEPT="audio/x-mpegurl").status_code == 200


def test_private_export_is_hidden_from_others(api, users, three):
    assert api.get(f"/api/playlists/{three[0].pk}/export/", {"fmt": "csv"}).status_code == 404
    api.force_authenticate(users[1])
    assert api.get(f"/api/playlists/{three[0].pk}/export/", {"fmt": "csv"}).status_code == 404
