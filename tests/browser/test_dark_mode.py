"""Dark mode (prefers-color-scheme: dark) in Chromium: the page and its
charts switch colours and no text is unreadable — every piece of text, in
HTML and in the charts' SVG, is measured against the background it is drawn
on (WCAG contrast). Screenshots: test-output/screenshots/dark-*.png."""

import pytest

from tests.browser.conftest import screenshot, unique_song

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# For every visible element with text of its own (HTML) and every SVG text of the
# charts: its colour, the colour it sits on (first opaque background up the tree,
# translucent ones composited over it), the contrast ratio and whether it is large.
CONTRASTS = r"""() => {
  // rgb()/rgba(), and color(srgb r g b / a) as Chromium reports color-mix().
  const parse = c => {
    let m = c.match(/rgba?\(([^)]+)\)/);
    if (m) { const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; }
    m = c.match(/color\(srgb ([^)]+)\)/);
    if (m) { const p = m[1].split(/[ /]+/).filter(Boolean).map(Number); return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1]; }
    return null;
  };
  const over = (top, under) => top.slice(0, 3).map((v, i) => v * top[3] + under[i] * (1 - top[3])).concat([1]);
  const background = el => {
    const layers = [];
    for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let colour = [255, 255, 255, 1];
    if (!layers.length || layers[layers.length - 1][3] < 1) colour = parse(getComputedStyle(document.documentElement).backgroundColor) || colour;
    for (let i = layers.length - 1; i >= 0; i--) colour = over(layers[i], colour);
    return colour;
  };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  const out = [];
  const visible = el => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none" && Number(s.opacity) > 0.05; };
  for (const el of document.querySelectorAll("body *:not(script):not(style):not(svg *)")) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !visible(el) || el.closest(".visually-hidden, .skip")) continue;
    const s = getComputedStyle(el);
    let fg = parse(s.color); const bg = background(el);
    if (fg[3] < 1) fg = over(fg, bg);
    const size = parseFloat(s.fontSize), bold = Number(s.fontWeight) >= 700;
    out.push({ kind: "html", text: el.textContent.trim().slice(0, 40), tag: el.tagName, ratio: ratio(fg, bg),
      large: size >= 24 || (bold && size >= 18.66) });
  }
  for (const t of document.querySelectorAll(".js-plotly-plot .main-svg text")) {
    if (!t.textContent.trim() || !visible(t)) continue;
    const fill = parse(getComputedStyle(t).fill);
    if (!fill || fill[3] === 0) continue;
    const bg = background(t.closest(".js-plotly-plot"));
    out.push({ kind: "chart", text: t.textContent.trim().slice(0, 40), tag: "text", ratio: ratio(over(fill, bg), bg), large: false });
  }
  return out;
}"""


def contrasts(page):
    return page.evaluate(CONTRASTS)


def unreadable(items):
    """Text below WCAG AA: 4.5:1, or 3:1 for large text."""
    return [i for i in items if i["ratio"] < (3.0 if i["large"] else 4.5)]


@pytest.fixture
def dark_page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="dark", bypass_csp=True)
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda msg: msg.type == "error" and page.console_errors.append(msg.text))
    page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
    yield page
    context.close()


def test_dark_mode_pages_and_charts_have_readable_text(live_server, dark_page, trained_demo_with_script_song):
    page = dark_page
    start, end = unique_song(energy__lte=0.3), unique_song(energy__gte=0.85)
    seed = unique_song(energy__gte=0.5)
    pages = {
        "path": (f"/path/?from={start.external_id}&to={end.external_id}&length=10", "#path-chart[data-ready='1']"),
        "recommend": (f"/recommend/?seed_songs={seed.external_id}&limit=10", "#results[data-state=loaded]"),
        "dashboard": ("/", "#map[data-ready='1']"),
    }
    for name, (url, ready) in pages.items():
        page.goto(live_server.url + url)
        page.wait_for_selector(ready)
        # The scheme is dark: a dark page background and light body text.
        body = page.evaluate("[getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).color]")
        assert body == ["rgb(21, 23, 27)", "rgb(230, 232, 236)"], (name, body)
        items = contrasts(page)
        html, chart = [i for i in items if i["kind"] == "html"], [i for i in items if i["kind"] == "chart"]
        assert len(html) > 20 and (name == "recommend" or len(chart) > 5), (name, len(html), len(chart))
        screenshot(page, f"dark-{name}")
        assert unreadable(items) == [], (name, [(i["text"], round(i["ratio"], 2)) for i in unreadable(items)])
    # The path chart's lines are the dark scheme's, on the dark card.
    page.goto(live_server.url + pages["path"][0])
    page.wait_for_selector(pages["path"][1])
    lines = page.evaluate("document.getElementById('path-chart').data.map(t => t.line.color)")
    assert lines == ["#ff8c5a", "#69db7c", "#74c0fc", "#d0a4ff"]
    assert page.console_errors == []


def test_light_mode_stays_light_and_readable(live_server, page, trained_demo_with_script_song):
    start, end = unique_song(energy__lte=0.3), unique_song(energy__gte=0.85)
    page.goto(f"{live_server.url}/path/?from={start.external_id}&to={end.external_id}&length=10")
    page.wait_for_selector("#path-chart[data-ready='1']")
    body = page.evaluate("[getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).color]")
    assert body == ["rgb(246, 247, 249)", "rgb(29, 31, 35)"]
    bad = unreadable(contrasts(page))
    assert bad == [], [(i["text"], round(i["ratio"], 2)) for i in bad]
    screenshot(page, "light-path")
