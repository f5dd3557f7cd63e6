"""The phase-2 pages through Django's test client: recommendations, paths,
playlists (list, view, owner-only edit and delete, share link), a song's
radio, sign-in; status, empty states and escaping."""
import json
import re

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clustering import playlists, services
from clustering.models import Playlist, TrainingRun
from songs.models import Song
from tests.conftest import SCRIPT_ARTIST, SCRIPT_TITLE

pytestmark = pytest.mark.django_db

XSS = SCRIPT_TITLE
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
XSS_ARTIST = SCRIPT_ARTIST
PASSWORD = "pw-123456789"
NEW_PAGES = ["/recommend/", "/path/", "/playlists/", "/accounts/login/"]


@pytest.fixture
def users():
    User = get_user_model()
    return User.objects.create_user("alice", password=PASSWORD), User.objects.create_user("bob", password=PASSWORD)


def xss_song() -> Song:
    return Song.objects.select_related("artist").get(name=XSS)


def some_songs(n: int) -> list[Song]:
    return list(Song.objects.exclude(name=XSS).select_related("artist").order_by("id")[:n])


def html_of(response) -> str:
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def page_data(html: str) -> dict:
    match = re.search(r'<script id="page-data" type="application/json">(.*?)</script>', html, re.DOTALL)
    assert match, "page has no page-data"
    return json.loads(match.group(1))


def assert_escaped(html: str) -> None:
    assert XSS not in html
    assert XSS_ESCAPED in html or "\\u003Cscript\\u003E" in html
    assert "<b>&</b>" not in html


# --- empty states and sign-in ----------------------------------------------------------


def test_new_pages_answer_on_an_empty_site(client):
    for url in NEW_PAGES:
        assert client.get(url).status_code == 200, url
    for url, heading in (("/recommend/", "<h1>Recommendations</h1>"), ("/path/", "<h1>Path between two songs</h1>")):
        html = html_of(client.get(url))
        assert heading in html, url
        assert "No model yet" in html and 'id="empty-model"' in html, url
        assert "import_songs" in html  # the catalog is empty too: the page says what to do first
        assert "<form id=" not in html and "js/recommend.js" not in html and "js/path.js" not in html
    html = html_of(client.get("/playlists/"))
    assert "<h1>Playlists</h1>" in html
    assert 'id="empty-public"' in html and "No public playlists yet" in html
    assert 'id="signin-hint"' in html and 'id="mine-h"' not in html
    assert client.get("/playlists/1/").status_code == 404
    assert client.get("/playlists/shared/4f1c1b5e-1111-4222-8333-944455556666/").status_code == 404
    assert client.get("/playlists/shared/not-a-uuid/").status_code == 404
    assert client.get("/playlists/radio/nope/").status_code == 404


def test_pages_without_a_model_but_with_songs(client, demo_catalog_with_script_song):
    song = xss_song()
    for url in ("/recommend/", "/path/", f"/playlists/radio/{song.external_id}/"):
        html = html_of(client.get(url))
        assert "No model yet" in html and "manage.py train" in html, url
        assert "import_songs" not in html
    # The radio page still names its song (escaped), but offers no export that would answer 503.
    html = html_of(client.get(f"/playlists/radio/{song.external_id}/"))
    assert_escaped(html)
    assert "fmt=m3u" not in html


def test_a_model_without_a_similarity_index_is_explained(client, trained_demo_with_script_song):
    TrainingRun.objects.filter(pk=trained_demo_with_script_song.pk).update(index_path="")
    song = xss_song()
    for url in ("/recommend/", "/path/", f"/playlists/radio/{song.external_id}/"):
        html = html_of(client.get(url))
        assert 'id="no-index"' in html and f"run #{trained_demo_with_script_song.pk}" in html, url


def test_login_page_says_there_is_no_registration_and_signs_in(client, users):
    html = html_of(client.get("/accounts/login/"))
    assert "no self-registration" in html and 'autocomplete="current-password"' in html
    assert '<label for="id_username">Username</label>' in html and '<label for="id_password">Password</label>' in html
    response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200 and 'id="login-error"' in response.content.decode()
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == settings.LOGIN_REDIRECT_URL == "/playlists/"
    response = client.post("/accounts/login/?next=/path/", {"username": "alice", "password": PASSWORD, "next": "/path/"})
    assert response["Location"] == "/path/"


