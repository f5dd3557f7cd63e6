"""Share links: shown to the playlist's owner only, and replaceable by the owner."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from clustering import playlists
from songs.models import Song
from songs.services import songs_import_file
from tests.conftest import flagship_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(catalog_csv):
    assert songs_import_file(path=catalog_csv(flagship_rows(6))).status == "succeeded"
    User = get_user_model()
    alice, bob = User.objects.create_user("alice"), User.objects.create_user("bob")
    song_ids = list(Song.objects.order_by("id").values_list("external_id", flat=True)[:3])
    public = playlists.playlist_create(owner=alice, name="open mix", song_ids=song_ids, is_public=True)
    private = playlists.playlist_create(owner=alice, name="closed mix", song_ids=song_ids)
    return alice, bob, public, private


def test_api_shows_share_id_to_the_owner_only(setup):
    alice, bob, public, private = setup
    api = APIClient()
    for client_user in (None, bob):
        api.force_authenticate(client_user)
        listed = api.get("/api/playlists/").json()["results"]
        assert listed and all("share_id" not in p for p in listed)
        assert "share_id" not in api.get(f"/api/playlists/{public.pk}/").json()
        assert "share_id" not in api.get(f"/api/playlists/shared/{private.share_id}/").json()
    api.force_authenticate(alice)
    assert api.get(f"/api/playlists/{public.pk}/").json()["share_id"] == str(public.share_id)
    mine = api.get("/api/playlists/", {"mine": "1"}).json()["results"]
    assert {p["share_id"] for p in mine} == {str(public.share_id), str(private.share_id)}


def test_pages_show_the_share_link_to_the_owner_only(client, setup):
    alice, bob, public, private = setup
    for user in (None, bob):
        if user:
            client.force_login(user)
        for url in ("/playlists/", f"/playlists/{public.pk}/"):
            html = client.get(url).content.decode()
            assert str(public.share_id) not in html and "share-rotate" not in html, url
        html = client.get(f"/playlists/shared/{private.share_id}/").content.decode()
        assert "share-rotate" not in html and 'id="share-url"' not in html
    client.force_login(alice)
    html = client.get(f"/playlists/{public.pk}/").content.decode()
    assert f"/playlists/shared/{public.share_id}/" in html and 'id="share-rotate"' in html


def test_owner_rotates_the_share_link_over_the_api(setup):
    alice, bob, public, private = setup
    old = private.share_id
    api = APIClient()
    assert api.post(f"/api/playlists/{public.pk}/share/rotate/").status_code in (401, 403)
    api.force_authenticate(bob)
    assert api.post(f"/api/playlists/{public.pk}/share/rotate/").status_code == 403
    assert api.post(f"/api/playlists/{private.pk}/share/rotate/").status_code == 404
    api.force_authenticate(alice)
    response = api.post(f"/api/playlists/{private.pk}/share/rotate/")
    assert response.status_code == 200
    private.refresh_from_db()
    assert private.share_id != old and response.json()["share_id"] == str(private.share_id)
    assert response.json()["share_url"] == f"http://testserver/playlists/shared/{private.share_id}/"
    anonymous = APIClient()
    assert anonymous.get(f"/api/playlists/shared/{old}/").status_code == 404
    assert anonymous.get(f"/api/playlists/shared/{old}/export/", {"fmt": "m3u"}).status_code == 404
    assert anonymous.get(f"/api/playlists/shared/{private.share_id}/").status_code == 200


def test_owner_rotates_the_share_link_on_the_page(client, setup):
    alice, bob, public, private = setup
    old = private.share_id
    client.force_login(bob)
    assert client.post(f"/playlists/{public.pk}/share/rotate/").status_code == 403
    assert client.get(f"/playlists/{public.pk}/share/rotate/").status_code == 405
    client.force_login(alice)
    response = client.post(f"/playlists/{private.pk}/share/rotate/")
    assert response.status_code == 302 and response["Location"] == f"/playlists/{private.pk}/"
    private.refresh_from_db()
    assert private.share_id != old
    # The message shows on the next page the owner opens (the site's pages, its 404 too, show pending messages).
    html = client.get(response["Location"]).content.decode()
    assert f"/playlists/shared/{private.share_id}/" in html and "old link no longer opens" in html
    assert client.get(f"/playlists/shared/{old}/").status_code == 404
