"""Any id already stored (even one the importer now refuses) gives working pages and links."""

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from clustering import artifacts, playlists
from songs.models import Song
from songs.services import songs_import_file
from tests.conftest import active_labels, train_run

pytestmark = pytest.mark.django_db

DEMO = settings.BASE_DIR / "fixtures" / "demo_catalog.csv"
ODD = {"a/b": "a%2Fb", "../x": "..%2Fx", "q?#%": "q%3F%23%25"}


@pytest.fixture
def odd_songs(tmp_path, settings):
    settings.MODEL_DIR = tmp_path / "models"
    artifacts.cache_clear()
    assert songs_import_file(path=DEMO).status == "succeeded"
    run = train_run(k=4)
    assert run.is_active and run.index_path
    songs = []
    for n, (external_id, _) in enumerate(ODD.items()):
        song = Song.objects.filter(pk__in=list(active_labels())).order_by("id")[n]
        # Straight through the ORM, as an older import could have stored it.
        Song.objects.filter(pk=song.pk).update(external_id=external_id, name=f"Zzodd song {n}")
        song.refresh_from_db()
        songs.append(song)
    return songs


def html_of(response) -> str:
    assert response.status_code == 200, response.content[:300]
    return response.content.decode()


def test_pages_with_odd_ids_answer_and_link_percent_encoded(client, odd_songs):
    html = html_of(client.get("/search/", {"q": "Zzodd song"}))
    for encoded in ODD.values():
        assert f'href="/songs/{encoded}/"' in html
    for song in odd_songs:
        encoded = ODD[song.external_id]
        html = html_of(client.get(f"/clusters/{song.cluster_id}/", {"q": song.name}))
        assert f'href="/songs/{encoded}/"' in html
        html = html_of(client.get(f"/songs/{encoded}/"))
        assert song.name in html and f'href="/playlists/radio/{encoded}/"' in html
        html = html_of(client.get(f"/playlists/radio/{encoded}/"))
        assert f'href="/songs/{encoded}/"' in html
    owner = get_user_model().objects.create_user("olive", password="pw-123456789")
    playlist = playlists.playlist_create(
        owner=owner, name="odd", is_public=True, song_ids=[s.external_id for s in odd_songs]
    )
    html = html_of(client.get(f"/playlists/{playlist.pk}/"))
    for encoded in ODD.values():
        assert f'href="/songs/{encoded}/"' in html


def test_api_answers_for_odd_ids(odd_songs):
    api = APIClient()
    for song in odd_songs:
        encoded = ODD[song.external_id]
        response = api.get(f"/api/songs/{encoded}/")
        assert response.status_code == 200 and response.json()["id"] == song.external_id
        assert api.get(f"/api/songs/{encoded}/similar/").status_code == 200
        assert api.get(f"/api/songs/{encoded}/radio/").status_code == 200
    assert api.get("/api/songs/no%2Fsuch/").status_code == 404