def test_nav_shows_sign_in_or_the_user_with_a_sign_out_form(client, users):
    html = html_of(client.get("/playlists/"))
    assert 'href="/accounts/login/?next=/playlists/"' in html and "Sign out" not in html
    client.force_login(users[0])
    html = html_of(client.get("/recommend/"))
    assert '<span class="account-name" title="Signed in">alice</span>' in html
    form = re.search(r'<form method="post" action="/accounts/logout/".*?</form>', html, re.DOTALL).group(0)
    assert "csrfmiddlewaretoken" in form and "Sign out" in form
    # The nav keeps its nine links; the account area is beside it.
    nav = re.search(r'<nav aria-label="Main">.*?</nav>', html, re.DOTALL).group(0)
    assert nav.count("<a ") == 9 and "Sign" not in nav
    assert client.get("/accounts/logout/").status_code == 405  # Django 5: sign out is a POST
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/"
    assert "Sign out" not in html_of(client.get("/"))


# --- recommendations -------------------------------------------------------------------


def test_recommend_page_has_labelled_pickers_and_attribute_inputs(client, trained_demo_with_script_song):
    html = html_of(client.get("/recommend/"))
    assert 'id="recommend-form"' in html and "js/recommend.js" in html
    for label in ("Add a song", "Add an artist", "Add a genre"):
        assert f">{label}</label>" in html, label
    for name in ("energy", "danceability", "valence", "acousticness", "tempo", "popularity"):
        for kind, words in (("min", "minimum"), ("target", "target"), ("max", "maximum")):
            assert re.search(rf'<input type="number" id="{kind}_{name}" name="{kind}_{name}"[^>]*aria-label="{name} {words}"',
                             html), (kind, name)
    # The rest sit in a collapsed "More attributes".
    more = re.search(r'<details id="more-attributes">.*?</details>', html, re.DOTALL).group(0)
    for name in ("instrumentalness", "liveness", "speechiness", "loudness", "duration_ms", "key", "mode",
                 "time_signature"):
        assert f'name="min_{name}"' in more, name
    assert 'min="0" max="300"' in html  # tempo's range, as the API accepts
    data = page_data(html)
    assert data["seeds"] == [] and data["run_now"] is False and data["max_seeds"] == 5
    assert data["signed_in"] is False and 'id="save-signin"' in html


def test_recommend_page_restores_seeds_and_bounds_from_the_address(client, trained_demo_with_script_song):
    song = xss_song()
    other = some_songs(1)[0]
    url = (f"/recommend/?seed_songs={song.external_id},{other.external_id}&seed_artists={other.artist.external_id}"
           "&seed_genres=rock&min_energy=0.5&target_instrumentalness=0.2&limit=7")
    html = html_of(client.get(url))
    data = page_data(html)
    assert data["run_now"] is True
    assert data["seeds"] == [
        {"type": "song", "id": song.external_id, "label": f"{XSS} — {XSS_ARTIST}"},
        {"type": "song", "id": other.external_id, "label": f"{other.name} — {other.artist.name}"},
        {"type": "artist", "id": other.artist.external_id, "label": other.artist.name},
        {"type": "genre", "id": "rock", "label": "rock"},
    ]
    assert_escaped(html)
    assert re.search(r'id="min_energy" name="min_energy"[^>]*value="0.5"', html)
    assert re.search(r'id="target_instrumentalness"[^>]*value="0.2"', html)
    assert '<details id="more-attributes" open>' in html  # a "more" attribute is set: shown
    assert 'id="limit" name="limit" type="number" min="1" max="100" step="1" value="7"' in html
    # Hostile values come back as inert attribute text.
    html = html_of(client.get('/recommend/?min_energy="><script>alert(2)</script>'))
    assert "<script>alert(2)" not in html


def test_artist_picker_endpoint(client, trained_demo_with_script_song):
    assert client.get("/artists.json?q=M").json() == {"results": []}
    results = client.get("/artists.json?q=mallory").json()["results"]
    song = xss_song()
    assert results == [{"id": song.artist.external_id, "name": XSS_ARTIST, "songs": 1}]
    # Names starting with the term come first.
    many = client.get("/artists.json?q=the").json()["results"]
    assert 1 <= len(many) <= 10
    response = client.get("/artists.json?q=%3Cb%3E")
    assert response["Content-Type"] == "application/json" and response.json()["results"][0]["name"] == XSS_ARTIST


