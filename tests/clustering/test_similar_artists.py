"""Similar artists: GET /api/artists/{id}/similar/ and the song page's section."""

import numpy as np
import pytest
from rest_framework.test import APIClient

from clustering import artifacts, services
from songs.models import Artist, Song
from tests.conftest import html_of

pytestmark = pytest.mark.django_db


def _artist_with_songs() -> Artist:
    return Song.objects.select_related("artist").order_by("id")[7].artist


def test_similar_artists_are_the_nearest_by_their_mean_sound(api, trained_demo):
    artist = _artist_with_songs()
    body = api.get(f"/api/artists/{artist.external_id}/similar/", {"limit": 5}).json()
    assert body["artist"]["id"] == artist.external_id and body["run"] == trained_demo.pk
    related = body["related"]
    assert len(related) == 5 and artist.external_id not in {a["id"] for a in related}
    assert set(related[0]) == {"id", "name", "genres", "followers", "popularity", "similarity"}
    sims = [a["similarity"] for a in related]
    assert all(0 < s <= 1 for s in sims) and sims == sorted(sims, reverse=True)
    # The order is true to the index: the artists' mean vectors, nearest first.
    _, index = artifacts.active_index()
    means = dict(zip(index.embedding_.artist_ids_.tolist(), index.embedding_.artist_means_))
    pk = {a.external_id: a.pk for a in Artist.objects.filter(external_id__in=[a["id"] for a in related])}
    dist = [float(np.linalg.norm(means[pk[a["id"]]] - means[artist.pk])) for a in related]
    assert dist == sorted(dist)
    others = [p for p in means if p != artist.pk and p not in pk.values()]
    assert min(float(np.linalg.norm(means[p] - means[artist.pk])) for p in others) >= dist[-1] - 1e-6
    # The same answer as the Spotify-compatible related artists.
    spotify = api.get(f"/spotify/v1/artists/{artist.external_id}/related-artists")
    assert spotify.status_code == 200, spotify.content
    assert [a["id"] for a in spotify.json()["artists"]][:5] == [a["id"] for a in related]


def test_similar_artists_errors(api, trained_demo):
    assert api.get("/api/artists/no-such-artist/similar/").status_code == 404
    artist = _artist_with_songs()
    r = api.get(f"/api/artists/{artist.external_id}/similar/", {"limit": 0})
    assert r.status_code == 400 and "limit" in r.json()["errors"]


def test_similar_artists_without_a_model_is_a_503(api, demo_catalog):
    artist = Artist.objects.order_by("id").first()
    r = api.get(f"/api/artists/{artist.external_id}/similar/")
    assert r.status_code == 503 and r.json()["detail"]


def test_similar_artists_leave_out_the_listeners_blocks(trained_demo, users):
    alice = users[0]
    artist = _artist_with_songs()
    client = APIClient()
    client.force_authenticate(alice)
    url = f"/api/artists/{artist.external_id}/similar/"
    before = client.get(url, {"limit": 6}).json()["related"]
    services.blocklist_add(user=alice, kind="artist", value=before[0]["id"])
    genre = next(g for a in before[1:] for g in a["genres"] if g not in before[0]["genres"])
    services.blocklist_add(user=alice, kind="genre", value=genre)
    after = client.get(url, {"limit": 6}).json()["related"]
    assert len(after) == 6 and before[0]["id"] not in {a["id"] for a in after}
    assert not any(genre in a["genres"] for a in after)
    assert APIClient().get(url, {"limit": 6}).json()["related"] == before


def test_song_page_has_a_similar_artists_section(client, trained_demo):
    song = Song.objects.select_related("artist").order_by("id")[7]
    html = html_of(client.get(f"/songs/{song.external_id}/"))
    assert 'id="similar-artists"' in html and f'data-url="/api/artists/{song.artist.external_id}/similar/' in html
    assert f"Artists like {song.artist.name}" in html
