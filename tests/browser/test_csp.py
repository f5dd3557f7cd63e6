"""The pages work under the Content-Security-Policy: in real Chromium, no
violation is reported (console or `securitypolicyviolation` events) and the
Plotly charts render, with the policy's header on every response."""

import time

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from playwright.sync_api import Error as PlaywrightError

from clustering import services
from songs.services import songs_import_file
from tests.browser.conftest import recorded_page, settle
from tests.conftest import cluster_members

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DEMO = settings.BASE_DIR / "fixtures" / "demo_catalog.csv"
PASSWORD = "pw-123456789"

# Recorded before any script of the page runs.
LISTEN = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""

# Charts Plotly drew: its SVG is there and it holds the traces given.
DRAWN = (
    "[...document.querySelectorAll('.js-plotly-plot')]"
    ".filter((gd) => gd.querySelector('.main-svg') && gd._fullData && gd._fullData.length)"
)


@pytest.fixture
def trained(db):
    assert songs_import_file(path=DEMO).status == "succeeded"
    run = services.training_run_create(k=5, enqueue=False)
    services.training_run_claim(run_id=run.pk)
    run = services.training_run_execute(run_id=run.pk)
    assert run.status == "succeeded" and run.is_active
    return run


@pytest.fixture
def csp_page(browser, request):
    """A page that enforces the policy (the suite's `page` bypasses it)."""
    with recorded_page(browser, request) as page:
        yield from _listening(page)


def _listening(page):
    page.add_init_script(LISTEN)
    page.csp_console = []
    page.on("console", lambda msg: "Content Security Policy" in msg.text and page.csp_console.append(msg.text))
    yield page


def wait_js(page, expression, timeout=20.0):
    """Poll a JS expression through page.evaluate: Playwright's
    wait_for_function evaluates strings in the page, which the policy
    (rightly) refuses as eval."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if page.evaluate(expression):
                return
        except PlaywrightError as exc:  # the page is navigating (a reload): ask again
            if "context was destroyed" not in str(exc):
                raise
        assert time.monotonic() < deadline, f"not true within {timeout} s: {expression}"
        time.sleep(0.1)


def open_page(page, url, *, charts=0, ready=None):
    """Open ``url`` and check its policy; then wait for what its scripts
    fetch (admin pages fetch nothing after their load event, which goto waits for)."""
    response = page.goto(url)
    policy = response.headers.get("content-security-policy", "")
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    assert directives["script-src"].startswith("'self'") and "unsafe-inline" not in directives["script-src"], policy
    assert directives["object-src"] == "'none'" and directives["default-src"] == "'self'", policy
    if "/api/docs/" not in url:  # Swagger UI injects <style> elements
        assert "unsafe-inline" not in directives["style-src"], policy
    if "/admin/" not in url:
        settle(page)
    if charts:
        # Plotly drew its SVG: the chart is there, not just its container.
        wait_js(page, f"{DRAWN}.length >= {charts}")
    if ready:
        wait_js(page, ready)


def assert_no_violation(page, url):
    events = page.evaluate("window.__csp")
    assert events == [] and page.csp_console == [], (url, events, page.csp_console)
    assert page.console_errors == [], (url, page.console_errors)


def test_pages_and_charts_work_under_the_policy(live_server, csp_page, trained):
    page, base = csp_page, live_server.url
    cluster = trained.clusters.order_by("-size").first()
    song = cluster_members(cluster).order_by("id").first()
    pages = [
        ("/", {"charts": 3}),
        (f"/clusters/{cluster.pk}/", {"charts": 1}),
        (f"/songs/{song.external_id}/", {"charts": 2}),
        ("/predict/", {"charts": 2}),
        (f"/recommend/?seed_songs={song.external_id}", {"ready": "!!document.getElementById('results').dataset.state"}),
        ("/path/", {}),
        ("/runs/", {}),
        ("/playlists/", {}),
        ("/search/?q=a", {}),
    ]
    for url, waits in pages:
        open_page(page, base + url, **waits)
        assert_no_violation(page, url)
    # Cluster colours no longer come from style= attributes, yet they apply.
    open_page(page, base + "/", charts=3)
    colour = page.evaluate("getComputedStyle(document.querySelector('.card')).getPropertyValue('--cluster').trim()")
    assert colour == page.locator(".card").first.get_attribute("data-cluster-colour")
    # Hover labels (Plotly rich text) on the map.
    box = page.locator("#map").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.move(box["x"] + box["width"] / 3, box["y"] + box["height"] / 3)
    assert_no_violation(page, "/ after hovering the map")
    # The live prediction (a fetch and a chart update) works too.
    open_page(page, base + "/predict/", charts=2)
    page.locator("input[type=range]").first.fill("0.9")
    settle(page)
    assert_no_violation(page, "/predict/ after a slider move")


def test_api_docs_and_admin_work_under_the_policy(live_server, csp_page, trained):
    page, base = csp_page, live_server.url
    open_page(page, base + "/api/docs/", ready="document.querySelectorAll('.opblock').length > 5")
    assert_no_violation(page, "/api/docs/")
    get_user_model().objects.create_superuser("ops", "ops@example.com", PASSWORD)
    open_page(page, base + "/admin/login/?next=/admin/")
    page.get_by_label("Username").fill("ops")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")
    for url in ("/admin/", f"/admin/clustering/trainingrun/{trained.pk}/change/", "/admin/songs/song/"):
        open_page(page, base + url)
        assert_no_violation(page, url)


def test_a_live_run_page_reloads_itself_without_an_inline_script(live_server, csp_page, trained):
    page, base = csp_page, live_server.url
    run = services.training_run_create(k=3, enqueue=False)  # stays queued: the page keeps reloading
    get_user_model().objects.create_superuser("ops", "ops@example.com", PASSWORD)
    open_page(page, base + "/admin/login/?next=/admin/")
    page.get_by_label("Username").fill("ops")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")
    open_page(page, base + f"/admin/clustering/trainingrun/{run.pk}/change/")
    page.evaluate("window.__marker = 'before reload'")
    wait_js(page, "window.__marker === undefined", timeout=10)  # a fresh document
    assert_no_violation(page, "a live run's admin page")


def test_the_static_plotly_stylesheet_matches_the_bundle(browser):
    """static/css/plotly.css holds the rules plotly.js would inject inline:
    after an upgrade of plotly, regenerate it from this test's output."""
    bundle = (settings.BASE_DIR / "static" / "css" / "plotly.css").read_text()
    js = next(path for _, path in [("", p) for p in settings.STATICFILES_DIRS[1][1].glob("plotly.min.js")]).read_text()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_content("<html><head></head><body></body></html>")
        page.add_script_tag(content=js)
        rules = page.evaluate(
            "[...document.getElementById('plotly.js-style-global').sheet.cssRules].map(r => r.cssText).reverse()"
        )
    finally:
        context.close()
    expected = [line for line in bundle.splitlines() if line and not line.startswith(("/*", " *"))]
    assert rules == expected, "\n".join(rules)