def test_recommend_and_path_pages_make_few_queries(client, trained_demo_with_script_song, django_assert_max_num_queries):
    a, b = some_songs(2)
    with django_assert_max_num_queries(12):
        html_of(client.get(f"/recommend/?seed_songs={a.external_id}&seed_artists={b.artist.external_id}"))
    with django_assert_max_num_queries(12):
        html_of(client.get(f"/path/?from={a.external_id}&to={b.external_id}"))


# --- paths ---------------------------------------------------------------------------------


def test_path_page_pickers_length_and_address(client, trained_demo_with_script_song):
    html = html_of(client.get("/path/"))
    assert ">Start song</label>" in html and ">End song</label>" in html
    assert 'id="length" name="length" type="number" min="3" max="50" step="1" value="10"' in html
    assert 'src="/static/vendor/plotly/plotly.min.js"' in html and "js/path.js" in html
    data = page_data(html)
    assert data["from"] is None and data["to"] is None and data["run_now"] is False
    song, other = xss_song(), some_songs(1)[0]
    html = html_of(client.get(f"/path/?from={song.external_id}&to={other.external_id}&length=99"))
    data = page_data(html)
    assert data["from"] == {"id": song.external_id, "name": XSS, "artist": XSS_ARTIST}
    assert data["to"]["id"] == other.external_id and data["run_now"] is True and data["unknown"] == []
    assert 'value="50"' in html  # clamped to the API's range
    assert_escaped(html)
    data = page_data(html_of(client.get(f"/path/?from=nope&to={other.external_id}")))
    assert data["run_now"] is False and data["unknown"] == ["from"]


# --- playlists ---------------------------------------------------------------------------


@pytest.fixture
def lists(trained_demo_with_script_song, users):
    """alice: a private playlist with the script song, a public one; bob: a public one."""
    alice, bob = users
    songs = some_songs(3)
    private = playlists.playlist_create(owner=alice, name="Alice's secret", source="radio",
                                        song_ids=[xss_song().external_id] + [s.external_id for s in songs])
    public = playlists.playlist_create(owner=alice, name="Alice <i>public</i>", is_public=True,
                                       description="Line one\nline <two>", song_ids=[s.external_id for s in songs])
    bobs = playlists.playlist_create(owner=bob, name="Bob's mix", is_public=True, source="recommendations",
                                     song_ids=[songs[0].external_id])
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
    assert "<h1 id=\"playlist-name\">Alice &lt;i&gt;public&lt;/i&gt;</h1>" in html
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
    response = client.post(f"/playlists/{private.pk}/", {
        "name": "Renamed", "description": "Now with words", "is_public": "on", "songs": json.dumps(new_order),
    })
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


# --- radio ---------------------------------------------------------------------------------


def test_radio_page(client, trained_demo_with_script_song, users):
    song = xss_song()
    html = html_of(client.get(f"/playlists/radio/{song.external_id}/"))
    assert_escaped(html)
    assert f"<h1>Radio: <span id=\"radio-seed\">{XSS_ESCAPED}</span></h1>" in html
    for fmt in ("m3u", "csv", "json", "xspf"):
        assert f'href="/api/songs/{song.external_id}/radio/?limit=25&amp;fmt={fmt}" download' in html, fmt
    data = page_data(html)
    assert data["url"] == f"/api/songs/{song.external_id}/radio/?limit=25" and data["song"]["name"] == XSS
    assert 'id="save-signin"' in html and 'id="save-form"' not in html
    client.force_login(users[0])
    html = html_of(client.get(f"/playlists/radio/{song.external_id}/"))
    assert 'id="save-form"' in html and ">Playlist name</label>" in html
    # The radio the page loads, and the download behind its M3U link.
    radio = client.get(data["url"]).json()
    assert radio["songs"][0]["id"] == song.external_id and len(radio["songs"]) == 25
    m3u = client.get(f"/api/songs/{song.external_id}/radio/?limit=25&fmt=m3u").content.decode()
    assert m3u.startswith("#EXTM3U") and m3u.count("#EXTINF") == 25


def test_song_page_links_to_its_radio(client, trained_demo_with_script_song):
    song = xss_song()
    html = html_of(client.get(f"/songs/{song.external_id}/"))
    assert f'href="/playlists/radio/{song.external_id}/"' in html
    assert client.get(f"/playlists/radio/{song.external_id}/").status_code == 200
