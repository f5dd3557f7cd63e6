"""The label store: every run's labels (song → cluster, map position), kept per run.

A run's labels are written once, when it trains (in process, or by the
labelling chunks of its id ranges on any number of workers), and read by
joining the active run's rows (the catalog's label source, registered in
``clustering.apps``). Activating or rolling back a run only flips its
``is_active`` flag; dropping a run's labels drops its storage.

On Postgres ``clustering_songlabel`` is partitioned by run: each run owns a
partition named after it, created empty and attached (a lock that readers do
not wait for), filled with binary ``COPY``, and detached concurrently and
dropped when the run's labels go. On SQLite it is a plain table.
"""

from __future__ import annotations

import logging
import struct
from contextlib import contextmanager

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q

from songs.background import session_advisory_lock
from songs.labels import LabelSource

from .models import Cluster, SongLabel, TrainingRun

logger = logging.getLogger(__name__)

TABLE = SongLabel._meta.db_table
# Serialises the creation of a run's partition between chunk workers.
_PARTITION_LOCK_ID = 0x6C61_6265_6C73  # "labels"
# Held by a drop from its decision to its DROP TABLE, and by an activation
# from its check of the run's labels to its flip (labels_drops_held): a
# labels table found detached (or pending detach) while this lock is free
# was left by a drop that was cut off.
_DROP_LOCK_ID = _PARTITION_LOCK_ID + 1
COPY_COLUMNS = "(run_id, song_id, cluster_id, map_x, map_y)"


def _pg() -> bool:
    return connection.vendor == "postgresql"


def partition_name(run_id: int) -> str:
    """The Postgres partition holding the labels of run ``run_id``."""
    return f"{TABLE}_run_{int(run_id)}"


# --- the catalog's view: the active run's labels -------------------------------------------


def active_label_source(run: int | None = None) -> LabelSource:
    """The active run's labels as the catalog joins them (songs.labels), or
    run ``run``'s.

    The active run is read inside the same statement, so one read sees one
    run's labels whatever flips meanwhile; Postgres prunes the other runs'
    partitions when the statement starts. A given run is pruned when the
    statement is planned, which is cheaper (a similar-song lookup names the
    run of the index it searched).
    """
    runs, clusters = TrainingRun._meta.db_table, Cluster._meta.db_table
    select = (
        f"SELECT sl.song_id, sl.cluster_id, c.label AS cluster_label, c.name AS cluster_name, sl.map_x, sl.map_y "
        f"FROM {TABLE} sl LEFT JOIN {clusters} c ON c.id = sl.cluster_id "
    )
    if run is not None:
        return LabelSource(select + "WHERE sl.run_id = %s", (int(run),))
    return LabelSource(select + f"WHERE sl.run_id = (SELECT r.id FROM {runs} r WHERE r.is_active)")


# --- which runs have labels ---------------------------------------------------------------


def runs_with_labels() -> set[int]:
    """Ids of the runs whose labels are stored."""
    with connection.cursor() as cursor:
        if _pg():
            cursor.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = %s::regclass AND NOT i.inhdetachpending",
                [TABLE],
            )
            prefix = f"{TABLE}_run_"
            return {int(name[len(prefix) :]) for (name,) in cursor.fetchall() if name.startswith(prefix)}
        cursor.execute(f"SELECT DISTINCT run_id FROM {TABLE}")
        return {row[0] for row in cursor.fetchall()}


def labels_exist(run_id: int) -> bool:
    """True when run ``run_id`` has stored labels (its partition, on Postgres)."""
    with connection.cursor() as cursor:
        if _pg():
            return _partition_state(cursor, run_id) == "attached"
        else:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {TABLE} WHERE run_id = %s)", [int(run_id)])
        return bool(cursor.fetchone()[0])


def _partition_state(cursor, run_id: int) -> str:
    """Where run ``run_id``'s labels table stands on Postgres: "missing",
    "attached" (its labels are the run's), "pending" (a concurrent detach
    was interrupted) or "detached" (a drop was interrupted after the
    detach): the last two are leftovers of :func:`labels_drop`."""
    cursor.execute(
        "SELECT i.inhdetachpending FROM pg_class c LEFT JOIN pg_inherits i "
        "ON i.inhrelid = c.oid AND i.inhparent = %s::regclass WHERE c.oid = to_regclass(%s)",
        [TABLE, partition_name(run_id)],
    )
    row = cursor.fetchone()
    if row is None:
        return "missing"
    return {None: "detached", False: "attached", True: "pending"}[row[0]]


