"""The browsing pages (clustering/views/browse.py) through Django's test client:
dashboard, map.json and its sample, cluster, song and runs pages; status,
content, empty states, escaping and the queries they make (no COUNT(*), no OFFSET)."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clustering import selectors as engine_selectors
from clustering.models import Cluster
from songs.features import FEATURE_NAMES, FEATURES_BY_NAME
from songs.models import Song
from songs.services import songs_import_file
from tests.conftest import (
    SCRIPT_TITLE,
    active_labels,
    cluster_members,
    flagship_rows,
    html_of,
    page_data,
    song_twin,
    train_run,
    xss_song,
)
from tests.conftest import assert_title_escaped as assert_escaped

pytestmark = pytest.mark.django_db

XSS = SCRIPT_TITLE


train = train_run


# --- dashboard and map ----------------------------------------------------------------


def test_dashboard_shows_the_active_model_cards_and_charts(client, trained_demo_with_script_song):
    html = html_of(client.get("/"))
    line = re.search(r'<p class="model-line".*?</p>', html, re.DOTALL).group(0)
    assert "K-Means" in line and "k = 4" in line and "3,001 songs" in line
    assert f"{trained_demo_with_script_song.metrics['silhouette']:.3f}" in line and "trained" in line
    clusters = list(trained_demo_with_script_song.clusters.order_by("label"))
    for c in clusters:
        assert f'href="/clusters/{c.pk}/"' in html and c.name.replace("&", "&amp;") in html
    assert html.count('class="mini-chart"') == 4
    data = page_data(html)
    assert [c["id"] for c in data["clusters"]] == [c.pk for c in clusters]
    assert set(data["clusters"][0]["z"]) == set(FEATURE_NAMES)
    # k was fixed: no scan, and the page says so.
    assert data["k_scan"] == [] and "did not scan k" in html
    assert 'src="/static/vendor/plotly/plotly.min.js"' in html


def test_dashboard_k_scan_charts_when_k_was_scanned(client, trained_demo_with_script_song):
    run = train(k="auto", scan_k_range=(2, 5), scan_sample_size=500)
    assert run.is_active and len(run.k_scan) == 4
    html = html_of(client.get("/"))
    assert 'id="elbow"' in html and 'id="silhouette"' in html and "did not scan k" not in html
    assert [r["k"] for r in page_data(html)["k_scan"]] == [2, 3, 4, 5]


def test_map_json_is_a_bounded_sample_of_the_labelled_catalog(client, trained_demo_with_script_song):
    data = client.get("/map.json").json()
    assert data["run"] == trained_demo_with_script_song.pk
    n = len(data["x"])
    assert n == 3001  # a small catalog is drawn whole
    assert len(data["y"]) == len(data["cluster"]) == len(data["id"]) == len(data["name"]) == len(data["artist"]) == n
    assert set(data["cluster"]) == set(trained_demo_with_script_song.clusters.values_list("id", flat=True))
    assert [c["id"] for c in data["clusters"]] == list(
        trained_demo_with_script_song.clusters.order_by("label").values_list("id", flat=True)
    )
    # A big catalog is sampled by random keys: bounded, distinct, labelled, the same for every process.
    sample = engine_selectors.map_sample(run=trained_demo_with_script_song, size=200)
    assert len(sample["id"]) == 200 and len(set(sample["id"])) == 200
    cache.clear()
    assert engine_selectors.map_sample(run=trained_demo_with_script_song, size=200)["id"] == sample["id"]
    by_id = dict(Song.objects.filter(external_id__in=sample["id"]).values_list("external_id", "id"))
    labelled = active_labels()
    assert all(labelled[by_id[i]].cluster_id == c for i, c in zip(sample["id"], sample["cluster"]))


def test_map_sample_tops_up_when_ids_have_gaps(trained_demo_with_script_song):
    # Every other song gone: the first draw hits about half; later draws fill up.
    Song.objects.filter(id__in=list(Song.objects.values_list("id", flat=True)[::2])).delete()
    sample = engine_selectors.map_sample(run=trained_demo_with_script_song, size=1000)
    assert len(sample["id"]) == 1000 and len(set(sample["id"])) == 1000


# --- cluster page ---------------------------------------------------------------------


def test_cluster_page_profile_representatives_exports(client, trained_demo_with_script_song):
    cluster = trained_demo_with_script_song.clusters.order_by("-size").first()
    html = html_of(client.get(f"/clusters/{cluster.pk}/"))
    assert cluster.description.replace("+", "+") in html
    assert f"{cluster.size:,} songs" in html
    top = cluster.profile["top_features"][0]["feature"]
    assert re.search(rf"★ {FEATURES_BY_NAME[top].display}", html)
    # The profile table speaks a listener's words ("length", "mood"), not column names.
    table = html[html.index('<table class="features">') :]
    table = table[: table.index("</table>")]
    assert "length" in table and "mood" in table
    assert "duration_ms" not in table and "valence" not in table
    for fmt in ("m3u", "csv", "json"):
        assert f'href="/api/clusters/{cluster.pk}/playlist/?fmt={fmt}"' in html
    reps = Song.objects.filter(id__in=cluster.profile["representative_song_ids"])
    assert reps and all(f'href="/songs/{s.external_id}/"' in html for s in reps)
    assert set(page_data(html)["z"]) == set(FEATURE_NAMES)


def table_songs(html: str) -> list[str]:
    table = re.search(r'id="cluster-songs".*?<tbody>(.*?)</tbody>', html, re.DOTALL)
    return re.findall(r'href="/songs/([^/"]+)/"', table.group(1)) if table else []


def walk(client, url, params):
    """Every song of every page, following the Next links."""
    seen, cursor = [], None
    while True:
        html = html_of(client.get(url, {**params, **({"after": cursor} if cursor else {})}))
        seen += table_songs(html)
        match = re.search(r'rel="next" href="\?[^"]*after=([^"&]+)"', html)
        if not match:
            return seen
        cursor = match.group(1)


@pytest.mark.parametrize("sort,desc", [("energy", True), ("name", False), ("tempo", False)])
def test_cluster_songs_sorted_paginated_complete(client, trained_demo_with_script_song, sort, desc):
    cluster = trained_demo_with_script_song.clusters.order_by("-size").first()
    url = f"/clusters/{cluster.pk}/"
    seen = walk(client, url, {"sort": sort, "dir": "desc" if desc else "asc"})
    order = [f"-{sort}", "-id"] if desc else [sort, "id"]
    expected = list(cluster_members(cluster).order_by(*order).values_list("external_id", flat=True))
    assert len(expected) == cluster.size > 50
    assert seen == expected  # ties (equal energies) neither repeat nor vanish across pages


def test_cluster_sorts_only_by_the_columns_it_shows(client, trained_demo_with_script_song):
    cluster = trained_demo_with_script_song.clusters.order_by("-size").first()
    html = html_of(client.get(f"/clusters/{cluster.pk}/", {"sort": "loudness"}))
    options = re.findall(
        r'<option value="([a-z_]+)"', re.search(r'<select id="sort".*?</select>', html, re.DOTALL).group(0)
    )
    assert options == ["id", "name", "danceability", "energy", "valence", "acousticness", "tempo"]
    catalog_order = list(cluster_members(cluster).order_by("id").values_list("external_id", flat=True)[:50])
    assert table_songs(html) == catalog_order  # an unknown sort is catalog order


def test_cluster_page_search_sort_escaping_and_no_count(client, trained_demo_with_script_song):
    song = xss_song()
    url = f"/clusters/{song.cluster_id}/"
    with CaptureQueriesContext(connection) as queries:
        html = html_of(client.get(url, {"sort": "name"}))
    sql = " ".join(q["sql"].upper() for q in queries.captured_queries)
    assert "COUNT(" not in sql and "OFFSET" not in sql
    assert_escaped(html)
    assert table_songs(html)[0] == song.external_id  # "<" sorts first
    assert table_songs(html_of(client.get(url, {"q": "alert"}))) == [song.external_id]
    assert "No song of this cluster matches" in html_of(client.get(url, {"q": "zzzzqqq"}))
    assert 'aria-sort="ascending"' in html
    assert client.get(url, {"sort": "nonsense", "after": "bad"}).status_code == 200


def test_cluster_without_songs_shows_an_empty_state(client, trained_demo_with_script_song):
    empty = Cluster.objects.create(run=trained_demo_with_script_song, label=99, name="Nobody Here", size=0, profile={})
    html = html_of(client.get(f"/clusters/{empty.pk}/"))
    assert "This cluster has no songs" in html and "Nobody Here" in html
    assert "playlist/?fmt=m3u" not in html


def test_cluster_of_an_inactive_run_says_so(client, trained_demo_with_script_song):
    old = trained_demo_with_script_song.clusters.first()
    train(k=3)
    html = html_of(client.get(f"/clusters/{old.pk}/"))
    assert "not the active model" in html and "This cluster has no songs" in html


# --- song page ------------------------------------------------------------------------


def test_song_page_features_map_similar_radio(client, trained_demo_with_script_song):
    song = xss_song()
    html = html_of(client.get(f"/songs/{song.external_id}/"))
    assert_escaped(html)
    assert "Mallory &lt;b&gt;&amp;&lt;/b&gt; Co" in html
    assert f'href="/clusters/{song.cluster_id}/"' in html
    assert f'href="/playlists/radio/{song.external_id}/"' in html
    assert 'id="features-chart"' in html and 'id="song-map"' in html
    assert '<section id="similar"' in html
    table = html[html.index('<table class="features">') :]
    table = table[: table.index("</table>")]
    assert ">length</th>" in table and "duration_ms" not in table
    data = page_data(html)
    assert {f["name"]: f["label"] for f in data["features"]}["duration_ms"] == "length"
    assert data["song"]["name"] == XSS and data["song"]["map"] == {"x": song.map_x, "y": song.map_y}
    assert data["cluster"]["id"] == song.cluster_id
    # Catalog statistics derived from the profiles match the songs'.
    for f in ("energy", "tempo", "loudness"):
        values = list(Song.objects.values_list(f, flat=True))
        mean = sum(values) / len(values)
        std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
        assert data["stats"][f]["mean"] == pytest.approx(mean, rel=1e-9)
        assert data["stats"][f]["std"] == pytest.approx(std, rel=1e-2)
    if trained_demo_with_script_song.index_path:
        # At most two per artist: one prolific artist near a song would fill the list.
        assert f'data-url="/api/songs/{song.external_id}/similar/?limit=10&amp;max_per_artist=2"' in html


def test_song_added_after_training_is_in_its_cluster_at_once(client, trained_demo_with_script_song, catalog_csv):
    songs_import_file(path=catalog_csv(flagship_rows(1, start=9500)))
    song = Song.objects.get(external_id=flagship_rows(1, start=9500)[0]["id_songs"])
    assert song.cluster_id in set(trained_demo_with_script_song.clusters.values_list("pk", flat=True))
    html = html_of(client.get(f"/songs/{song.external_id}/"))
    assert f'href="/clusters/{song.cluster_id}/"' in html and 'id="song-map"' in html
    assert "Not in a cluster yet" not in html


def test_a_song_the_active_run_has_no_label_for_is_not_in_a_cluster(client, trained_demo_with_script_song):
    song = song_twin(xss_song(), "unlabelled-1", name="Made by hand")  # not through an import: no label
    html = html_of(client.get(f"/songs/{song.external_id}/"))
    assert "Not in a cluster yet" in html and 'id="song-map"' not in html


def test_song_page_links_to_its_radio(client, trained_demo_with_script_song):
    song = xss_song()
    html = html_of(client.get(f"/songs/{song.external_id}/"))
    assert f'href="/playlists/radio/{song.external_id}/"' in html
    assert client.get(f"/playlists/radio/{song.external_id}/").status_code == 200


# --- runs -----------------------------------------------------------------------------


def test_runs_page_lists_runs_and_retrain_for_staff_only(client, trained_demo_with_script_song):
    html = html_of(client.get("/runs/"))
    assert f"#{trained_demo_with_script_song.pk}" in html and "succeeded" in html and "active" in html
    assert f"{trained_demo_with_script_song.metrics['silhouette']:.3f}" in html and "3,001" in html
    assert 'id="retrain-form"' not in html
    staff = get_user_model().objects.create_user("ops", password="pw-123456789", is_staff=True)
    client.force_login(staff)
    assert 'id="retrain-form"' in html_of(client.get("/runs/"))
