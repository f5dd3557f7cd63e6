"""The discovery pages in real headless Chromium: predict, recommendations,
paths, a song's radio (and the playlist and sign-in pages alongside them:
console errors, escaping, phone layout). Screenshots land in
test-output/screenshots/."""

import re
from pathlib import Path

import pytest

from clustering import playlists, services
from clustering.models import Playlist
from songs.models import Song
from tests.browser.conftest import (
    assert_fits_a_phone,
    label_of,
    pick,
    screenshot,
    sign_in,
    table_ids,
    unique_song,
    visit,
)
from tests.conftest import SCRIPT_ARTIST, SCRIPT_TITLE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

XSS = SCRIPT_TITLE
XSS_ARTIST = SCRIPT_ARTIST


# --- every page -----------------------------------------------------------------------


def test_discovery_playlist_and_sign_in_pages_load_without_console_errors(
    live_server, page, trained_demo_with_script_song, alice
):
    base = live_server.url
    song = Song.objects.get(name=XSS)
    songs = [s.external_id for s in Song.objects.exclude(name=XSS).order_by("id")[:5]]
    public = playlists.playlist_create(owner=alice, name="Evening", is_public=True, song_ids=songs)
    private = playlists.playlist_create(owner=alice, name="Secret", song_ids=[song.external_id, *songs])
    pages = [
        ("recommend", "/recommend/", None),
        ("path", "/path/", None),
        ("playlists", "/playlists/", None),
        ("playlist", f"/playlists/{public.pk}/", None),
        ("playlist-shared", f"/playlists/shared/{private.share_id}/", None),
        ("radio", f"/playlists/radio/{song.external_id}/", "#radio"),
        ("login", "/accounts/login/", None),
    ]
    for name, url, state in pages:
        visit(page, base + url, state=state, settled=True)
        assert page.locator("h1").count() == 1, url
        assert page.locator("nav[aria-label=Main] a").count() == 9
        screenshot(page, f"page-{name}")
        assert page.console_errors == [], (url, page.console_errors)
    # Signed in: the account area, your own playlists, the owner's view with its editor open.
    sign_in(page, base)
    assert page.locator("#mine-table tr[data-playlist]").count() == 2
    screenshot(page, "page-playlists-signed-in")
    visit(page, base + f"/playlists/{private.pk}/")
    page.get_by_text("Edit this playlist").click()
    assert page.get_by_label("Name", exact=True).input_value() == "Secret"
    assert page.locator("#edit-songs li").count() == 6
    screenshot(page, "page-playlist-owner")
    assert page.console_errors == [] and page.dialogs == []


def test_pages_of_an_empty_site_say_no_model_yet(live_server, page):
    for url in ("/recommend/", "/path/"):
        visit(page, live_server.url + url)
        assert page.locator("#empty-model").get_by_text("No model yet").count() == 1, url
    screenshot(page, "page-path-empty")
    visit(page, live_server.url + "/playlists/")
    assert page.get_by_text("No public playlists yet.").count() == 1
    assert page.console_errors == []


# --- predict --------------------------------------------------------------------------