def _leftovers_clear(cursor) -> list[str]:
    """Finish what interrupted drops (:func:`labels_drop`) left behind: a
    partition whose concurrent detach was cut off (Postgres then refuses
    to detach any other until it is finalised) and detached tables not yet
    dropped. The caller holds the drop lock (no drop is under way); a
    partition being written is invisible here until its transaction
    commits attached. Returns the tables dropped."""
    cursor.execute(
        "SELECT c.relname, i.inhdetachpending FROM pg_class c LEFT JOIN pg_inherits i ON i.inhrelid = c.oid "
        "WHERE c.relkind = 'r' AND pg_table_is_visible(c.oid) AND c.relname LIKE %s "
        "AND (i.inhrelid IS NULL OR i.inhdetachpending)",
        [f"{TABLE}\\_run\\_%"],
    )
    dropped = []
    for name, pending in cursor.fetchall():
        if pending:
            cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {name} FINALIZE")
        cursor.execute(f"DROP TABLE {name}")
        dropped.append(name)
    if dropped:
        logger.warning("dropped labels tables an interrupted drop left behind: %s", ", ".join(dropped))
    return dropped


def labels_partition_create(run_id: int) -> None:
    """Create the (empty) partition of run ``run_id`` if it is missing (Postgres; a no-op on SQLite).

    Created apart and attached: ATTACH PARTITION takes a lock that readers
    of the labels do not wait for (CREATE … PARTITION OF would lock them
    out). The partition gets the table's indexes, built on no rows.
    """
    if not _pg():
        return
    name = partition_name(run_id)
    with transaction.atomic(), connection.cursor() as cursor:
        # A reader's lock on the labels table first: every writer waits on
        # the table itself while it is locked (operators and the fault suite
        # hold labelling chunks that way), not on each other's advisory lock.
        cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS SHARE MODE")
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PARTITION_LOCK_ID])
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_DROP_LOCK_ID])
        if cursor.fetchone()[0]:
            _leftovers_clear(cursor)
        if _partition_state(cursor, run_id) == "attached":
            return
        cursor.execute(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS)")
        cursor.execute(f"ALTER TABLE {name} ADD CONSTRAINT {name}_run CHECK (run_id = {int(run_id)})")
        cursor.execute(f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES IN ({int(run_id)})")


def _partition_load(run_id: int, ids, clusters, embedding) -> bool:
    """Write a run's first labels as a new partition: COPY into a bare
    table, build its indexes on the loaded rows (about twice as fast as
    maintaining them row by row), then attach it. Readers see nothing until
    the commit and never wait for the load. False when the partition exists
    already (the caller appends to it)."""
    name = partition_name(run_id)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PARTITION_LOCK_ID])
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_DROP_LOCK_ID])
        if cursor.fetchone()[0]:
            _leftovers_clear(cursor)
        if _partition_state(cursor, run_id) == "attached":
            return False
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        cursor.execute(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS)")
        _copy_binary(cursor, name, run_id, ids, clusters, embedding)
        cursor.execute(f"ALTER TABLE {name} ADD PRIMARY KEY (run_id, song_id)")
        cursor.execute(f"CREATE INDEX {name}_run_cluster_song ON {name} (run_id, cluster_id, song_id)")
        cursor.execute(f"ALTER TABLE {name} ADD CONSTRAINT {name}_run CHECK (run_id = {int(run_id)})")
        # The table's indexes match the partitioned ones: ATTACH adopts them.
        cursor.execute(f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES IN ({int(run_id)})")
    return True


@contextmanager
def labels_drops_held():
    """Hold off every drop of labels (:func:`labels_drop`, :func:`labels_prune`)
    for the block: an activation holds it from its check of the run's labels
    to its flip, so a drop that decided a run was inactive can never take the
    labels of the run that has just become active. Drops decide and act
    under the same lock. On Postgres an advisory lock (to the end of the
    transaction inside one, else to the end of the block); a no-op on SQLite.
    Inside a transaction take it before the transaction reads any label: a
    drop detaching concurrently waits for that transaction's reads, and this
    wait for the drop would close the circle (Postgres fails one of them).
    """
    if not _pg():
        yield
        return
    if connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_DROP_LOCK_ID])
        yield
        return
    with session_advisory_lock(_DROP_LOCK_ID, what="labels drop lock"):
        yield


