"""The playlist pages (clustering/views/playlists.py) through Django's test
client: the list, a playlist's page, owner-only edit and delete, the share
link; status, empty states, escaping and the queries they make."""

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clustering import playlists
from clustering.models import Playlist
from tests.conftest import SCRIPT_TITLE_ESCAPED, html_of, some_songs, xss_song
from tests.conftest import assert_title_and_artist_escaped as assert_escaped

pytestmark = pytest.mark.django_db

XSS_ESCAPED = SCRIPT_TITLE_ESCAPED


@pytest.fixture
def lists(trained_demo_with_script_song, users):
    """alice: a private playlist with the script song, a public one; bob: a public one."""
    alice, bob = users
    songs = some_songs(3)
    private = playlists.playlist_create(
        owner=alice,
        name="Alice's secret",
        source="radio",
        song_ids=[xss_song().external_id] + [s.external_id for s in songs],
    )
    public = playlists.playlist_create(
        owner=alice,
        name="Alice <i>public</i>",
        is_public=True,
        description="Line one\nline <two>",
        song_ids=[s.external_id for s in songs],
    )
    bobs = playlists.playlist_create(
        owner=bob, name="Bob's mix", is_public=True, source="recommendations", song_ids=[songs[0].external_id]
    )
    return {"private": private, "public": public, "bob": bobs}


def test_playlists_page_lists_public_ones_and_your_own(client, lists, users):
    html = html_of(client.get("/playlists/"))
    assert "Alice &lt;i&gt;public&lt;/i&gt;" in html and "Bob&#x27;s mix" in html
    assert "Alice&#x27;s secret" not in html and 'id="mine-table"' not in html
    client.force_login(users[0])
    html = html_of(client.get("/playlists/"))
    mine = re.search(r'<table class="songs playlists-table" id="mine-table">.*?</table>', html, re.DOTALL).group(0)
    assert "Alice&#x27;s secret" in mine and "private" in mine and "Bob" not in mine
    assert re.search(r'<td class="num">4</td>\s*<td>radio</td>', mine)
    public = re.search(r'id="public-table">.*?</table>', html, re.DOTALL).group(0)
    assert "Bob&#x27;s mix" in public and "secret" not in public and "<td>bob</td>" in public
    client.force_login(users[1])
    assert "Alice&#x27;s secret" not in html_of(client.get("/playlists/"))


def test_empty_playlists_page_for_a_signed_in_user(client, trained_demo_with_script_song, users):
    client.force_login(users[0])
    html = html_of(client.get("/playlists/"))
    assert 'id="empty-mine"' in html and 'id="empty-public"' in html and 'id="new-playlist-form"' in html


