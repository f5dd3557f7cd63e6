import pytest

from songs.services import songs_import_file
from tests.conftest import flagship_rows

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_home_page_lists_catalog_without_console_errors(live_server, page, catalog_csv):
    rows = flagship_rows(12)
    rows[0]["name_song"] = "<script>alert(1)</script>"
    songs_import_file(path=catalog_csv(rows))
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(live_server.url + "/")
    assert page.locator("table.songs tbody tr").count() == 12
    assert page.get_by_text("<script>alert(1)</script>").count() == 1  # shown as text
    assert dialogs == []
    page.get_by_label("Search titles and artists").fill("Song 11")
    page.keyboard.press("Enter")
    page.wait_for_url("**/?q=Song+11*")
    assert page.locator("table.songs tbody tr").count() == 1
    assert page.console_errors == []