def test_predict_slider_changes_prediction_and_moves_the_red_point(live_server, page, scanned_demo_with_script_song):
    visit(page, live_server.url + "/predict/", maps=1)
    page.wait_for_function("document.body.dataset.predictions >= 1")
    page.evaluate("window.__sameDocument = 'still here'")
    before = page.evaluate("""() => {
        const gd = document.getElementById('predict-map'), t = gd.data[gd.data.length - 1];
        return {x: t.x[0], y: t.y[0], cluster: document.getElementById('prediction').dataset.cluster,
                text: document.getElementById('prediction').innerText, n: +document.body.dataset.predictions};
    }""")
    assert before["x"] is not None and before["cluster"]
    # Keyboard on the sliders: an ambient, acoustic, instrumental sound.
    for feature, key in (
        ("instrumentalness", "End"),
        ("acousticness", "End"),
        ("energy", "Home"),
        ("danceability", "Home"),
        ("loudness", "Home"),
    ):
        page.locator(f"#range-{feature}").focus()
        page.keyboard.press(key)
    assert page.locator("#num-instrumentalness").input_value() == "1"
    assert page.locator("#duration-readout").inner_text().startswith("= ")
    values = {f: float(page.locator(f"#num-{f}").input_value()) for f in Song.FEATURES}
    import numpy as np

    expected = services.cluster_predict(X=np.array([[values[f] for f in Song.FEATURES]]))[0]
    # Wait for the prediction of the final values: on a busy machine the keys
    # come more than the debounce apart, and a prediction for the first ones
    # arrives (and moves the point) before the last one is asked for.
    page.wait_for_function(
        "([x, c, ex, ey]) => { const gd = document.getElementById('predict-map'), t = gd.data[gd.data.length - 1];"
        " const near = (a, b) => Math.abs(a - b) <= 1e-6 * Math.abs(b) + 1e-12;"
        " return t.x[0] !== x && document.getElementById('prediction').dataset.cluster !== c"
        " && near(t.x[0], ex) && near(t.y[0], ey); }",
        arg=[before["x"], before["cluster"], expected["map"]["x"], expected["map"]["y"]],
    )
    after = page.evaluate("""() => {
        const gd = document.getElementById('predict-map'), t = gd.data[gd.data.length - 1];
        return {x: t.x[0], y: t.y[0], cluster: document.getElementById('prediction').dataset.cluster,
                text: document.getElementById('prediction').innerText, colour: t.marker.color,
                marker: window.__sameDocument, n: +document.body.dataset.predictions};
    }""")
    assert after["marker"] == "still here"  # no reload
    assert after["n"] > before["n"]
    assert (after["x"], after["y"]) != (before["x"], before["y"])
    assert after["cluster"] != before["cluster"] and after["text"] != before["text"]
    assert after["colour"] == "#e00000"
    # The predicted cluster is what the model says for these values.
    assert int(after["cluster"]) == expected["cluster"]["id"]
    assert after["x"] == pytest.approx(expected["map"]["x"]) and after["y"] == pytest.approx(expected["map"]["y"])
    # Distances: one bar per cluster.
    assert (
        page.evaluate("document.getElementById('distances').data[0].x.length")
        == scanned_demo_with_script_song.n_clusters
    )
    # An exact value typed in the number input moves the slider.
    page.locator("#num-tempo").fill("150")
    assert page.locator("#range-tempo").input_value() == "150"
    screenshot(page, "predict-after-sliders")
    assert page.console_errors == []


def test_predict_start_from_a_song(live_server, page, scanned_demo_with_script_song):
    song = Song.objects.exclude(name=XSS).select_related("artist").order_by("id")[5]
    visit(page, live_server.url + "/predict/", maps=1)
    page.get_by_label("Find a song by title or artist").fill(song.name)
    button = page.locator("#preset-results button", has_text=song.name).first
    button.click()
    page.wait_for_function("document.getElementById('preset-status').textContent.startsWith('Sliders set')")
    assert float(page.locator("#num-energy").input_value()) == pytest.approx(song.energy)
    assert float(page.locator("#num-duration_ms").input_value()) == song.duration_ms
    page.wait_for_function(f"document.getElementById('prediction').dataset.cluster === '{song.cluster_id}'")
    assert page.console_errors == []


# --- recommendations ------------------------------------------------------------------


def test_recommendations_for_a_seed_respect_a_min_energy_bound(live_server, page, trained_demo_with_script_song):
    seed = unique_song(energy__gte=0.6, energy__lte=0.8)
    visit(page, live_server.url + "/recommend/")
    page.wait_for_function("document.getElementById('genre-select').options.length > 0")
    pick(page, "Add a song", seed.name, label_of(seed))
    chips = page.locator("#seed-list .chip")
    assert chips.count() == 1 and chips.first.locator(".chip-label").inner_text() == label_of(seed)
    page.get_by_label("energy minimum").fill("0.65")
    page.get_by_role("button", name="Get recommendations").click()
    page.wait_for_function("document.getElementById('results').dataset.state === 'loaded'")
    ids = table_ids(page, "#track-table")
    assert len(ids) == 20 and seed.external_id not in ids
    energies = dict(Song.objects.filter(external_id__in=ids).values_list("external_id", "energy"))
    assert len(energies) == 20 and min(energies.values()) >= 0.65, energies
    # The seed's pool before and after the filter, and the address keeps the query.
    row = page.locator("#seed-table tbody tr").first.locator("td").all_inner_texts()
    assert row[0] == label_of(seed) and row[1] == "song" and int(row[2]) >= int(row[3]) > 0
    assert "min_energy=0.65" in page.url and f"seed_songs={seed.external_id}" in page.url
    # Each title links to its song.
    first = page.locator("#track-table tbody tr").first.locator("a").first
    assert first.get_attribute("href") == f"/songs/{ids[0]}/"
    screenshot(page, "recommend-results")
    # A genre from the searchable list (keyboard: filter, then Enter) and an artist by search.
    page.get_by_label("Add a genre").fill("rock")
    page.wait_for_function("[...document.getElementById('genre-select').options].every(o => o.value.includes('rock'))")
    page.get_by_label("Add a genre").press("Enter")
    artist, n = seed.artist, Song.objects.filter(artist=seed.artist).count()
    pick(page, "Add an artist", artist.name, f"{artist.name} ({n} song{'s' if n != 1 else ''})")
    assert page.locator("#seed-list .chip").count() == 3
    assert page.locator("#seed-list .chip[data-type=genre] .chip-label").inner_text().find("rock") >= 0
    page.get_by_role("button", name="Get recommendations").click()
    page.wait_for_function("document.querySelectorAll('#seed-table tbody tr').length === 3")
    assert page.locator("#seed-table tbody tr td:nth-child(2)").all_inner_texts() == ["song", "artist", "genre"]
    # Bounds that cannot hold are refused before asking the API.
    page.get_by_label("energy maximum").fill("0.1")
    page.get_by_role("button", name="Get recommendations").click()
    error = page.locator("#error-energy")
    error.wait_for()
    assert error.inner_text() == "The min (0.65) is above the max (0.1)."
    assert page.locator("#track-table-wrap").is_hidden()
    page.get_by_label("energy maximum").fill("")
    # A seed is removed with its × button.
    page.get_by_role("button", name=f"Remove seed {label_of(seed)}").click()
    assert page.locator("#seed-list .chip").count() == 2
    assert page.console_errors == [] and page.dialogs == []
    # An error of the API is shown as its text (Chromium logs the 400 response itself).
    visit(page, live_server.url + "/recommend/?seed_songs=no-such-song")
    error = page.locator("#seeds-error")
    error.wait_for()
    assert error.inner_text() == "Not in this catalog: song “no-such-song”. Remove it and choose another."
    assert page.locator("#seed-list .chip-label").inner_text() == "no-such-song"
    assert [e for e in page.console_errors if "status of 400" not in e] == [] and page.dialogs == []


