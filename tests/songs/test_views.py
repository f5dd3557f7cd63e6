"""The catalog's pages through Django's test client: the search page (keyset
pages without COUNT(*) or OFFSET, escaping) and the artist picker's /artists.json."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from songs.models import Song
from tests.conftest import SCRIPT_ARTIST, html_of, xss_song
from tests.conftest import assert_title_escaped as assert_escaped

pytestmark = pytest.mark.django_db

XSS_ARTIST = SCRIPT_ARTIST


# --- search ---------------------------------------------------------------------------


def test_search_by_title_and_artist_escaped(client, trained_demo_with_script_song):
    html = html_of(client.get("/search/", {"q": "script"}))
    assert_escaped(html)
    assert "Mallory &lt;b&gt;&amp;&lt;/b&gt; Co" in html
    song = xss_song()
    assert f'href="/songs/{song.external_id}/"' in html
    by_artist = html_of(client.get("/search/", {"q": "Mallory"}))
    assert f'href="/songs/{song.external_id}/"' in by_artist
    assert "No song or artist matches" in html_of(client.get("/search/", {"q": "zzzzqqq"}))


def test_search_pages_by_keyset_without_count(client, trained_demo_with_script_song):
    with CaptureQueriesContext(connection) as queries:
        first = html_of(client.get("/search/"))
    sql = " ".join(q["sql"].upper() for q in queries.captured_queries)
    assert "COUNT(" not in sql and "OFFSET" not in sql
    ids_first = re.findall(r'href="/songs/([^/"]+)/"', first)
    assert len(ids_first) == 50
    after = re.search(r'rel="next" href="\?after=([^"]+)"', first).group(1)
    second = html_of(client.get("/search/", {"after": after}))
    ids_second = re.findall(r'href="/songs/([^/"]+)/"', second)
    expected = list(Song.objects.order_by("id").values_list("external_id", flat=True)[:100])
    assert ids_first + ids_second == expected
    before = re.search(r'rel="prev" href="\?before=([^"]+)"', second).group(1)
    assert re.findall(r'href="/songs/([^/"]+)/"', html_of(client.get("/search/", {"before": before}))) == ids_first
    # A tampered cursor is the first page, not an error.
    assert re.findall(r'href="/songs/([^/"]+)/"', html_of(client.get("/search/", {"after": "!!garbage"}))) == ids_first


# --- artists.json ---------------------------------------------------------------------


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
