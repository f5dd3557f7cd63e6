"""Real headless Chromium (Debian's /usr/bin/chromium) driven by playwright.

Without Chromium the browser tests are skipped with a plain message, unless
MC_REQUIRE_BROWSER=1 (CI), where a missing browser is a failure.
"""

import os
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from django.contrib.auth import get_user_model

from songs.models import Song
from tests.conftest import SCRIPT_TITLE

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
PASSWORD = "pw-123456789"
# Playwright's sync API runs an event loop in this thread; the test's own
# ORM calls are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config, items):
    if Path(CHROMIUM).exists() or os.environ.get("MC_REQUIRE_BROWSER") == "1":
        return
    skip = pytest.mark.skip(reason=f"browser tests skipped: no Chromium at {CHROMIUM} (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    if not Path(CHROMIUM).exists():
        terminalreporter.write_line(
            f"NOTE: browser tests were SKIPPED: no Chromium at {CHROMIUM}. Install it with `apt-get install chromium`.",
            yellow=True,
        )


def screenshot(page, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot of the page as test-output/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"MC_REQUIRE_BROWSER=1 but there is no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        yield browser
        browser.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def track_requests(page) -> None:
    """Keep ``page.in_flight``: the requests the page has sent and not yet
    seen finish or fail (for :func:`settle`)."""
    page.in_flight = {}
    page.on("request", lambda req: page.in_flight.__setitem__(id(req), (time.monotonic(), req.method, req.url)))
    page.on("requestfinished", lambda req: page.in_flight.pop(id(req), None))
    page.on("requestfailed", lambda req: page.in_flight.pop(id(req), None))


def settle(page, timeout: float = 30.0) -> None:
    """Wait until no request of the page (tracked by :func:`track_requests`)
    has been in flight for 0.5 s, as Playwright's "networkidle"; past
    ``timeout``, fail naming the requests still open and for how long."""
    deadline = time.monotonic() + timeout
    quiet_since = None
    while True:
        now = time.monotonic()
        if page.in_flight:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= 0.5:
            return
        if now > deadline:
            pending = [f"{method} {url} ({now - t:.1f} s)" for t, method, url in page.in_flight.values()]
            raise AssertionError(f"{page.url}: requests still in flight after {timeout:.0f} s: {pending}")
        page.wait_for_timeout(50)  # lets the page's events arrive


@contextmanager
def recorded_page(browser, request, **context_options):
    """A fresh page (a context of its own, ``context_options``) that records
    console errors and tracks its requests; a screenshot of it is left when
    the test fails, and the live server is drained once it closes."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **context_options)
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda msg: msg.type == "error" and page.console_errors.append(msg.text))
    page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
    track_requests(page)
    try:
        yield page
        report = getattr(request.node, "report_call", None)
        if report is None or report.failed:
            screenshot(page, f"FAILED-{request.node.name}")
    finally:
        context.close()
        _live_server_drained()


@pytest.fixture
def page(browser, request):
    """A fresh page (:func:`recorded_page`); tests take the screenshots they show with ``screenshot``."""
    # bypass_csp: Playwright's wait_for_function evaluates its predicate as a
    # string in the page, which the Content-Security-Policy refuses (no
    # 'unsafe-eval'); tests/browser/test_csp.py checks the policy itself.
    with recorded_page(browser, request, bypass_csp=True) as page:
        # alert()/confirm() from injected markup would show up here (and is dismissed).
        page.dialogs = []
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        yield page


def _live_server_drained(timeout: float = 15.0) -> None:
    """Wait until the live server has finished every request the page sent.

    A test may end while the page's last requests (a chart's fetch, a
    prediction) are still running in the live server's threads; the database
    flush that follows each test would then meet a table a request still
    reads ("database table is locked" on SQLite) and fail this test's
    teardown and the next test's set-up. Closing the context closes the
    browser's connections; their handler threads end once their request is done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = [t for t in threading.enumerate() if "process_request_thread" in t.name and t.is_alive()]
        if not busy:
            return
        busy[0].join(timeout=0.1)


def assert_fits_a_phone(browser, url: str, shot: str) -> None:
    """Open ``url`` on a 375 px touch screen: no horizontal scroll, the main
    nav visible, no console error; a screenshot named ``shot``."""
    context = browser.new_context(
        viewport={"width": 375, "height": 740}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    phone = context.new_page()
    errors = []
    phone.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    phone.on("pageerror", lambda exc: errors.append(str(exc)))
    track_requests(phone)
    try:
        phone.goto(url)
        settle(phone)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{url} is {width}px wide on a 375px screen"
        assert phone.locator("nav[aria-label=Main]").is_visible()
        screenshot(phone, shot)
    finally:
        context.close()
    assert errors == []


# --- helpers of the page tests --------------------------------------------------------


@pytest.fixture
def alice(db):
    return get_user_model().objects.create_user("alice", password=PASSWORD)


def visit(page, url, *, charts=0, maps=0, state=None, settled=None):
    """Open a page; then wait for `maps` drawn maps, `charts` Plotly charts,
    and with `state`, until #<id> has a data-state (its data arrived).

    Without such a wait (or with settled=True, for tests that read the
    console after every request) it waits for the network to settle:
    500 ms with no request, which the explicit waits make needless."""
    page.goto(url)
    if settled or (settled is None and not (charts or maps or state)):
        settle(page)
    if maps:
        page.wait_for_function(f"document.querySelectorAll('[data-ready=\"1\"]').length >= {maps}")
    if charts:
        page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length >= {charts}")
    if state:
        page.wait_for_function(f"document.querySelector('{state}') && document.querySelector('{state}').dataset.state")


def sign_in(page, base, next_url="/playlists/"):
    """Sign in as alice on the site's login page, which then opens `next_url`."""
    page.goto(f"{base}/accounts/login/?next={quote(next_url, safe='/')}")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    # Discovery pages rewrite their query string in place once they load
    # (history.replaceState, parameters in the form's order): compare the
    # path and the parameters, not the exact string.
    want = urlsplit(base + next_url)
    page.wait_for_url(
        lambda url: (got := urlsplit(url)).path == want.path and parse_qs(got.query) == parse_qs(want.query)
    )
    settle(page)
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
    for song in Song.objects.exclude(name=SCRIPT_TITLE).filter(**filters).select_related("artist").order_by("id"):
        if Song.objects.filter(name=song.name, artist=song.artist).count() == 1:
            return song
    raise AssertionError("no such song")