def test_signed_in_user_saves_recommendations_as_a_playlist(live_server, page, trained_demo_with_script_song, alice):
    seed = unique_song(energy__gte=0.6)
    sign_in(page, live_server.url, next_url=f"/recommend/?seed_songs={seed.external_id}&min_energy=0.5&limit=12")
    page.wait_for_function("document.getElementById('results').dataset.state === 'loaded'")
    ids = table_ids(page, "#track-table")
    assert len(ids) == 12
    assert page.get_by_label("Playlist name").input_value() == f"Recommendations: {label_of(seed)}"
    page.get_by_label("Playlist name").fill("Upbeat picks")
    page.get_by_role("button", name="Save as playlist").click()
    page.locator("#saved-link").wait_for()
    playlist = Playlist.objects.get(name="Upbeat picks")
    assert playlist.owner == alice and playlist.source == "recommendations" and not playlist.is_public
    assert [s.external_id for s in playlists.playlist_songs(playlist=playlist)] == ids
    page.locator("#saved-link").click()
    page.wait_for_url(f"**/playlists/{playlist.pk}/")
    assert page.locator("#playlist-songs tbody tr").count() == 12
    assert page.console_errors == []


# --- paths ----------------------------------------------------------------------------


def test_path_page_shows_a_path(live_server, page, trained_demo_with_script_song, alice):
    start = unique_song(energy__lte=0.3, acousticness__gte=0.7)
    end = unique_song(energy__gte=0.85)
    visit(page, live_server.url + "/path/")
    pick(page, "Start song", start.name, label_of(start))
    pick(page, "End song", end.name, label_of(end))
    assert page.locator("#from-chosen .chosen-song").inner_text() == label_of(start)
    page.get_by_label(re.compile("^Songs in the path")).fill("8")
    page.get_by_role("button", name="Find the path").click()
    page.wait_for_function("document.getElementById('results').dataset.state === 'loaded'")
    items = page.locator("#path-list li")
    assert items.count() == 8
    assert items.first.get_attribute("data-id") == start.external_id
    assert items.last.get_attribute("data-id") == end.external_id
    steps = page.locator("#path-list li .step").all_inner_texts()
    assert steps[0] == "start" and all(re.fullmatch(r"step \d+\.\d\d", s) for s in steps[1:]) and len(steps) == 8
    # The chart: energy, valence, danceability and acousticness along the 8 songs.
    page.wait_for_function("document.getElementById('path-chart').dataset.ready === '1'")
    traces = page.evaluate("document.getElementById('path-chart').data.map(t => [t.name, t.y.length])")
    assert traces == [["energy", 8], ["valence", 8], ["danceability", 8], ["acousticness", 8]]
    assert f"from={start.external_id}" in page.url and "length=8" in page.url
    screenshot(page, "path-result")
    # The address is a link to the same path; signed in, it is saved as a playlist.
    ids = page.eval_on_selector_all("#path-list li", "items => items.map(li => li.dataset.id)")
    sign_in(page, live_server.url, next_url=page.url.removeprefix(live_server.url))
    page.wait_for_function("document.getElementById('results').dataset.state === 'loaded'")
    assert page.eval_on_selector_all("#path-list li", "items => items.map(li => li.dataset.id)") == ids
    assert page.get_by_label("Playlist name").input_value() == f"Path: {start.name} → {end.name}"
    page.get_by_role("button", name="Save as playlist").click()
    page.locator("#saved-link").wait_for()
    playlist = Playlist.objects.get(owner=alice)
    assert playlist.source == "path" and [s.external_id for s in playlists.playlist_songs(playlist=playlist)] == ids
    assert page.console_errors == [] and page.dialogs == []


