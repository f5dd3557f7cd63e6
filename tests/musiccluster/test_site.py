"""Site-wide page checks through Django's test client: every page answers on
an empty site and with a model, none lets the script-titled song through
unescaped, sign-in and the nav's account area, Plotly from the pinned package."""

import re

import pytest
from django.conf import settings

from songs.models import Song
from songs.services import songs_import_file
from tests.conftest import PASSWORD, SCRIPT_TITLE, flagship_rows, html_of, xss_song

pytestmark = pytest.mark.django_db

XSS = SCRIPT_TITLE
PAGES = ["/", "/search/", "/predict/", "/runs/", "/recommend/", "/path/", "/playlists/"]
ENGINE_AND_SIGN_IN_PAGES = ["/recommend/", "/path/", "/playlists/", "/accounts/login/"]


# --- empty site, no model -------------------------------------------------------------


def test_every_page_answers_on_an_empty_catalog(client):
    for url in PAGES:
        assert client.get(url).status_code == 200, url
    assert "No songs yet" in html_of(client.get("/"))
    assert "No songs yet" in html_of(client.get("/search/"))
    assert "No model yet" in html_of(client.get("/predict/"))
    assert "No training run yet" in html_of(client.get("/runs/"))
    assert client.get("/map.json").status_code == 404
    assert client.get("/songs/nope/").status_code == 404
    assert client.get("/clusters/999/").status_code == 404


def test_engine_and_sign_in_pages_answer_on_an_empty_site(client):
    for url in ENGINE_AND_SIGN_IN_PAGES:
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


def test_songs_without_a_model(client, catalog_csv):
    songs_import_file(path=catalog_csv(flagship_rows(3)))
    html = html_of(client.get("/"))
    assert "No model yet" in html and "No songs yet" not in html
    assert 'id="map"' not in html
    song = html_of(client.get(f"/songs/{Song.objects.first().external_id}/"))
    assert "No model is active yet" in song and "Start radio from this song" in song
    assert "no model is active" in song and "data-url" not in song  # similar songs: nothing to fetch


# --- with a model ---------------------------------------------------------------------


def test_pages_with_a_model_answer_and_escape(client, trained_demo_with_script_song):
    song = xss_song()
    for url in [*PAGES, f"/songs/{song.external_id}/", f"/clusters/{song.cluster_id}/?sort=name", "/search/?q=alert"]:
        html = html_of(client.get(url))
        assert XSS not in html, url
    assert client.get("/search.json", {"q": "alert"}).json()["results"] == [
        {"id": song.external_id, "name": XSS, "artist": "Mallory <b>&</b> Co"}
    ]


def test_plotly_is_served_from_the_pinned_package_not_the_repository():
    from pathlib import Path

    import plotly
    from django.contrib.staticfiles import finders

    found = Path(finders.find("vendor/plotly/plotly.min.js"))
    assert found == Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert "site-packages" in found.parts  # installed with the package, not copied into the repository
    assert b"plotly.js v" in found.read_bytes()[:2000]


# --- sign-in and the nav --------------------------------------------------------------


def test_login_page_says_there_is_no_registration_and_signs_in(client, users):
    html = html_of(client.get("/accounts/login/"))
    assert "no self-registration" in html and 'autocomplete="current-password"' in html
    assert '<label for="id_username">Username</label>' in html and '<label for="id_password">Password</label>' in html
    response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200 and 'id="login-error"' in response.content.decode()
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == settings.LOGIN_REDIRECT_URL == "/playlists/"
    response = client.post(
        "/accounts/login/?next=/path/", {"username": "alice", "password": PASSWORD, "next": "/path/"}
    )
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
