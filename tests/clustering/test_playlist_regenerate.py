"""Generated playlists saved with their parameters, made again on the current catalog."""

import pytest
from rest_framework.test import APIClient

from clustering import services
from clustering.models import Cluster, Playlist
from songs.models import Song
from tests.conftest import html_of, song_twin, train_run

pytestmark = pytest.mark.django_db


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _seed() -> Song:
    return Song.objects.select_related("artist").order_by("id")[7]


def _save(client, *, source, params, songs, name="Made by a generator") -> dict:
    r = client.post(
        "/api/playlists/", {"name": name, "source": source, "params": params, "songs": songs}, format="json"
    )
    assert r.status_code == 201, r.content
    return r.json()


def _regenerate(client, playlist_id) -> dict:
    r = client.post(f"/api/playlists/{playlist_id}/regenerate/")
    assert r.status_code == 200, r.content
    return r.json()


def _ids(body) -> list[str]:
    return [s["id"] for s in body["songs"]]


def test_radio_playlist_is_made_again_with_its_seed(trained_demo, users):
    client = _client(users[0])
    song = _seed()
    radio = client.get(f"/api/songs/{song.external_id}/radio/", {"limit": 12, "variety": 0.6, "seed": 5}).json()
    ids = [s["id"] for s in radio["songs"]]
    params = {"song": song.external_id, "limit": 12, "variety": 0.6, "seed": 5}
    saved = _save(client, source="radio", params=params, songs=ids[:3], name="My radio")
    assert saved["params"] == params and saved["regenerated_at"] is None
    again = _regenerate(client, saved["id"])
    # The same generator on the same catalog and model: the radio's own songs, the name kept.
    assert _ids(again) == ids and again["name"] == "My radio" and again["regenerated_at"]
    assert again["share_id"] == saved["share_id"]


def test_recommendations_path_and_cluster_playlists_follow_the_catalog(trained_demo, users):
    alice = users[0]
    client = _client(alice)
    song, end = _seed(), Song.objects.order_by("-id").first()
    cluster = Cluster.objects.get(pk=song.cluster_id)
    cases = {
        "recommendations": (
            {"seed_songs": song.external_id, "limit": 10, "min_energy": 0.2, "target_valence": 0.5},
            client.get(
                "/api/recommendations/",
                {"seed_songs": song.external_id, "limit": 10, "min_energy": 0.2, "target_valence": 0.5},
            ).json()["tracks"],
        ),
        "path": (
            {"from": song.external_id, "to": end.external_id, "length": 7},
            client.get("/api/path/", {"from": song.external_id, "to": end.external_id, "length": 7}).json()["songs"],
        ),
        "cluster": (
            {"cluster": cluster.pk, "limit": 10},
            client.get(f"/api/clusters/{cluster.pk}/playlist/", {"limit": 10}).json()["songs"],
        ),
    }
    saved = {}
    for source, (params, songs) in cases.items():
        assert len(songs) >= 7
        saved[source] = _save(client, source=source, params=params, songs=[])
        assert _ids(_regenerate(client, saved[source]["id"])) == [s["id"] for s in songs]
    assert saved["recommendations"]["params"]["seed_songs"] == [song.external_id]
    # The listener's blocklist applies when a playlist is made again.
    blocked = next(s for s in cases["cluster"][1] if s["artist_id"] != song.artist.external_id)["artist_id"]
    services.blocklist_add(user=alice, kind="artist", value=blocked)
    for source in ("recommendations", "cluster"):
        body = _regenerate(client, saved[source]["id"])
        assert blocked not in {Song.objects.get(external_id=i).artist.external_id for i in _ids(body)}
        assert len(body["songs"]) == 10


def test_a_cluster_playlist_follows_its_lineage_after_a_retrain(trained_demo, users):
    client = _client(users[0])
    cluster = Cluster.objects.filter(run=trained_demo).order_by("label").first()
    saved = _save(client, source="cluster", params={"cluster": cluster.pk, "limit": 8}, songs=[])
    run = train_run(k=4)
    assert run.pk != trained_demo.pk and run.is_active
    # The same catalog and k: every cluster has its successor (clustering.ml.identity).
    heir = Cluster.objects.get(run=run, lineage=cluster.lineage)
    body = _regenerate(client, saved["id"])
    ids = _ids(body)
    assert len(ids) == 8 and all(Song.objects.get(external_id=i).cluster_id == heir.pk for i in ids)
    # A cluster whose line ends says so.
    Cluster.objects.filter(pk=heir.pk).update(lineage=None)
    r = client.post(f"/api/playlists/{saved['id']}/regenerate/")
    assert r.status_code == 400 and "no successor" in r.json()["detail"]


