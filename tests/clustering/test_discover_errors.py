"""The recommend and path pages opened from an address with bad values: each
problem is written beside its field, in the page's words (no API parameter
names), the field is marked, and the page does not ask the API."""

import json
import re

import pytest

from songs.models import Song

pytestmark = pytest.mark.django_db

PARAMETER_NAMES = re.compile(r"\b(seed_songs|seed_artists|seed_genres|min_\w+|max_\w+|target_\w+|from and to)\b")


def page_data(html: str) -> dict:
    return json.loads(re.search(r'<script id="page-data" type="application/json">(.*?)</script>', html, re.S)[1])


def field_error(html: str, element_id: str) -> str:
    """The text of the error element with this id ('' when it is hidden)."""
    match = re.search(rf'<(?:p|small) class="field-error" id="{element_id}" role="alert"( hidden)?>(.*?)</', html)
    if match is None:
        match = re.search(rf'<p id="{element_id}" class="field-error" role="alert"( hidden)?>(.*?)</p>', html)
    assert match is not None, element_id
    return "" if match[1] else match[2]


def test_recommend_marks_a_min_above_its_max_beside_the_field(client, trained_demo):
    seed = Song.objects.order_by("id").first()
    html = client.get(f"/recommend/?seed_songs={seed.external_id}&min_energy=0.8&max_energy=0.2").content.decode()
    assert field_error(html, "error-energy") == "The min (0.8) is above the max (0.2)."
    for kind in ("min", "max"):
        assert re.search(rf'id="{kind}_energy"[^>]*aria-invalid="true"', html), kind
    assert not re.search(r'id="target_energy"[^>]*aria-invalid', html)
    assert field_error(html, "error-danceability") == ""
    assert page_data(html)["run_now"] is False
    # Bad numbers and values out of range, with the attribute's own bounds; "More attributes" opens.
    html = client.get(
        f"/recommend/?seed_songs={seed.external_id}&target_tempo=fast&max_loudness=9&limit=500"
    ).content.decode()
    assert field_error(html, "error-tempo") == "Target: enter a number."
    assert field_error(html, "error-loudness") == "Max must be from -60 to 5."
    assert '<details id="more-attributes" open>' in html
    assert field_error(html, "limit-error") == "Enter a whole number of songs from 1 to 100."
    for name in ("error-tempo", "error-loudness", "limit-error"):
        assert not PARAMETER_NAMES.search(field_error(html, name))
    # Good values: nothing marked, the query runs on load.
    html = client.get(f"/recommend/?seed_songs={seed.external_id}&min_energy=0.2&max_energy=0.8").content.decode()
    assert 'aria-invalid="true"' not in html and page_data(html)["run_now"] is True


def test_path_says_beside_the_fields_what_is_wrong_with_the_address(client, trained_demo):
    a, b = Song.objects.order_by("id")[:2]
    html = client.get(f"/path/?from={a.external_id}&to={a.external_id}").content.decode()
    assert field_error(html, "to-error") == "The end song is the start song: choose another end song."
    assert field_error(html, "from-error") == "" and page_data(html)["run_now"] is False
    html = client.get(f"/path/?from=nope&to={b.external_id}&length=2").content.decode()
    assert field_error(html, "from-error") == (
        "No song has the start song&#x27;s id in this address: choose the start song again."
    )
    assert field_error(html, "length-error") == "Enter a whole number of songs from 3 to 50."
    assert field_error(html, "to-error") == ""
    for name in ("from-error", "to-error", "length-error"):
        assert not PARAMETER_NAMES.search(field_error(html, name))
    html = client.get(f"/path/?from={a.external_id}&to={b.external_id}&length=7").content.decode()
    assert 'aria-invalid="true"' not in html and page_data(html)["run_now"] is True
