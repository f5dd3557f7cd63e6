import pytest

from songs.services import songs_import_file
from tests.conftest import flagship_rows

pytestmark = pytest.mark.django_db


def test_home_lists_catalog_and_escapes_names(client, catalog_csv):
    rows = flagship_rows(3)
    rows[0]["name_song"] = "<script>alert(1)</script>"
    songs_import_file(path=catalog_csv(rows))
    html = client.get("/").content.decode()
    assert "3 songs by" in html
    assert "Synthetic Song 2" in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_home_search_and_empty_state(client, catalog_csv):
    assert "The catalog is empty" in client.get("/").content.decode()
    songs_import_file(path=catalog_csv(flagship_rows(3)))
    html = client.get("/?q=Song 2").content.decode()
    assert "Synthetic Song 2" in html and "Synthetic Song 3" not in html
    assert "No song or artist matches" in client.get("/?q=zzzz").content.decode()
