"""The phase-2 pages in real headless Chromium: recommendations, paths,
playlists (save from a radio or from recommendations, edit, export), sign-in
and escaping. Screenshots land in test-output/screenshots/."""
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model

from clustering import playlists
from clustering.models import Playlist
from songs.models import Song
from tests.browser.conftest import assert_fits_a_phone, screenshot
from tests.conftest import SCRIPT_ARTIST, SCRIPT_TITLE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

XSS = SCRIPT_TITLE
XSS_ARTIST = SCRIPT_ARTIST
PASSWORD = "pw-123456789"


@pytest.fixture
def alice(db):
    return get_user_model().objects.create_user("alice", password=PASSWORD)


def visit(page, url, *, state=None):
    """Open a page; with `state`, wait until #<id> has a data-state (its data arrived)."""
    page.goto(url)
    page.wait_for_load_state("networkidle")
    if state:
        page.wait_for_function(f"document.querySelector('{state}') && document.querySelector('{state}').dataset.state")


def sign_in(page, base, next_url="/playlists/"):
    """Sign in as alice on the site's login page, which then opens `next_url`."""
    page.goto(f"{base}/accounts/login/?next={quote(next_url, safe='/')}")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + next_url)
    page.wait_for_load_state("networkidle")
    assert page.locator(".account-name").inner_text() == "alice"


def pick(page, label, text, choice):
    """Type `text` into the picker labelled `label` and choose the match whose text is `choice` (keyboard)."""
    field = page.get_by_label(label, exact=True)
    field.fill(text)
    results = page.locator(f"#{field.get_attribute('id')[:-2]}-results button")
    results.first.wait_for()
    buttons = results.all_inner_texts()
    assert choice in buttons, buttons
    field.focus()
    page.keyboard.press("ArrowDown")
    for _ in range(buttons.index(choice)):
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")


def label_of(song: Song) -> str:
    return f"{song.name} — {song.artist.name}"


def table_ids(page, selector) -> list[str]:
    return page.eval_on_selector_all(f"{selector} tbody tr[data-id]", "rows => rows.map(r => r.dataset.id)")


def unique_song(**filters) -> Song:
    """A song whose title and artist no other song shares (so a picker shows it once)."""
    for song in Song.objects.exclude(name=XSS).filter(**filters).select_related("artist").order_by("id"):
        if Song.objects.filter(name=song.name, artist=song.artist).count() == 1:
            return song
    raise AssertionError("no such song")


# --- every new page ---------------------------------------------------------------------


def test_new_pages_load_without_console_errors(live_server, page, trained_demo_with_script_song, alice):
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
        visit(page, base + url, state=state)
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


# --- recommendations -------------------------------------------------------------------------


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
    error = page.locator("#recommend-error")
    error.wait_for()
    assert error.inner_text() == "min_energy (0.65) is greater than max_energy (0.1)."
    assert page.locator("#track-table-wrap").is_hidden()
    page.get_by_label("energy maximum").fill("")
    # A seed is removed with its × button.
    page.get_by_role("button", name=f"Remove seed {label_of(seed)}").click()
    assert page.locator("#seed-list .chip").count() == 2
    assert page.console_errors == [] and page.dialogs == []
    # An error of the API is shown as its text (Chromium logs the 400 response itself).
    visit(page, live_server.url + "/recommend/?seed_songs=no-such-song")
    error.wait_for()
    assert error.inner_text() == "unknown seed(s): song 'no-such-song'"
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


# --- paths -------------------------------------------------------------------------------------


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


# --- playlists: radio → save → list → edit → export ----------------------------------------------


