"""The playlist pages in real headless Chromium: a radio saved as a playlist,
listed, edited (rename, reorder, remove, add) and exported as a valid M3U.
Screenshots land in test-output/screenshots/."""

import re
from pathlib import Path

import pytest

from clustering import playlists
from clustering.models import Playlist
from songs.models import Song
from tests.browser.conftest import label_of, pick, screenshot, sign_in, table_ids, unique_song, visit
from tests.conftest import SCRIPT_TITLE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

XSS = SCRIPT_TITLE


# --- radio -> save -> list -> edit -> export ------------------------------------------


def test_signed_in_user_saves_a_radio_edits_it_and_downloads_a_valid_m3u(
    live_server, page, trained_demo_with_script_song, alice
):
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