def test_bad_parameters_are_refused_naming_them(trained_demo, users):
    client = _client(users[0])
    song = _seed()

    def refused(source, params, text):
        r = client.post(
            "/api/playlists/", {"name": "x", "source": source, "params": params, "songs": []}, format="json"
        )
        assert r.status_code == 400 and "params" in r.json()["errors"] and text in r.json()["detail"], r.content

    refused("manual", {"song": song.external_id}, "Only generated playlists")
    refused("radio", {"limit": 5}, "params.song is required")
    refused("radio", {"song": song.external_id, "variety": 3}, "params.variety must be from 0 to 1")
    refused("radio", {"song": song.external_id, "colour": "blue"}, "Unknown parameter(s) for a radio playlist: colour")
    refused("path", {"from": song.external_id, "to": song.external_id, "length": 2.5}, "params.length")
    refused("recommendations", {"limit": 5}, "Give 1 to 5 seeds")
    refused("recommendations", {"seed_songs": [song.external_id], "min_energy": 0.9, "max_energy": 0.1}, "min_energy")
    refused("cluster", {"cluster": "first"}, "params.cluster must be a number")
    assert not Playlist.objects.exists()


def test_what_cannot_be_made_again_says_why(trained_demo, users):
    alice, bob = users
    client = _client(alice)
    song = _seed()
    manual = _save(client, source="manual", params={}, songs=[song.external_id])
    r = client.post(f"/api/playlists/{manual['id']}/regenerate/")
    assert r.status_code == 400 and "Only a generated playlist" in r.json()["detail"]
    twin = song_twin(song, "gone-soon", name="A song that leaves")
    saved = _save(client, source="radio", params={"song": twin.external_id}, songs=[song.external_id])
    twin.delete()
    r = client.post(f"/api/playlists/{saved['id']}/regenerate/")
    assert (
        r.status_code == 400 and "gone-soon" in r.json()["detail"] and "no longer in the catalog" in r.json()["detail"]
    )
    assert [s["id"] for s in client.get(f"/api/playlists/{saved['id']}/").json()["songs"]] == [song.external_id]
    # Only the owner makes it again.
    _save(client, source="radio", params={"song": song.external_id}, songs=[], name="public")
    public = Playlist.objects.get(name="public")
    public.is_public = True
    public.save()
    assert _client(bob).post(f"/api/playlists/{public.pk}/regenerate/").status_code == 403
    assert APIClient().post(f"/api/playlists/{public.pk}/regenerate/").status_code in (401, 403)


def test_changing_the_source_forgets_other_parameters(trained_demo, users):
    client = _client(users[0])
    song = _seed()
    saved = _save(client, source="radio", params={"song": song.external_id}, songs=[])
    r = client.patch(f"/api/playlists/{saved['id']}/", {"source": "manual"}, format="json")
    assert r.status_code == 200 and r.json()["params"] == {}
    r = client.patch(
        f"/api/playlists/{saved['id']}/", {"source": "radio", "params": {"song": song.external_id}}, format="json"
    )
    assert r.json()["params"] == {"song": song.external_id, "limit": 25, "variety": 0.0}


def test_playlist_page_button_makes_it_again(client, trained_demo, users):
    alice, bob = users
    song = _seed()
    saved = _save(_client(alice), source="radio", params={"song": song.external_id, "limit": 6}, songs=[])
    url = f"/playlists/{saved['id']}/"
    client.force_login(alice)
    html = html_of(client.get(url))
    assert 'id="regenerate-form"' in html and f"/playlists/{saved['id']}/regenerate/" in html
    r = client.post(f"/playlists/{saved['id']}/regenerate/", follow=True)
    assert "Made again on the current catalog: 6 songs." in r.content.decode()
    assert Playlist.objects.get(pk=saved["id"]).items.count() == 6
    manual = _save(_client(alice), source="manual", params={}, songs=[song.external_id])
    assert 'id="regenerate-form"' not in html_of(client.get(f"/playlists/{manual['id']}/"))
    client.force_login(bob)
    assert client.post(f"/playlists/{saved['id']}/regenerate/").status_code in (403, 404)
