"""The browsing pages in real headless Chromium: every page without console
errors, map click-through, escaping, retraining from admin and the runs page,
phone layout. Screenshots land in test-output/screenshots/."""

import re

import pytest
from django.contrib.auth import get_user_model

from clustering.models import TrainingRun
from songs.models import Song
from tests.browser.conftest import PASSWORD, assert_fits_a_phone, screenshot, visit
from tests.conftest import SCRIPT_TITLE, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

XSS = SCRIPT_TITLE


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_superuser("ops", "ops@example.com", PASSWORD)


def log_in(page, base):
    page.goto(base + "/admin/login/?next=/admin/")
    page.get_by_label("Username").fill("ops")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")


def map_point_position(page, selector="#map", isolated=True):
    """Pixel position and song id of a point on a Plotly map: the most
    isolated point, so a click there cannot land on a neighbour."""
    return page.evaluate(
        """([selector, isolated]) => {
          const gd = document.querySelector(selector);
          const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
          const pts = [];
          gd.data.forEach((t) => (t.customdata || []).forEach((id, i) => pts.push({
            id, x: box.left + xa._offset + xa.l2p(t.x[i]), y: box.top + ya._offset + ya.l2p(t.y[i]), name: t.name })));
          let best = pts[0], bestGap = -1;
          if (isolated) for (const p of pts) {
            let gap = Infinity;
            for (const q of pts) if (q !== p) gap = Math.min(gap, Math.hypot(p.x - q.x, p.y - q.y));
            // Stay inside the plot area, away from the legend.
            const inside = p.x > box.left + xa._offset + 10 && p.x < box.left + xa._offset + xa._length - 10
              && p.y > box.top + ya._offset + 10 && p.y < box.top + ya._offset + ya._length - 10;
            if (inside && gap > bestGap) { best = p; bestGap = gap; }
          }
          return {...best, gap: bestGap};
        }""",
        [selector, isolated],
    )


# --- every page -----------------------------------------------------------------------


def test_every_page_loads_without_console_errors(live_server, page, scanned_demo_with_script_song):
    base = live_server.url
    song = Song.objects.get(name=XSS)
    cluster = scanned_demo_with_script_song.clusters.order_by("-size").first()
    pages = [
        ("dashboard", "/", {"maps": 1, "charts": 3}),
        ("search", "/search/?q=Lantern", {}),
        ("cluster", f"/clusters/{cluster.pk}/", {"charts": 1}),
        ("song", f"/songs/{song.external_id}/", {"maps": 1, "charts": 2}),
        ("predict", "/predict/", {"maps": 1, "charts": 2}),
        ("runs", "/runs/", {}),
        ("recommend", "/recommend/", {}),
        ("path", "/path/", {}),
        ("playlists", "/playlists/", {}),
    ]
    for name, url, waits in pages:
        visit(page, base + url, **waits, settled=True)
        assert page.locator("h1").count() == 1, url
        assert page.locator("nav[aria-label=Main] a").count() == 9
        screenshot(page, f"page-{name}")
        assert page.console_errors == [], (url, page.console_errors)
    # The dashboard has a card per cluster and the k-scan charts.
    visit(page, base + "/", maps=1, charts=3)
    assert page.locator(".card").count() == scanned_demo_with_script_song.n_clusters
    assert page.locator("#elbow .js-plotly-plot, #elbow.js-plotly-plot").count() == 1
    assert page.locator("#silhouette.js-plotly-plot").count() == 1
    # The song page loads its similar songs (or says quietly why not).
    visit(page, base + f"/songs/{song.external_id}/", maps=1)
    similar = page.locator("#similar")
    if scanned_demo_with_script_song.index_path:
        page.wait_for_function("document.querySelector('#similar').dataset.state")
        assert similar.get_attribute("data-state") == "loaded", similar.inner_text()
        assert page.locator("#similar li").count() == 10
    else:
        assert "not available" in similar.inner_text()
    assert page.console_errors == [] and page.dialogs == []