def labels_drop(run_id: int) -> bool:
    """Drop every label of run ``run_id`` (never the active run's); True if there were some.

    On Postgres the partition is detached concurrently when no transaction
    is open (readers never wait), then dropped. Whether the run is active is
    read under the drop lock, which activations hold to their flip.
    """
    if not _pg():
        if TrainingRun.objects.filter(pk=run_id, is_active=True).exists():
            raise ValueError(f"run #{run_id} is active: its labels stay")
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {TABLE} WHERE run_id = %s", [int(run_id)])
            return cursor.rowcount > 0
    name = partition_name(run_id)
    with labels_drops_held(), connection.cursor() as cursor:
        if TrainingRun.objects.filter(pk=run_id, is_active=True).exists():
            raise ValueError(f"run #{run_id} is active: its labels stay")
        _leftovers_clear(cursor)
        if _partition_state(cursor, run_id) != "attached":
            return False
        if connection.in_atomic_block:
            cursor.execute(f"DROP TABLE {name}")
        else:
            cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {name} CONCURRENTLY")
            cursor.execute(f"DROP TABLE {name}")
    logger.info("dropped the labels of run %s", run_id)
    return True


# --- writing --------------------------------------------------------------------------------


def cluster_pks(run: TrainingRun, labels: np.ndarray) -> np.ndarray:
    """The Cluster primary key of each model label (-1: no Cluster row, e.g. noise without one)."""
    labels = np.asarray(labels, dtype=np.int64)
    known = dict(run.clusters.values_list("label", "id"))
    if not len(labels):
        return np.empty(0, dtype=np.int64)
    lo = min(int(labels.min()), min(known, default=0))
    lookup = np.full(max(int(labels.max()), max(known, default=0)) - lo + 1, -1, dtype=np.int64)
    for label, pk in known.items():
        lookup[label - lo] = pk
    return lookup[labels - lo]


def _copy_binary(cursor, table: str, run_id: int, ids, clusters, embedding) -> None:
    """COPY rows into ``table`` in Postgres' binary format, built by NumPy.

    Each row is five fields; a NULL field has length -1 and no data, so rows
    come in up to four fixed shapes (cluster and map present or not), each
    one structured array.
    """
    n = len(ids)
    has_cluster = clusters >= 0
    has_map = np.isfinite(embedding).all(axis=1) if embedding is not None else np.zeros(n, dtype=bool)
    parts = [b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)]
    for with_cluster in (True, False):
        for with_map in (True, False):
            rows = np.flatnonzero((has_cluster == with_cluster) & (has_map == with_map))
            if not len(rows):
                continue
            fields = [("n", ">i2"), ("l0", ">i4"), ("run", ">i8"), ("l1", ">i4"), ("song", ">i8"), ("l2", ">i4")]
            if with_cluster:
                fields.append(("cluster", ">i8"))
            fields.append(("l3", ">i4"))
            if with_map:
                fields.append(("x", ">f8"))
            fields.append(("l4", ">i4"))
            if with_map:
                fields.append(("y", ">f8"))
            out = np.empty(len(rows), dtype=np.dtype(fields))
            out["n"], out["l0"], out["run"], out["l1"], out["song"] = 5, 8, run_id, 8, ids[rows]
            out["l2"] = 8 if with_cluster else -1
            if with_cluster:
                out["cluster"] = clusters[rows]
            out["l3"] = out["l4"] = 8 if with_map else -1
            if with_map:
                out["x"], out["y"] = embedding[rows, 0], embedding[rows, 1]
            parts.append(out.tobytes())
    parts.append(struct.pack(">h", -1))
    with cursor.copy(f"COPY {table} {COPY_COLUMNS} FROM STDIN WITH (FORMAT binary)") as copy:
        for part in parts:
            copy.write(part)


