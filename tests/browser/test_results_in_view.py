"""Recommend and path pages in Chromium: after a query the answer is on
screen, and a problem is shown beside its field in the page's words."""

import re

import pytest

from tests.browser.conftest import label_of, pick, unique_song, visit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

IN_VIEW = """selector => {
  const r = document.querySelector(selector).getBoundingClientRect();
  return r.top >= 0 && r.top < window.innerHeight && r.bottom > 0;
}"""
PARAMETER_NAMES = re.compile(r"seed_songs|seed_artists|seed_genres|min_|max_|target_|from and to")


def in_view(page, selector) -> bool:
    return page.evaluate(f"({IN_VIEW})({selector!r})")


def wait_in_view(page, selector):
    # Smooth scrolling takes a moment: wait for the end of it, not for the network.
    page.wait_for_function(f"({IN_VIEW})({selector!r})", timeout=5000)


def test_recommend_brings_its_results_into_view_and_marks_min_above_max_at_the_field(
    live_server, page, trained_demo_with_script_song
):
    seed = unique_song(energy__gte=0.4)
    visit(page, live_server.url + "/recommend/")
    assert not in_view(page, "#results")  # below the form: ~1,300 px down on a 900 px screen
    # No seed: said beside the seeds, not as the API's parameter.
    page.get_by_role("button", name="Get recommendations").click()
    seeds_error = page.locator("#seeds-error")
    seeds_error.wait_for()
    assert seeds_error.inner_text() == "Add at least one seed: a song, an artist or a genre."
    assert page.locator("#song-q").get_attribute("aria-invalid") == "true"
    pick(page, "Add a song", seed.name, label_of(seed))
    assert seeds_error.is_hidden()
    # A floor above its ceiling: marked at the field, in view, nothing asked.
    page.get_by_label("danceability minimum").fill("0.9")
    page.get_by_label("danceability maximum").fill("0.2")
    page.get_by_role("button", name="Get recommendations").click()
    error = page.locator("#error-danceability")
    error.wait_for()
    assert error.inner_text() == "The min (0.9) is above the max (0.2)."
    assert not PARAMETER_NAMES.search(error.inner_text())
    for box in ("danceability minimum", "danceability maximum"):
        assert page.get_by_label(box).get_attribute("aria-invalid") == "true"
    assert page.get_by_label("danceability target").get_attribute("aria-invalid") is None
    # Beside the field: on the same table row, and on screen.
    row = page.locator("tr[data-attribute=danceability]")
    assert row.locator("#error-danceability").count() == 1
    wait_in_view(page, "#error-danceability")
    assert page.locator("#results").get_attribute("data-state") == "invalid"
    # Fixed: the results come into view by themselves, the errors are gone.
    page.get_by_label("danceability maximum").fill("")
    page.get_by_role("button", name="Get recommendations").click()
    page.wait_for_function("document.getElementById('results').dataset.state === 'loaded'")
    wait_in_view(page, "#results-h")
    wait_in_view(page, "#track-table tbody tr")
    assert error.is_hidden() and page.locator("[aria-invalid=true]").count() == 0
    assert page.evaluate("document.activeElement.id") == "results-h"
    assert page.console_errors == []


def test_path_brings_its_result_into_view_and_says_what_is_wrong_beside_the_field(
    live_server, page, trained_demo_with_script_song
):
    start = unique_song(energy__lte=0.3)
    end = unique_song(energy__gte=0.85)
    visit(page, live_server.url + "/path/")
    page.get_by_role("button", name="Find the path").click()
    page.locator("#from-error").wait_for()
    assert page.locator("#from-error").inner_text().startswith("Choose a start song")
    pick(page, "Start song", start.name, label_of(start))
    pick(page, "End song", start.name, label_of(start))
    page.get_by_role("button", name="Find the path").click()
    assert page.locator("#from-error").is_hidden()
    assert page.locator("#to-error").inner_text() == "The end song is the start song: choose another end song."
    assert not PARAMETER_NAMES.search(page.locator("#to-error").inner_text())
    pick(page, "End song", end.name, label_of(end))
    page.get_by_label(re.compile("^Songs in the path")).fill("60")
    page.get_by_role("button", name="Find the path").click()
    assert page.locator("#length-error").inner_text() == "Enter a whole number of songs from 3 to 50."
    assert page.get_by_label(re.compile("^Songs in the path")).get_attribute("aria-invalid") == "true"
    page.get_by_label(re.compile("^Songs in the path")).fill("12")
    page.set_viewport_size({"width": 1280, "height": 600})  # the answer starts below a short screen
    page.evaluate("window.scrollTo(0, 0)")
    assert not in_view(page, "#path-list")
    page.get_by_role("button", name="Find the path").click()
    page.wait_for_function("document.getElementById('results').dataset.state === 'loaded'")
    wait_in_view(page, "#results-h")
    wait_in_view(page, "#path-list li")
    assert page.locator("#path-list li").count() == 12 and page.locator(".field-error:visible").count() == 0
    assert page.console_errors == []