def test_pages_of_an_empty_site(live_server, page):
    for url, text in (
        ("/", "No songs yet"),
        ("/search/", "No songs yet"),
        ("/predict/", "No model yet"),
        ("/runs/", "No training run yet"),
    ):
        visit(page, live_server.url + url)
        assert page.get_by_text(text).count() >= 1, url
    screenshot(page, "page-runs-empty")
    assert page.console_errors == []


def test_song_with_a_script_title_shows_as_text(live_server, page, scanned_demo_with_script_song):
    song = Song.objects.get(name=XSS)
    for url in (
        "/search/?q=alert",
        f"/clusters/{song.cluster_id}/?sort=name",
        f"/songs/{song.external_id}/",
        f"/clusters/{song.cluster_id}/?q=alert",
    ):
        visit(page, live_server.url + url)
        assert page.get_by_text(XSS, exact=True).count() >= 1, url
        assert page.get_by_text("Mallory <b>&</b> Co").count() >= 1, url
        assert page.locator("b", has_text="&").count() == 0  # the artist's <b> stayed text
    visit(page, live_server.url + f"/songs/{song.external_id}/", maps=1)
    assert page.locator("#song-title").inner_text() == XSS
    # Its hover label on the dashboard map is text too.
    visit(page, live_server.url + "/", maps=1)
    # Zoom in on it (as a user would) so no neighbour sits under the cursor.
    page.locator("#map").scroll_into_view_if_needed()
    point = page.evaluate(
        """async (id) => {
        const gd = document.getElementById('map');
        for (const t of gd.data) {
          const i = (t.customdata || []).indexOf(id);
          if (i < 0) continue;
          const x = t.x[i], y = t.y[i], e = 0.002;
          await Plotly.relayout(gd, {'xaxis.range': [x - e, x + e], 'yaxis.range': [y - e, y + e]});
          const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
          return {x: box.left + xa._offset + xa.l2p(x), y: box.top + ya._offset + ya.l2p(y)};
        }
        return null;
    }""",
        song.external_id,
    )
    assert point
    page.mouse.move(point["x"] - 30, point["y"] - 30)
    page.mouse.move(point["x"], point["y"], steps=5)
    label = page.locator(".hoverlayer .hovertext")
    label.wait_for()
    assert XSS in label.text_content() and "Mallory <b>&</b> Co" in label.text_content()
    assert page.locator(".hoverlayer script").count() == 0
    # The predict page's song picker lists it as text too.
    visit(page, live_server.url + "/predict/", maps=1)
    page.get_by_label("Find a song by title or artist").fill("alert")
    picker = page.locator("#preset-results button")
    picker.first.wait_for()
    assert picker.first.inner_text() == f"{XSS} — Mallory <b>&</b> Co"
    screenshot(page, "escaping-predict-picker")
    assert page.dialogs == [] and page.console_errors == []


# --- the map --------------------------------------------------------------------------


def test_clicking_a_point_on_the_dashboard_map_opens_that_song(live_server, page, scanned_demo_with_script_song):
    visit(page, live_server.url + "/", maps=1)
    page.locator("#map").scroll_into_view_if_needed()
    point = map_point_position(page)
    assert point["gap"] > 6, point  # far enough from its neighbours to be hit alone
    page.mouse.move(point["x"], point["y"])
    label = page.locator(".hoverlayer .hovertext")
    label.wait_for()
    song = Song.objects.select_related("artist").get(external_id=point["id"])
    hover = label.text_content()  # SVG: text of the tspans
    assert song.name in hover and song.artist.name in hover and song.cluster_name in hover
    page.mouse.click(point["x"], point["y"])
    page.wait_for_url(f"**/songs/{point['id']}/")
    assert page.locator("h1").inner_text() == song.name
    assert page.console_errors == []


# --- retraining -----------------------------------------------------------------------