# --- radio ----------------------------------------------------------------------------


def test_radio_exports_download_from_the_radio_endpoint(live_server, page, trained_demo_with_script_song):
    song = unique_song()
    visit(page, live_server.url + f"/playlists/radio/{song.external_id}/", state="#radio")
    with page.expect_download() as download_info:
        page.locator("#exports a[data-fmt=m3u]").click()
    content = Path(download_info.value.path()).read_text(encoding="utf-8")
    assert content.startswith("#EXTM3U") and content.count("#EXTINF:") == 25
    with page.expect_download() as download_info:
        page.locator("#exports a[data-fmt=csv]").click()
    assert download_info.value.suggested_filename.endswith(".csv")
    assert page.console_errors == []


# --- escaping -------------------------------------------------------------------------


def test_script_titled_song_shows_as_text_on_the_discovery_and_playlist_pages(
    live_server, page, trained_demo_with_script_song, alice
):
    base = live_server.url
    song = Song.objects.select_related("artist").get(name=XSS)
    label = f"{XSS} — {XSS_ARTIST}"
    # Recommend: the picker, the seed chip, the seed table.
    visit(page, base + "/recommend/")
    pick(page, "Add a song", "alert", label)
    assert page.locator("#seed-list .chip-label").inner_text() == label
    page.get_by_role("button", name="Get recommendations").click()
    page.wait_for_function("document.getElementById('results').dataset.state === 'loaded'")
    assert page.locator("#seed-table tbody td").first.inner_text() == label
    screenshot(page, "escaping-recommend")
    # Path: from the script song; its entry and the chart's hover text.
    other = unique_song()
    visit(page, base + f"/path/?from={song.external_id}&to={other.external_id}&length=5")
    page.wait_for_function("document.getElementById('path-chart').dataset.ready === '1'")
    assert page.locator("#from-chosen .chosen-song").inner_text() == label
    assert page.locator("#path-list li").first.locator("a").first.inner_text() == XSS
    assert page.evaluate("document.getElementById('path-chart').data[0].text[0]").startswith("<b>&lt;script&gt;")
    screenshot(page, "escaping-path")
    # A playlist holding it (its page and its editor).
    playlist = playlists.playlist_create(owner=alice, name=XSS, song_ids=[song.external_id, other.external_id])
    sign_in(page, base, next_url=f"/playlists/{playlist.pk}/")
    assert page.locator("#playlist-name").inner_text() == XSS
    assert page.locator("#playlist-songs tbody tr").first.locator("a").first.inner_text() == XSS
    page.get_by_text("Edit this playlist").click()
    assert page.locator("#edit-songs .edit-label").first.inner_text() == label
    visit(page, base + "/playlists/")
    assert page.locator("#mine-table").get_by_role("link", name=XSS).count() == 1
    # The radio of the script song.
    visit(page, base + f"/playlists/radio/{song.external_id}/", state="#radio")
    assert page.locator("#radio-seed").inner_text() == XSS
    assert table_ids(page, "#radio-table")[0] == song.external_id
    assert page.locator("#radio-table tbody tr").first.locator("a").first.inner_text() == XSS
    assert page.locator("#radio-table tbody tr").first.locator("td").nth(2).inner_text() == XSS_ARTIST
    assert page.get_by_label("Playlist name").input_value() == f"Radio: {XSS} — {XSS_ARTIST}"
    screenshot(page, "escaping-radio")
    assert page.locator("main script:not([type])").count() == 0
    assert page.dialogs == [] and page.console_errors == []


# --- phone ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["recommend", "path", "playlists", "radio"])
def test_discovery_and_playlist_pages_fit_a_phone_screen(live_server, browser, trained_demo_with_script_song, name):
    seed = unique_song()
    url = {
        "recommend": f"/recommend/?seed_songs={seed.external_id}",
        "path": "/path/",
        "playlists": "/playlists/",
        "radio": f"/playlists/radio/{seed.external_id}/",
    }[name]
    assert_fits_a_phone(browser, live_server.url + url, f"phone-{name}")