def test_new_empty_playlist(client, trained_demo_with_script_song, users):
    response = client.post("/playlists/", {"name": "Nope"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")
    assert not Playlist.objects.exists()
    client.force_login(users[0])
    response = client.post("/playlists/", {"name": "   "})
    assert response.status_code == 400 and "A playlist needs a name." in response.content.decode()
    response = client.post("/playlists/", {"name": "Fresh", "is_public": "on"})
    playlist = Playlist.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/playlists/{playlist.pk}/"
    assert playlist.owner == users[0] and playlist.is_public and playlist.source == "manual"
    html = html_of(client.get(response["Location"]))
    assert "Created “Fresh”" in html and 'id="empty-playlist"' in html and 'id="edit-form"' in html


def test_playlist_page_songs_exports_and_share_link(client, lists, users):
    public = lists["public"]
    html = html_of(client.get(f"/playlists/{public.pk}/"))
    assert '<h1 id="playlist-name">Alice &lt;i&gt;public&lt;/i&gt;</h1>' in html
    assert "Line one<br>line &lt;two&gt;" in html
    assert html.count("<tr data-id=") == 3
    for fmt in ("m3u", "csv", "json", "xspf"):
        assert f'href="/api/playlists/{public.pk}/export/?fmt={fmt}" download' in html, fmt
    # Visitors: no edit form, no share box, no editing script.
    assert 'id="edit-form"' not in html and 'id="share-url"' not in html and "js/playlist.js" not in html
    # The export link answers with the file.
    m3u = client.get(f"/api/playlists/{public.pk}/export/?fmt=m3u").content.decode()
    assert m3u.startswith("#EXTM3U") and m3u.count("#EXTINF") == 3
    # The owner edits and shares.
    client.force_login(users[0])
    html = html_of(client.get(f"/playlists/{public.pk}/"))
    assert 'id="edit-form"' in html and "js/playlist.js" in html and "js/site.js" in html
    assert f'value="http://testserver/playlists/shared/{public.share_id}/"' in html
    assert f'href="/playlists/{public.pk}/delete/"' in html
    assert ">Name</label>" in html and ">Description</label>" in html and ">Add a song</label>" in html


def test_private_playlists_are_hidden_but_open_by_share_link(client, lists, users):
    private = lists["private"]
    assert client.get(f"/playlists/{private.pk}/").status_code == 404
    client.force_login(users[1])
    assert client.get(f"/playlists/{private.pk}/").status_code == 404
    client.logout()
    html = html_of(client.get(f"/playlists/shared/{private.share_id}/"))
    assert "Shared playlist" in html and "A private playlist, shown to you through its share link." in html
    assert html.count("<tr data-id=") == 4
    for fmt in ("m3u", "csv", "json", "xspf"):
        assert f'href="/api/playlists/shared/{private.share_id}/export/?fmt={fmt}"' in html
    assert 'id="edit-form"' not in html
    assert_escaped(html)
    # Its owner, through the share link, is pointed to the page that edits it.
    client.force_login(users[0])
    html = html_of(client.get(f"/playlists/shared/{private.share_id}/"))
    assert f'href="/playlists/{private.pk}/">edit it on its own page' in html and 'id="edit-form"' not in html


def test_owner_edits_name_description_flag_and_songs(client, lists, users):
    private = lists["private"]
    before = [s.external_id for s in playlists.playlist_songs(playlist=private)]
    extra = some_songs(6)[5]
    client.force_login(users[0])
    html = html_of(client.get(f"/playlists/{private.pk}/"))
    hidden = re.search(r'<input type="hidden" name="songs" id="edit-songs-json" value="([^"]*)">', html).group(1)
    assert json.loads(hidden.replace("&quot;", '"')) == before
    # Reorder (last first), remove the script song, add another one.
    new_order = [before[3], before[1], before[2], extra.external_id]
    response = client.post(
        f"/playlists/{private.pk}/",
        {
            "name": "Renamed",
            "description": "Now with words",
            "is_public": "on",
            "songs": json.dumps(new_order),
        },
    )
    assert response.status_code == 302 and response["Location"] == f"/playlists/{private.pk}/"
    private.refresh_from_db()
    assert (private.name, private.description, private.is_public) == ("Renamed", "Now with words", True)
    assert [s.external_id for s in playlists.playlist_songs(playlist=private)] == new_order
    assert "Changes saved." in html_of(client.get(response["Location"]))
    # Without a song list the songs stay; an unticked box makes it private again.
    response = client.post(f"/playlists/{private.pk}/", {"name": "Renamed again", "description": ""})
    private.refresh_from_db()
    assert private.name == "Renamed again" and not private.is_public
    assert [s.external_id for s in playlists.playlist_songs(playlist=private)] == new_order
    # An empty list empties it.
    client.post(f"/playlists/{private.pk}/", {"name": "Empty", "songs": "[]"})
    assert playlists.playlist_songs(playlist=private) == []


def test_bad_edits_are_refused_whole_with_the_reason(client, lists, users):
    public = lists["public"]
    before = [s.external_id for s in playlists.playlist_songs(playlist=public)]
    client.force_login(users[0])
    for data, message in (
        ({"name": "X", "songs": json.dumps(["nope", before[0]])}, "Unknown song ids: nope."),
        ({"name": "  ", "songs": json.dumps(before)}, "A playlist needs a name."),
        ({"name": "X", "songs": "{not json"}, "The song list of the form is not valid"),
        ({"name": "X", "songs": json.dumps([1, 2])}, "The song list of the form is not valid"),
        ({"name": "X", "description": "d" * 5001}, "at most 5,000 characters"),
    ):
        response = client.post(f"/playlists/{public.pk}/", {"is_public": "on", **data})
        html = response.content.decode()
        assert response.status_code == 400 and message in html, (data, html[:300])
        assert '<details id="edit" open>' in html and 'id="edit-error"' in html
        public.refresh_from_db()
        assert public.name == "Alice <i>public</i>"
        assert [s.external_id for s in playlists.playlist_songs(playlist=public)] == before


def test_only_the_owner_edits_or_deletes(client, lists, users):
    public, private = lists["public"], lists["private"]
    payload = {"name": "Hijacked", "songs": "[]"}
    # Anonymous and another user: 403 on a playlist they can see, 404 on one they cannot.
    for who in (None, users[1]):
        if who:
            client.force_login(who)
        assert client.post(f"/playlists/{public.pk}/", payload).status_code == 403
        assert client.post(f"/playlists/{private.pk}/", payload).status_code == 404
        assert client.get(f"/playlists/{public.pk}/delete/").status_code == 403
        assert client.post(f"/playlists/{public.pk}/delete/").status_code == 403
        assert client.post(f"/playlists/{private.pk}/delete/").status_code == 404
    public.refresh_from_db()
    assert public.name == "Alice <i>public</i>" and len(playlists.playlist_songs(playlist=public)) == 3
    assert Playlist.objects.count() == 3
    # The owner: asked first, then it is gone.
    client.force_login(users[0])
    html = html_of(client.get(f"/playlists/{public.pk}/delete/"))
    assert "Delete “Alice &lt;i&gt;public&lt;/i&gt;”?" in html and "3 songs" in html
    response = client.post(f"/playlists/{public.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/playlists/"
    assert not Playlist.objects.filter(pk=public.pk).exists()
    assert "Deleted “Alice &lt;i&gt;public&lt;/i&gt;”." in html_of(client.get("/playlists/"))


def test_playlist_page_queries_do_not_grow_with_its_songs(client, trained_demo_with_script_song, users):
    alice = users[0]
    client.force_login(alice)
    small = playlists.playlist_create(owner=alice, name="Small", song_ids=[s.external_id for s in some_songs(2)])
    big = playlists.playlist_create(owner=alice, name="Big", song_ids=[s.external_id for s in some_songs(60)])
    counts = []
    for playlist in (small, big):
        with CaptureQueriesContext(connection) as ctx:
            html_of(client.get(f"/playlists/{playlist.pk}/"))
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1] and counts[1] <= 12, counts


def test_playlist_with_the_script_song_is_escaped_everywhere(client, lists, users):
    private = lists["private"]
    client.force_login(users[0])
    html = html_of(client.get(f"/playlists/{private.pk}/"))
    assert_escaped(html)
    # The table, the editor's label and its three button labels (up, down, remove).
    assert html.count(XSS_ESCAPED) == 5
    assert "Mallory &lt;b&gt;&amp;&lt;/b&gt; Co" in html
