"""Results' clusters and map positions taken from the run's index.

A similar-song lookup reads its results' records from the catalog. Their
labels (cluster, map position) are the run's stored labels, which the
database would join from the run's partition: a third of the records
query at 10M songs. The index of a run whose algorithm labels a song by
its features alone (every algorithm but the density ones, whose
prediction of a border point may differ from their fit) holds those same
labels (``SimilarityIndex.map_``): the records are then read without the
join and labelled from the index, but for the songs whose stored label
may differ, which are read from the database:

- songs the index does not hold (imported after the run: the delta);
- songs whose features differ from the index's copy of them (changed by
  an import since the run read the catalog, which relabels them).

A song relabelled with unchanged features (an import that changed its
popularity; an activation that predicted the labels of a run whose
labels had been dropped) gets the same cluster from the model, and its
map position to the last bits of a float (the model's projection of one
song against that of the whole catalog), as the labels a run writes over
several workers do.

Cluster names are kept per process and read again at most every
MODEL_RECHECK_SECONDS, so a renamed cluster shows under its new name
within that time, as an activation does.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from django.conf import settings

from songs.labels import labels_of
from songs.selectors import SongRecord, song_records

from .ml.similarity import FEATURES, SimilarityIndex
from .models import Cluster, TrainingRun

_lock = threading.Lock()
_clusters: dict = {"key": None, "checked": 0.0, "by_label": {}}


def cluster_names_by_label(run: TrainingRun) -> dict[int, tuple[int, str]]:
    """{label: (cluster id, name)} of a run's clusters, kept per process
    (by run id and index hash) for MODEL_RECHECK_SECONDS."""
    key, now = (run.pk, run.index_sha256), time.monotonic()
    with _lock:
        if _clusters["key"] == key and now - _clusters["checked"] < settings.MODEL_RECHECK_SECONDS:
            return _clusters["by_label"]
    by_label = {
        label: (pk, name)
        for pk, label, name in Cluster.objects.filter(run_id=run.pk).values_list("id", "label", "name")
    }
    with _lock:
        _clusters.update(key=key, checked=now, by_label=by_label)
    return by_label


def cache_clear() -> None:
    """Forget the cluster names kept."""
    with _lock:
        _clusters.update(key=None, checked=0.0, by_label={})


def records_labelled(
    *, index: SimilarityIndex, run: TrainingRun, ids: list[int], rows: dict[int, int]
) -> dict[int, SongRecord]:
    """``song_records(ids=ids, run=run.pk)``: {song id: record} labelled as
    in run ``run``, whose index is ``index``; ``rows`` {song id: index row}
    of the songs found there. See the module's docstring."""
    if index.map_ is None:
        return song_records(ids=ids, run=run.pk)
    records = song_records(ids=ids, labels=False)
    indexed = [(pk, rows[pk]) for pk in records if rows.get(pk, -1) >= 0]
    from_database = [pk for pk in records if rows.get(pk, -1) < 0]
    if indexed:
        at = np.fromiter((row for _, row in indexed), dtype=np.int64, count=len(indexed))
        # As the index holds them (float32): a song changed since shows other values.
        now = np.array([[records[pk][name] for name in FEATURES] for pk, _ in indexed], dtype=np.float32)
        same = (now == index.attributes_[at, : len(FEATURES)]).all(axis=1).tolist()
        clusters = cluster_names_by_label(run)
        labels, positions = index.labels_[at].tolist(), index.map_[at].tolist()
        for (pk, _), unchanged, label, (x, y) in zip(indexed, same, labels, positions):
            if unchanged:
                _label(records[pk], clusters.get(label), x, y)
            else:
                from_database.append(pk)
    if from_database:
        stored = labels_of(from_database, run=run.pk)
        for pk in from_database:
            label = stored.get(pk)
            if label is not None:
                cluster = None if label.cluster_id is None else (label.cluster_id, label.cluster_name)
                _label(records[pk], cluster, label.map_x, label.map_y)
    return records


def _label(record: SongRecord, cluster: tuple[int, str] | None, x, y) -> None:
    record["cluster"] = None if cluster is None else {"id": cluster[0], "name": cluster[1]}
    # NaN (off the map) is stored as NULL.
    record["map_x"] = None if x is None or x != x else x
    record["map_y"] = None if y is None or y != y else y
