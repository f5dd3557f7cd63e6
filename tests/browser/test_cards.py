"""The dashboard's cluster cards in real headless Chromium: top genres, three
example songs by different artists, one chart scale on every card, and why
k=auto chose its k."""

import pytest

from clustering.models import Cluster
from songs.models import Song
from tests.browser.conftest import screenshot, settle, visit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_cards_show_genres_examples_and_comparable_charts(live_server, page, scanned_demo_with_script_song):
    run = scanned_demo_with_script_song
    clusters = {c.pk: c for c in Cluster.objects.filter(run=run)}
    visit(page, live_server.url + "/", maps=1, charts=3 + len(clusters))
    cards = page.locator(".card")
    assert cards.count() == len(clusters)
    for i in range(cards.count()):
        card = cards.nth(i)
        pk = int(card.locator(".mini-chart").get_attribute("data-cluster"))
        cluster = clusters[pk]
        # Top genres: the cluster's most common genres, as the profile counted them.
        expected = [g["genre"] for g in cluster.profile["top_genres"][:3]]
        assert expected, f"cluster {cluster.name} has no genres in a catalog with genres"
        tags = card.locator(".card-genres .genre-tag")
        assert [tags.nth(j).inner_text().rsplit(" ", 2)[0] for j in range(tags.count())] == expected
        # Three example songs near the centroid, by three different artists.
        links = card.locator(".card-examples li a")
        assert links.count() == 3, card.inner_text()
        ids = [link.get_attribute("href").strip("/").split("/")[-1] for link in links.all()]
        songs = [Song.objects.get(external_id=i) for i in ids]
        assert all(s.cluster_id == pk for s in songs)
        assert len({s.artist_id for s in songs}) == 3
        assert {s.pk for s in songs} <= set(cluster.profile["representative_song_ids"])
    # Every card's chart spans the same σ range, wide enough for every bar.
    ranges = page.evaluate(
        "() => [...document.querySelectorAll('.mini-chart')].map((el) => el._fullLayout.yaxis.range)"
    )
    assert len(ranges) == len(clusters) and all(r == ranges[0] for r in ranges), ranges
    reach = max(abs(v) for c in clusters.values() for v in c.profile["z"].values())
    assert ranges[0][1] >= reach and ranges[0][0] == -ranges[0][1]
    # The k scan says why this k.
    why = page.locator("#k-choice")
    assert f"k = {run.n_clusters}" in why.inner_text() and "silhouette" in why.inner_text()
    screenshot(page, "dashboard-cards")
    # An example opens its song page.
    first = cards.nth(0).locator(".card-examples li a").first
    name = first.inner_text()
    first.click()
    page.wait_for_url("**/songs/**")
    settle(page)
    assert page.locator("h1").inner_text().startswith(name)
    assert page.console_errors == []