def labels_write(
    *,
    run: TrainingRun,
    ids: np.ndarray,
    labels: np.ndarray,
    embedding: np.ndarray | None,
    replace: str = "none",
    id_range: tuple[int, int] | None = None,
) -> int:
    """Store run ``run``'s labels of the songs ``ids`` (model labels, map
    positions; ``embedding`` None or NaN rows: off the map), in one transaction.

    ``replace``: "none" (the songs have no label in the run yet: the
    training's write), "range" (first delete the run's labels of the ids in
    ``id_range``, inclusive: a labelling chunk, redelivered or not, leaves
    exactly its range), "ids" (first delete those of ``ids``: songs labelled
    again). The number of rows written.
    """
    ids = np.asarray(ids, dtype=np.int64)
    clusters = cluster_pks(run, labels)
    if embedding is not None:
        embedding = np.asarray(embedding, dtype=np.float64).reshape(-1, 2)
    if _pg() and replace == "none" and len(ids) and _partition_load(run.pk, ids, clusters, embedding):
        return len(ids)
    labels_partition_create(run.pk)
    table = partition_name(run.pk) if _pg() else TABLE
    with transaction.atomic(), connection.cursor() as cursor:
        if replace == "range":
            lo, hi = id_range
            cursor.execute(f"DELETE FROM {table} WHERE run_id = %s AND song_id BETWEEN %s AND %s", [run.pk, lo, hi])
        elif replace == "ids" and len(ids):
            for start in range(0, len(ids), 900):
                chunk = ids[start : start + 900].tolist()
                cursor.execute(
                    f"DELETE FROM {table} WHERE run_id = %s AND song_id IN ({', '.join(['%s'] * len(chunk))})",
                    [run.pk, *chunk],
                )
        if not len(ids):
            return 0
        if _pg():
            _copy_binary(cursor, table, run.pk, ids, clusters, embedding)
        else:
            xs = embedding[:, 0].tolist() if embedding is not None else [None] * len(ids)
            ys = embedding[:, 1].tolist() if embedding is not None else [None] * len(ids)
            cursor.executemany(
                f"INSERT INTO {TABLE} {COPY_COLUMNS} VALUES (%s, %s, %s, %s, %s)",
                [
                    (run.pk, i, c if c >= 0 else None, x if x == x else None, y if y == y else None)
                    for i, c, x, y in zip(ids.tolist(), clusters.tolist(), xs, ys)
                ],
            )
    return len(ids)


def labels_analyze(run_id: int) -> None:
    """Planner statistics of a run's freshly written labels (Postgres)."""
    if _pg():
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {partition_name(run_id)}")


def labels_max_song_id(run_id: int) -> int | None:
    """The largest song id run ``run_id`` has a label for (None: no label)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT max(song_id) FROM {TABLE} WHERE run_id = %s", [int(run_id)])
        return cursor.fetchone()[0]


# --- reading a run's labels ----------------------------------------------------------------


def run_labels(run_id: int) -> dict[int, tuple[int | None, float | None, float | None]]:
    """{song id: (cluster pk, map_x, map_y)} of every label of run ``run_id`` (tests, checks)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT song_id, cluster_id, map_x, map_y FROM {TABLE} WHERE run_id = %s", [int(run_id)])
        return {song_id: (cluster, x, y) for song_id, cluster, x, y in cursor.fetchall()}


# --- keeping the last runs' labels ---------------------------------------------------------


def labels_prune(*, keep: int | None = None) -> list[int]:
    """Drop the labels of every run but the active one, a running one and
    the last ``keep`` (LABEL_RUNS_KEPT) successful ones (failed runs keep
    none). Rolling back to a run whose labels went labels the catalog again
    with its model. The ids whose labels were dropped."""
    keep = settings.LABEL_RUNS_KEPT if keep is None else keep
    dropped = []
    # Decided and done under the drop lock: what is kept is read after any
    # activation under way has flipped.
    with labels_drops_held():
        succeeded = TrainingRun.objects.filter(status=TrainingRun.Status.SUCCEEDED)
        kept = set(succeeded.order_by("-finished_at", "-pk").values_list("pk", flat=True)[: max(keep, 0)])
        kept |= set(
            TrainingRun.objects.filter(Q(is_active=True) | Q(status=TrainingRun.Status.RUNNING)).values_list(
                "pk", flat=True
            )
        )
        for run_id in sorted(runs_with_labels() - kept):
            try:
                if labels_drop(run_id):
                    dropped.append(run_id)
            except ValueError:  # activated meanwhile
                continue
    if dropped:
        logger.info("dropped the labels of runs %s (LABEL_RUNS_KEPT=%s)", dropped, keep)
    return dropped
