"""A signed-in listener's blocklist: the API, the page and song-page buttons,
and its effect on every discovery answer they get."""

import re

import pytest
from rest_framework.test import APIClient

from clustering import services
from clustering.models import BlockedItem, Cluster
from songs.models import Song
from tests.conftest import cluster_members, html_of

pytestmark = pytest.mark.django_db


def _client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def _seed() -> Song:
    return Song.objects.select_related("artist").order_by("id")[7]


def _similar(client, seed, limit=10) -> list[dict]:
    response = client.get(f"/api/songs/{seed.external_id}/similar/", {"limit": limit})
    assert response.status_code == 200, response.content
    return [r["song"] for r in response.json()["results"]]


# --- the API ---------------------------------------------------------------------------


def test_blocklist_needs_a_signed_in_user(api, demo_catalog):
    assert api.get("/api/blocklist/").status_code in (401, 403)
    assert api.post("/api/blocklist/", {"type": "genre", "id": "metal"}, format="json").status_code in (401, 403)


def test_block_list_and_unblock_over_the_api(demo_catalog, users):
    alice, bob = users
    client = _client(alice)
    song = _seed()
    r = client.post("/api/blocklist/", {"type": "song", "id": song.external_id}, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["label"] == f"{song.name} — {song.artist.name}" and r.json()["id"] == song.external_id
    assert client.post("/api/blocklist/", {"type": "song", "id": song.external_id}, format="json").status_code == 200
    # An artist by its exact name is stored by its external id; a genre in any case, folded.
    r = client.post("/api/blocklist/", {"type": "artist", "id": song.artist.name}, format="json")
    assert r.status_code == 201 and r.json()["id"] == song.artist.external_id
    assert client.post("/api/blocklist/", {"type": "genre", "id": "  Dance   POP "}, format="json").json()["id"] == (
        "dance pop"
    )
    body = client.get("/api/blocklist/").json()
    assert [i["id"] for i in body["songs"]] == [song.external_id]
    assert [i["id"] for i in body["artists"]] == [song.artist.external_id]
    assert [i["id"] for i in body["genres"]] == ["dance pop"]
    assert BlockedItem.objects.filter(user=alice).count() == 3
    # bob's list is his own.
    assert _client(bob).get("/api/blocklist/").json() == {"artists": [], "songs": [], "genres": []}
    assert _client(bob).delete(f"/api/blocklist/song/{song.external_id}/").status_code == 404
    # Unblock: by id, or an artist by name, a genre in any case; twice is a 404.
    assert client.delete(f"/api/blocklist/song/{song.external_id}/").status_code == 204
    assert client.delete(f"/api/blocklist/song/{song.external_id}/").status_code == 404
    assert client.delete(f"/api/blocklist/artist/{song.artist.name}/").status_code == 204
    assert client.delete("/api/blocklist/genre/Dance Pop/").status_code == 204
    assert client.get("/api/blocklist/").json() == {"artists": [], "songs": [], "genres": []}


def test_bad_blocks_are_refused_naming_the_problem(demo_catalog, users):
    client = _client(users[0])
    r = client.post("/api/blocklist/", {"type": "album", "id": "x"}, format="json")
    assert r.status_code == 400 and "type" in r.json()["errors"] and "album" in r.json()["detail"]
    r = client.post("/api/blocklist/", {"type": "song", "id": "no-such-song"}, format="json")
    assert r.status_code == 400 and "no-such-song" in r.json()["detail"] and "id" in r.json()["errors"]
    r = client.post("/api/blocklist/", {"type": "artist", "id": "Nobody At All"}, format="json")
    assert r.status_code == 400 and "Nobody At All" in r.json()["detail"]
    r = client.post("/api/blocklist/", {"type": "genre", "id": "rock, metal"}, format="json")
    assert r.status_code == 400 and "one genre" in r.json()["detail"]
    assert client.delete("/api/blocklist/album/x/").status_code == 400
    assert not BlockedItem.objects.exists()


def test_blocklist_size_is_bounded(demo_catalog, users, monkeypatch):
    monkeypatch.setattr(services, "BLOCKLIST_MAX", 2)
    client = _client(users[0])
    for genre in ("a", "b"):
        assert client.post("/api/blocklist/", {"type": "genre", "id": genre}, format="json").status_code == 201
    r = client.post("/api/blocklist/", {"type": "genre", "id": "c"}, format="json")
    assert r.status_code == 400 and "at most 2" in r.json()["detail"]
    assert BlockedItem.objects.count() == 2


def test_blocklist_is_in_the_schema(api, demo_catalog):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    assert {"get", "post"} <= set(schema["paths"]["/api/blocklist/"])
    assert "delete" in schema["paths"]["/api/blocklist/{kind}/{value}/"]
    assert "get" in schema["paths"]["/api/artists/{external_id}/similar/"]


# --- applied to what the listener sees -------------------------------------------------------


def test_blocked_artists_songs_and_genres_leave_similar_songs(trained_demo, users):
    alice, bob = users
    seed = _seed()
    before = _similar(_client(alice), seed, limit=20)
    other = [s for s in before if s["artist_id"] != seed.artist.external_id]
    artist, song = other[0]["artist_id"], next(s for s in other if s["artist_id"] != other[0]["artist_id"])
    genre = next(g for s in before for g in s["genres"] if g not in seed.genres)
    for kind, value in (("artist", artist), ("song", song["id"]), ("genre", genre)):
        services.blocklist_add(user=alice, kind=kind, value=value)
    after = _similar(_client(alice), seed, limit=20)
    assert len(after) == 20  # the list is filled from further down
    assert artist not in {s["artist_id"] for s in after}
    assert song["id"] not in {s["id"] for s in after}
    assert not any(genre in s["genres"] for s in after)
    # Another listener and an anonymous visitor still see them.
    assert _similar(_client(bob), seed, limit=20) == before == _similar(_client(), seed, limit=20)


def test_blocklist_applies_to_radio_recommendations_paths_and_cluster_playlists(trained_demo, users):
    alice = users[0]
    client = _client(alice)
    seed = _seed()
    songs = list(Song.objects.select_related("artist").order_by("id"))
    end = songs[-1]
    radio = client.get(f"/api/songs/{seed.external_id}/radio/", {"limit": 15}).json()["songs"]
    recs = client.get("/api/recommendations/", {"seed_songs": seed.external_id, "limit": 15}).json()["tracks"]
    path = client.get("/api/path/", {"from": seed.external_id, "to": end.external_id, "length": 8}).json()["songs"]
    cluster = Cluster.objects.get(pk=seed.cluster_id)
    playlist = client.get(f"/api/clusters/{cluster.pk}/playlist/", {"limit": 15}).json()["songs"]
    blocked = set()
    for songs_ in (radio[1:], recs, path[1:-1], playlist):
        artist = next(s["artist_id"] for s in songs_ if s["artist_id"] != seed.artist.external_id)
        blocked.add(artist)
    blocked -= {end.artist.external_id}
    for artist in blocked:
        services.blocklist_add(user=alice, kind="artist", value=artist)

    radio = client.get(f"/api/songs/{seed.external_id}/radio/", {"limit": 15}).json()["songs"]
    recs = client.get("/api/recommendations/", {"seed_songs": seed.external_id, "limit": 15}).json()["tracks"]
    path = client.get("/api/path/", {"from": seed.external_id, "to": end.external_id, "length": 8}).json()["songs"]
    playlist = client.get(f"/api/clusters/{cluster.pk}/playlist/", {"limit": 15}).json()["songs"]
    assert len(radio) == 15 and len(recs) == 15 and len(path) == 8 and len(playlist) == 15
    for songs_ in (radio[1:], recs, path[1:-1], playlist):
        assert not blocked & {s["artist_id"] for s in songs_}
    # The seed and the path's ends are the listener's own choice: still used.
    assert radio[0]["id"] == seed.external_id and (path[0]["id"], path[-1]["id"]) == (seed.external_id, end.external_id)


def test_blocked_genre_leaves_recommendations_even_when_common(trained_demo, users):
    alice = users[0]
    seed = _seed()
    genre = seed.genres[0]
    services.blocklist_add(user=alice, kind="genre", value=genre)
    tracks = _client(alice).get("/api/recommendations/", {"seed_songs": seed.external_id, "limit": 20}).json()["tracks"]
    assert tracks and not any(genre in t["genres"] for t in tracks)
    assert any(
        genre in t["genres"]
        for t in _client().get("/api/recommendations/", {"seed_songs": seed.external_id, "limit": 20}).json()["tracks"]
    )


# --- pages ------------------------------------------------------------------------------------


def test_song_page_blocks_and_unblocks_and_the_blocklist_page_lists(client, trained_demo, users):
    alice = users[0]
    seed = _seed()
    page = f"/songs/{seed.external_id}/"
    html = html_of(client.get(page))
    assert 'id="block-signin"' in html and 'id="block-controls"' not in html
    client.force_login(alice)
    html = html_of(client.get(page))
    assert 'id="block-controls"' in html and f"Block artist {seed.artist.name}" in html
    assert 'id="similar-artists"' in html and f"/api/artists/{seed.artist.external_id}/similar/" in html
    r = client.post("/blocklist/", {"action": "block", "type": "artist", "id": seed.artist.external_id, "next": page})
    assert r.status_code == 302 and r["Location"] == page
    assert services.BlockedItem.objects.filter(user=alice, kind="artist", value=seed.artist.external_id).exists()
    html = html_of(client.get(page))
    assert f"Unblock artist {seed.artist.name}" in html
    listing = html_of(client.get("/blocklist/"))
    assert seed.artist.name in listing and 'id="blocked-artists"' in listing
    # An address of another site is not followed back.
    r = client.post(
        "/blocklist/",
        {"action": "unblock", "type": "artist", "id": seed.artist.external_id, "next": "https://evil.example/"},
    )
    assert r.status_code == 302 and r["Location"] == "/blocklist/"
    assert not services.BlockedItem.objects.filter(user=alice).exists()
    # A bad block comes back as a message, nothing stored.
    r = client.post("/blocklist/", {"action": "block", "type": "song", "id": "nope"}, follow=True)
    assert "No song with id" in r.content.decode() and not services.BlockedItem.objects.exists()


def test_blocklist_page_needs_sign_in(client, demo_catalog):
    r = client.get("/blocklist/")
    assert r.status_code == 302 and "/accounts/login/" in r["Location"]


def test_cluster_page_leaves_out_blocked_artists_and_songs(client, trained_demo, users):
    alice = users[0]
    seed = _seed()
    cluster = Cluster.objects.get(pk=seed.cluster_id)
    url = f"/clusters/{cluster.pk}/"
    artist_song = cluster_members(cluster).exclude(artist=seed.artist).order_by("id").first()
    html = html_of(client.get(url))
    assert seed.external_id in html and artist_song.external_id in html
    client.force_login(alice)
    services.blocklist_add(user=alice, kind="song", value=seed.external_id)
    services.blocklist_add(user=alice, kind="artist", value=artist_song.artist.external_id)
    for query in ("", "?sort=energy", "?q=" + artist_song.name[:3]):
        html = html_of(client.get(url + query))
        assert seed.external_id not in html and artist_song.external_id not in html
        assert "/songs/" in html  # still lists the other songs


def test_cluster_page_leaves_out_songs_of_blocked_genres(client, trained_demo, users):
    alice = users[0]
    cluster = Cluster.objects.filter(run=trained_demo).order_by("-size").first()
    members = list(cluster_members(cluster).order_by("id"))
    counts: dict[str, int] = {}
    for song in members:
        for genre in song.genres:
            counts[genre] = counts.get(genre, 0) + 1
    # A genre some of the cluster's songs carry and most do not.
    genre = max((g for g, n in counts.items() if n < len(members) / 2), key=counts.get)
    carriers = {s.external_id for s in members if genre in s.genres}
    url = f"/clusters/{cluster.pk}/"
    song_href = re.compile(r'href="/songs/([^"/]+)/"')
    assert carriers & set(song_href.findall(html_of(client.get(url + "?sort=energy&dir=desc"))))
    client.force_login(alice)
    services.blocklist_add(user=alice, kind="genre", value=genre.upper())  # stored normalised
    plain = next(s for s in members if genre not in s.genres)
    for query in ("", "?sort=energy&dir=desc", "?sort=name", "?q=" + plain.name[:3]):
        shown = set(song_href.findall(html_of(client.get(url + query))))
        assert shown, query  # the other songs are still listed
        assert not shown & carriers, (query, shown & carriers)
