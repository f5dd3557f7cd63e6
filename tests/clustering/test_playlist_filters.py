"""Saved generated playlists keep the API's discovery filters and artist
caps (genres, exclude_*, max_per_artist); making them again applies them
joined with the owner's blocklist, like the API does."""

import pytest
from rest_framework.test import APIClient

from clustering import playlists, services
from clustering.playlists import PlaylistError
from songs.models import Song

pytestmark = pytest.mark.django_db


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_params_take_the_filters_and_the_artist_cap():
    out = playlists.generator_params_clean(
        source="radio",
        params={"song": "s1", "exclude_artists": "a1, a2", "genres": ["pop"], "max_per_artist": 2},
    )
    assert out["exclude_artists"] == ["a1", "a2"]
    assert out["genres"] == ["pop"]
    assert out["max_per_artist"] == 2
    assert "exclude_songs" not in out  # not given: not stored


def test_params_refuse_too_many_filter_items():
    with pytest.raises(PlaylistError, match=r"params\.exclude_songs has 101 items; at most 100"):
        playlists.generator_params_clean(
            source="path", params={"from": "a", "to": "b", "exclude_songs": [f"s{i}" for i in range(101)]}
        )


def test_regenerated_radio_keeps_saved_excludes_and_applies_the_blocklist(trained_demo, users):
    alice = users[0]
    client = _client(alice)
    song = Song.objects.select_related("artist").order_by("id")[7]
    url = f"/api/songs/{song.external_id}/radio/"
    plain = client.get(url, {"limit": 12}).json()["songs"]
    excluded, blocked = plain[1]["artist_id"], plain[2]["artist_id"]
    params = {"song": song.external_id, "limit": 12, "exclude_artists": [excluded]}
    r = client.post(
        "/api/playlists/",
        {"name": "Filtered radio", "source": "radio", "params": params, "songs": [s["id"] for s in plain[:3]]},
        format="json",
    )
    assert r.status_code == 201, r.content
    assert r.json()["params"] == {**params, "variety": 0.0}
    services.blocklist_add(user=alice, kind="artist", value=blocked)
    again = client.post(f"/api/playlists/{r.json()['id']}/regenerate/")
    assert again.status_code == 200, again.content
    ids = [s["id"] for s in again.json()["songs"]]
    artists = set(Song.objects.filter(external_id__in=ids).values_list("artist__external_id", flat=True))
    assert len(ids) == 12
    assert excluded not in artists and blocked not in artists
    # The same list the API gives for the same filters with the same blocklist.
    expected = client.get(url, {"limit": 12, "exclude_artists": excluded}).json()["songs"]
    assert ids == [s["id"] for s in expected]