def test_signed_in_user_saves_a_radio_edits_it_and_downloads_a_valid_m3u(live_server, page, trained_demo_with_script_song, alice):
    base = live_server.url
    song = unique_song()
    # Anonymous: the radio page offers sign-in instead of saving.
    visit(page, base + f"/playlists/radio/{song.external_id}/", state="#radio")
    assert page.locator("#save-signin").is_visible() and page.locator("#save-form").count() == 0
    sign_in(page, base, next_url=f"/playlists/radio/{song.external_id}/")
    page.wait_for_function("document.getElementById('radio').dataset.state === 'loaded'")
    ids = table_ids(page, "#radio-table")
    assert len(ids) == 25 and ids[0] == song.external_id
    page.get_by_label("Playlist name").fill("Morning radio")
    page.get_by_role("button", name="Save as playlist").click()
    page.locator("#saved-link").wait_for()
    assert page.locator("#save-status").inner_text() == "Saved as Morning radio (25 songs)."
    playlist = Playlist.objects.get(name="Morning radio")
    assert playlist.owner == alice and playlist.source == "radio"
    assert [s.external_id for s in playlists.playlist_songs(playlist=playlist)] == ids
    # It is on the playlists page, under "Your playlists".
    visit(page, base + "/playlists/")
    link = page.locator("#mine-table").get_by_role("link", name="Morning radio")
    assert link.count() == 1
    link.click()
    page.wait_for_url(f"**/playlists/{playlist.pk}/")
    # Edit: rename, make it public, move the third song to the top, remove the last one, add one.
    page.get_by_text("Edit this playlist").click()
    page.get_by_label("Name", exact=True).fill("Sunday radio")
    page.get_by_role("checkbox", name=re.compile("Public: listed")).check()
    third = page.locator("#edit-songs li").nth(2)
    third_label = third.locator(".edit-label").inner_text()
    third.get_by_role("button", name=re.compile("^Move up")).click()
    page.locator("#edit-songs li").nth(1).get_by_role("button", name=re.compile("^Move up")).focus()
    page.keyboard.press("Enter")  # keyboard works too
    assert page.locator("#edit-songs li").first.locator(".edit-label").inner_text() == third_label
    page.locator("#edit-songs li").last.get_by_role("button", name=re.compile("^Remove")).click()
    extra = Song.objects.select_related("artist").exclude(external_id__in=ids).exclude(name=XSS).order_by("id").first()
    pick(page, "Add a song", extra.name, label_of(extra))
    assert page.locator("#edit-songs li").count() == 25
    expected = [ids[2], ids[0], ids[1], *ids[3:24], extra.external_id]
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(f"**/playlists/{playlist.pk}/")
    page.get_by_text("Changes saved.").wait_for()
    assert page.locator("#playlist-name").inner_text() == "Sunday radio"
    playlist.refresh_from_db()
    assert playlist.name == "Sunday radio" and playlist.is_public
    assert [s.external_id for s in playlists.playlist_songs(playlist=playlist)] == expected
    assert table_ids(page, "#playlist-songs") == expected
    screenshot(page, "playlist-edited")
    # Export: the M3U link downloads a valid extended M3U with one entry per song.
    with page.expect_download() as download_info:
        page.locator("#exports a[data-fmt=m3u]").click()
    download = download_info.value
    assert download.suggested_filename == "sunday-radio.m3u8"
    content = Path(download.path()).read_text(encoding="utf-8")
    assert content.startswith("#EXTM3U\n")
    lines = content.splitlines()
    assert sum(line.startswith("#EXTINF:") for line in lines) == 25
    urls = [line for line in lines if line and not line.startswith("#")]
    assert urls == [f"{base}/songs/{i}/" for i in expected]
    # Sign out (a POST form): back to the dashboard, signed out.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(base + "/")
    assert page.locator(".account").get_by_role("link", name="Sign in").count() == 1
    assert page.console_errors == [] and page.dialogs == []


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


# --- escaping -----------------------------------------------------------------------------------


def test_script_titled_song_shows_as_text_on_the_new_pages(live_server, page, trained_demo_with_script_song, alice):
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


# --- phone -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["recommend", "path", "playlists", "radio"])
def test_new_pages_fit_a_phone_screen(live_server, browser, trained_demo_with_script_song, name):
    seed = unique_song()
    url = {"recommend": f"/recommend/?seed_songs={seed.external_id}", "path": "/path/", "playlists": "/playlists/",
           "radio": f"/playlists/radio/{seed.external_id}/"}[name]
    assert_fits_a_phone(browser, live_server.url + url, f"phone-{name}")
