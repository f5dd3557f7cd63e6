"""The listener's controls in real Chromium: block an artist from a song's
page, similar artists, a radio with variety saved and made again."""

import pytest

from clustering.models import BlockedItem, Playlist
from tests.browser.conftest import sign_in, table_ids, unique_song

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_song_page_blocks_an_artist_and_lists_similar_artists(live_server, page, trained_demo_with_script_song, alice):
    song = unique_song()
    url = f"/songs/{song.external_id}/"
    sign_in(page, live_server.url, next_url=url)
    page.wait_for_function("document.getElementById('similar-artists').dataset.state === 'loaded'")
    artists = page.locator("#similar-artists li > a:first-child").all_inner_texts()
    assert len(artists) == 8 and song.artist.name not in artists
    # Block the song's own artist: its other songs leave the similar songs.
    block = page.locator("#block-controls button", has_text=f"Block artist {song.artist.name}")
    block.click()
    page.wait_for_url(live_server.url + url)
    assert page.locator(".messages").inner_text().startswith("Blocked artist")
    assert BlockedItem.objects.filter(user=alice, kind="artist", value=song.artist.external_id).exists()
    page.wait_for_function("document.getElementById('similar').dataset.state")
    listed = page.locator("#similar .similar-list li").all_inner_texts()
    assert listed and not any(f" — {song.artist.name}" in li for li in listed), listed
    assert page.locator("#block-controls button", has_text=f"Unblock artist {song.artist.name}").count() == 1
    # The blocklist page lists it and unblocks it.
    page.goto(live_server.url + "/blocklist/")
    assert song.artist.name in page.locator("#blocked-artists").inner_text()
    page.get_by_role("button", name=f"Unblock {song.artist.name}").click()
    page.wait_for_url(live_server.url + "/blocklist/")
    assert not BlockedItem.objects.filter(user=alice).exists()
    assert page.console_errors == []


def test_a_varied_radio_is_saved_with_its_settings_and_made_again(
    live_server, page, trained_demo_with_script_song, alice
):
    song = unique_song()
    url = f"/playlists/radio/{song.external_id}/?variety=0.5&seed=3"
    sign_in(page, live_server.url, next_url=url)
    page.wait_for_function("document.getElementById('radio').dataset.state === 'loaded'")
    ids = table_ids(page, "#radio-table")
    assert len(ids) == 25 and "variety 0.5, seed 3" in page.locator("#radio-status").inner_text()
    page.get_by_label("Playlist name").fill("Varied radio")
    page.get_by_role("button", name="Save as playlist").click()
    page.locator("#saved-link").wait_for()
    playlist = Playlist.objects.get(name="Varied radio")
    assert playlist.params == {"song": song.external_id, "limit": 25, "variety": 0.5, "seed": 3}
    # Cut the playlist down, then make it again: the same 25 songs come back.
    playlist.items.exclude(position=0).delete()
    page.locator("#saved-link").click()
    page.wait_for_url(f"**/playlists/{playlist.pk}/")
    assert page.locator("#playlist-songs tbody tr").count() == 1
    page.get_by_role("button", name="Make again on the current catalog").click()
    page.wait_for_url(f"**/playlists/{playlist.pk}/")
    assert table_ids(page, "#playlist-songs") == ids
    assert page.locator("#playlist-name").inner_text() == "Varied radio"
    assert page.console_errors == []
