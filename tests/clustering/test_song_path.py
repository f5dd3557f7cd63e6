"""Paths between two songs on the demo catalog: the smooth path
(clustering.ml.paths, docs/PATHS.md) against the method it replaced — the
nearest song in the similarity space to each evenly spaced point, one point
at a time — measured on the same pairs in the same run."""

import numpy as np
import pytest

from clustering import similarity
from clustering.artifacts import active_index
from clustering.ml.paths import progress, smoothness, sound_space
from songs.selectors import song_records

pytestmark = pytest.mark.django_db

PAIRS = 30
LENGTH = 12
CHART = ("danceability", "energy", "valence", "acousticness")


def nearest_to_points(index, a, b, *, length, source_artist, target_artist):
    """The previous method (kept here as the baseline): for each point on the
    line between the two songs' similarity vectors, the nearest unused song
    whose artist is not used up, one point at a time."""
    used_rows = [r for r in (a.row, b.row) if r >= 0]
    used_keys = [k for k in (a.dup_key, b.dup_key) if k is not None]
    counts, previous, rows = {}, source_artist, []
    for i in range(1, length - 1):
        point = a.vector + (b.vector - a.vector) * (i / (length - 1))
        banned = {artist for artist, count in counts.items() if count >= 1} | {previous}
        if i == length - 2:
            banned.add(target_artist)
        found, _ = index.query(point, k=30, exclude_rows=used_rows, exclude_keys=used_keys)
        allowed = [r for r in found.tolist() if int(index.artists_[r]) not in banned]
        if not allowed:
            mask = ~np.isin(index.artists_, np.fromiter(banned, dtype=np.int64))
            allowed = index.query(point, k=1, mask=mask, exclude_rows=used_rows, exclude_keys=used_keys)[0].tolist()
        if not allowed:
            break
        pick = int(allowed[0])
        rows.append(pick)
        used_rows.append(pick)
        used_keys.append(int(index.dup_keys_[pick]))
        counts[int(index.artists_[pick])] = counts.get(int(index.artists_[pick]), 0) + 1
        previous = int(index.artists_[pick])
    return rows


def cluster_revisits(labels) -> int:
    """How often a path re-enters a cluster it has left."""
    current, left, revisits = labels[0], set(), 0
    for label in labels[1:]:
        if label != current:
            revisits += label in left
            left.add(current)
            current = label
    return revisits


def measure(index, rows):
    Z = sound_space(index.attributes_[rows], index.attribute_std_)
    chart = [similarity.ATTRIBUTES.index(name) for name in CHART]
    whole, on_chart = smoothness(Z), smoothness(index.attributes_[rows][:, chart])
    artists = index.artists_[rows].tolist()
    return {
        "excess": whole["excess"],
        "reversals": whole["reversals"],
        "chart_excess": on_chart["excess"],
        "chart_reversals": on_chart["reversals"],
        "backsteps": whole["backsteps"],
        "revisits": cluster_revisits(index.labels_[rows].tolist()),
        "start_artist_inside": sum(a == artists[0] for a in artists[1:-1]),
        "progress": progress(Z),
    }


def test_smooth_paths_progress_monotonically_and_beat_the_nearest_point_method(trained_demo):
    _, index = active_index()
    rng = np.random.default_rng(7)
    pairs = [rng.choice(len(index.ids_), 2, replace=False) for _ in range(PAIRS)]
    records = song_records(ids=[int(index.ids_[r]) for pair in pairs for r in pair])
    before, after = [], []
    for ra, rb in pairs:
        source, target = records[int(index.ids_[ra])], records[int(index.ids_[rb])]
        a, b = similarity._song_seed(index, source), similarity._song_seed(index, target)
        old = nearest_to_points(
            index, a, b, length=LENGTH, source_artist=source.artist_pk, target_artist=target.artist_pk
        )
        path = similarity.song_path(source=source, target=target, length=LENGTH)
        rows = index.rows_of([song.pk for song in path["songs"]]).tolist()
        assert len(rows) == LENGTH and rows[0] == ra and rows[-1] == rb and -1 not in rows
        before.append(measure(index, [ra, *old, rb]))
        after.append(measure(index, rows))
        # Progress along the start-end line never goes back (the demo catalog allows it for every pair).
        t = after[-1]["progress"]
        assert np.all(np.diff(t) >= -1e-9), t
        assert t.min() >= -1e-9 and t.max() <= 1 + 1e-9
        assert after[-1]["start_artist_inside"] == 0

    def mean(results, key):
        return float(np.mean([r[key] for r in results]))

    figures = {key: (round(mean(before, key), 2), round(mean(after, key), 2)) for key in after[0] if key != "progress"}
    print("before, after:", figures)
    # The baseline steps back along the line and re-enters clusters; the smooth path does neither
    # as often, and its features travel less for the same journey.
    assert mean(before, "backsteps") > 0 and mean(after, "backsteps") == 0
    assert mean(after, "excess") < 0.7 * mean(before, "excess")
    assert mean(after, "chart_excess") < 0.8 * mean(before, "chart_excess")
    assert mean(after, "reversals") < mean(before, "reversals")
    assert mean(after, "revisits") < 0.5 * mean(before, "revisits")