def test_staff_retrains_from_admin_and_sees_it_complete(
    live_server, page, demo_catalog_with_script_song, staff, task_runner
):
    """Through a real Celery worker when a broker and Postgres are configured
    (tests/conftest.py), eagerly in-process in the embedded mode."""
    log_in(page, live_server.url)
    page.goto(live_server.url + "/admin/clustering/trainingrun/")
    page.get_by_role("link", name="Retrain").click()
    page.wait_for_url("**/trainingrun/retrain/")
    page.get_by_label("K:").fill("3")
    screenshot(page, "admin-retrain-form")
    page.get_by_role("button", name="Queue training run").click()
    page.wait_for_url(re.compile(r".*/admin/clustering/trainingrun/\d+/change/"))
    run_id = int(re.search(r"/trainingrun/(\d+)/change/", page.url).group(1))
    # The change page reloads itself while the run is queued or running.
    page.wait_for_function(
        "() => /succeeded|failed/i.test(document.querySelector('.field-status .readonly')?.innerText || '')",
        timeout=180_000,
    )
    run = TrainingRun.objects.get(pk=run_id)
    assert run.status == "succeeded", run.error
    assert run.is_active and run.n_clusters == 3 and run.created_by.username == "ops"
    assert page.locator("progress").first.get_attribute("value") == "100"
    screenshot(page, "admin-retrain-done")
    # The site shows the new model.
    visit(page, live_server.url + "/", maps=1)
    assert page.locator(".card").count() == 3
    assert f"run #{run_id}" in page.locator("#model-line").inner_text()
    if task_runner == "worker":
        assert run.timings  # written by the worker process
    assert page.console_errors == []


def test_staff_retrains_from_the_runs_page_with_a_progress_bar(
    live_server, page, demo_catalog_with_script_song, staff, task_runner
):
    log_in(page, live_server.url)
    visit(page, live_server.url + "/runs/")
    page.evaluate("window.__sameDocument = 'still here'")
    page.get_by_label("Clusters (k)").select_option("4")
    page.get_by_role("button", name="Retrain").click()
    status = page.locator("#retrain-status")
    status.wait_for()
    page.wait_for_function(
        "() => ['succeeded', 'failed', 'error'].includes(document.getElementById('retrain-status').dataset.state)",
        timeout=180_000,
    )
    assert status.get_attribute("data-state") == "succeeded", page.locator("#retrain-text").inner_text()
    assert page.locator("#retrain-progress").get_attribute("value") == "100"
    assert "k = 4" in page.locator("#retrain-text").inner_text()
    screenshot(page, "runs-retrained")
    run = wait_for(lambda: TrainingRun.objects.filter(status="succeeded").first())
    assert run.is_active and run.n_clusters == 4
    # The list below was refreshed in place: the new run is there, active.
    assert page.evaluate("window.__sameDocument") == "still here"
    row = page.locator(f"tr[data-run='{run.pk}']")
    assert "succeeded" in row.inner_text() and "active" in row.inner_text()
    assert page.locator("#empty-runs").count() == 0
    assert page.console_errors == []


def test_anonymous_visitors_see_no_retrain_button(live_server, page, scanned_demo_with_script_song):
    visit(page, live_server.url + "/runs/")
    assert page.locator("#retrain-form").count() == 0
    assert page.locator(f"tr[data-run='{scanned_demo_with_script_song.pk}']").count() == 1


# --- phone ----------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/", "/predict/", "/search/?q=Lantern", "cluster"])
def test_pages_fit_a_phone_screen(live_server, browser, scanned_demo_with_script_song, url):
    if url == "cluster":
        url = f"/clusters/{scanned_demo_with_script_song.clusters.order_by('-size').first().pk}/"
    assert_fits_a_phone(
        browser, live_server.url + url, f"phone-{url.strip('/').split('/')[0].split('?')[0] or 'dashboard'}"
    )
