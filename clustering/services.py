"""Clustering services: training runs, artifacts, activation and prediction.

A run goes queued → running → succeeded / failed. Training fits the pure ML
core (`clustering.ml`) on the catalog's feature matrix, writes the model
artifact (joblib, `*.part` then rename, sha256 in the row) and activates
the run: every song's cluster and map position are written and the active
flag flips in one transaction, so a reader sees the old labelling or the
new one, never a mix.
"""

from __future__ import annotations

import io
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from songs.background import BrokerUnavailable, Heartbeat, broker_check, broker_waiting
from songs.features import ATTRIBUTE_LABELS, FEATURE_NAMES
from songs.models import Artist, Song
from songs.services import CATALOG_LOCK_ID, catalog_analyze, import_jobs_fail_stale, import_jobs_resend

from .artifacts import model_load, model_write, run_files_remove
from .errors import ArtifactError, BlocklistError, RunBusy, TrainingError
from .ml import ClusterModel, match_models
from .ml.spec import TrainingSpec, spec_params
from .models import BlockedItem, Cluster, SongLabel, TrainingRun
from .selectors import active_run, song_feature_matrix

logger = logging.getLogger(__name__)

__all__ = ["ArtifactError", "RunBusy", "TrainingError"]  # raised here; defined in clustering.errors


# --- creating and claiming runs ------------------------------------------


def training_run_create(*, user=None, enqueue: bool = True, **params: Any) -> TrainingRun:
    """Validate the parameters (:class:`clustering.ml.spec.TrainingSpec`), store
    a queued run and enqueue its task after commit."""
    try:
        spec = TrainingSpec.from_params(**params)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    stored = spec.to_params()
    if enqueue:
        broker_check()  # BrokerUnavailable: nothing stored, the caller answers at once
    run = TrainingRun.objects.create(
        algorithm=stored.pop("algorithm"),
        scaler=stored.pop("scaler"),
        features=stored.pop("features"),
        params=stored,
        created_by=user if getattr(user, "is_authenticated", False) else None,
        enqueued_at=timezone.now() if enqueue else None,
    )
    if enqueue:
        # A send that fails after the commit is logged; the sweeper re-sends it.
        transaction.on_commit(lambda: _training_run_send(run.pk), robust=True)
    return run


def _training_run_send(run_id: int) -> None:
    from .tasks import train_run_task

    train_run_task.delay(run_id)


def training_run_spec(run: TrainingRun) -> TrainingSpec:
    """The spec a run was created with, rebuilt from what it stored."""
    names = {name for name, _, _ in spec_params()}
    stored = {name: value for name, value in (run.params or {}).items() if name in names}
    try:
        return TrainingSpec.from_params(algorithm=run.algorithm, scaler=run.scaler, features=run.features, **stored)
    except ValueError as exc:
        raise TrainingError(f"run #{run.pk} holds parameters that are not valid: {exc}") from None


def training_run_claim(*, run_id: int) -> bool:
    """queued → running. False if the run is not queued; RunBusy if another runs.

    The partial unique index `one_running_run` makes two running runs
    impossible, whatever the number of workers.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            return bool(
                TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.QUEUED).update(
                    status=TrainingRun.Status.RUNNING, started_at=now, heartbeat_at=now, stage="starting", progress=0
                )
            )
    except IntegrityError:
        raise RunBusy("another training run is in progress") from None


def training_run_fail(*, run_id: int, error: str) -> None:
    failed = TrainingRun.objects.filter(
        pk=run_id, status__in=[TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING]
    ).update(status=TrainingRun.Status.FAILED, error=error[:5000], finished_at=timezone.now())
    if failed:
        _failed_run_cleanup(run_id)


def _failed_run_cleanup(run_id: int) -> None:
    """A failed run keeps no staged labels and no files (never the active run's)."""
    SongLabel.objects.filter(run_id=run_id).delete()
    if not TrainingRun.objects.filter(pk=run_id, is_active=True).exists():
        removed = run_files_remove(run_id)
        if removed:
            logger.info("failed run %s: removed %s", run_id, ", ".join(removed))


def training_runs_fail_stale(*, older_than: float | None = None) -> int:
    """Mark runs whose worker stopped sending heartbeats as failed, remove
    their staged labels and files, and send the oldest queued run at once."""
    seconds = settings.TRAIN_STALE_SECONDS if older_than is None else older_than
    cutoff = timezone.now() - timedelta(seconds=seconds)
    stale = list(
        TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING, heartbeat_at__lt=cutoff).values_list(
            "pk", flat=True
        )
    )
    failed = 0
    for run_id in stale:
        if _labelling_waits(run_id):
            # Its chunks (or its last step) wait in the queue behind other
            # work: no process beats for it yet, but it is not dead.
            TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.RUNNING).update(heartbeat_at=timezone.now())
            continue
        if TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.RUNNING, heartbeat_at__lt=cutoff).update(
            status=TrainingRun.Status.FAILED,
            error=f"The worker stopped responding (no heartbeat for {seconds:.0f} s); the run was abandoned "
            "and the previous model stays active.",
            finished_at=timezone.now(),
        ):
            failed += 1
            _failed_run_cleanup(run_id)
    if failed and not settings.CELERY_TASK_ALWAYS_EAGER:
        # The next run need not wait for its retry, nor for the sweeper.
        nxt = TrainingRun.objects.filter(status=TrainingRun.Status.QUEUED).order_by("created_at", "pk").first()
        if nxt is not None:
            transaction.on_commit(lambda: _training_run_send(nxt.pk), robust=True)
    return failed


def _labelling_waits(run_id: int) -> bool:
    """True while a labelling chunk or the activation of ``run_id`` waits in
    the broker's queue, not yet taken by a worker; also while the broker
    cannot be asked (its queue may hold them; once it answers, a lost
    message shows). A message taken by a worker is not waiting: the
    worker's heartbeat speaks for it."""
    from .tasks import activate_staged_task, label_chunk_task

    if not TrainingRun.objects.filter(pk=run_id, stage="labelling").exists():
        return False
    try:
        waiting = broker_waiting({label_chunk_task.name, activate_staged_task.name})
    except BrokerUnavailable:
        return True
    return waiting is not None and any(args and args[0] == run_id for _, args in waiting)


def training_run_message_alive(*, run_id: int) -> None:
    """A waiting run's message is alive (its task retries): no re-send needed."""
    TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.QUEUED).update(enqueued_at=timezone.now())


def training_runs_resend(*, older_than: float | None = None) -> list[int]:
    """Send again the task of every run still queued ``older_than`` seconds
    after its message was last sent or seen alive (lost with the broker, a
    retry lost in flight). A duplicate is a no-op (the claim is conditional).
    The ids re-sent."""
    seconds = settings.QUEUED_RESEND_SECONDS if older_than is None else older_than
    now = timezone.now()
    cutoff = now - timedelta(seconds=seconds)
    resent = []
    queued = TrainingRun.objects.filter(status=TrainingRun.Status.QUEUED).filter(
        Q(enqueued_at__lt=cutoff) | Q(enqueued_at__isnull=True, created_at__lt=cutoff)
    )
    for run in queued.order_by("created_at", "pk"):
        if TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.QUEUED, enqueued_at=run.enqueued_at).update(
            enqueued_at=now
        ):
            logger.warning("training run %s is still queued; sending its task again", run.pk)
            _training_run_send(run.pk)
            resent.append(run.pk)
    return resent


def run_artifacts_prune(*, keep: int | None = None) -> list[int]:
    """Remove the files of successful runs older than the last ``keep``
    (MODEL_KEEP_RUNS); the active run's and a running run's files stay. Their
    paths are cleared: rolling back to such a run says it must be retrained.
    The ids pruned."""
    keep = settings.MODEL_KEEP_RUNS if keep is None else keep
    succeeded = TrainingRun.objects.filter(status=TrainingRun.Status.SUCCEEDED)
    kept = set(succeeded.order_by("-finished_at", "-pk").values_list("pk", flat=True)[: max(keep, 0)])
    pruned = []
    old = succeeded.exclude(pk__in=kept).exclude(is_active=True).exclude(artifact_path="", index_path="")
    for run_id in old.values_list("pk", flat=True):
        if TrainingRun.objects.filter(pk=run_id, is_active=False).update(artifact_path="", index_path=""):
            run_files_remove(run_id)
            pruned.append(run_id)
    if pruned:
        logger.info("removed the files of runs %s (MODEL_KEEP_RUNS=%s)", pruned, keep)
    return pruned


def work_sweep() -> dict[str, Any]:
    """What the workers' sweeper does every WORK_SWEEP_SECONDS: fail dead runs
    and imports (their staging tables and files go), re-send lost messages."""
    return {
        "runs_failed": training_runs_fail_stale(),
        "imports_failed": import_jobs_fail_stale(),
        "runs_resent": training_runs_resend(),
        "imports_resent": import_jobs_resend(),
    }


class _RunProgress:
    """Stage, percent and heartbeat of a running run, written at most once a second."""

    def __init__(self, run_id: int):
        self.run_id = run_id
        self.last = 0.0

    def __call__(self, stage: str, percent: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < 1.0:
            return
        self.last = now
        TrainingRun.objects.filter(pk=self.run_id, status=TrainingRun.Status.RUNNING).update(
            stage=stage[:32], progress=max(0, min(100, int(percent))), heartbeat_at=timezone.now()
        )


# --- training -----------------------------------------------------------------


class _IndexBuild:
    """The similar-song index of a run, built in line (:meth:`run`) or in a
    thread (:meth:`start`, then :meth:`record` saves it on the run)."""

    def __init__(self, *, run_id: int, ids: np.ndarray, X: np.ndarray, labels: np.ndarray):
        self.run_id, self.ids, self.X, self.labels = run_id, ids, X, labels
        self.path = self.digest = None
        self.error: BaseException | None = None
        self.seconds = 0.0
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        from .index import similarity_index_build  # pandas loads where indexes are built, not in web processes

        started = time.perf_counter()
        try:
            self.path, self.digest, _ = similarity_index_build(
                run_id=self.run_id, ids=self.ids, X=self.X, labels=self.labels
            )
        except BaseException as exc:  # handed to the training thread by result()
            self.error = exc
        finally:
            self.seconds = time.perf_counter() - started

    def _run_in_thread(self) -> None:
        try:
            self.run()
        finally:
            connection.close()  # this thread's own connection

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run_in_thread, name=f"index-run-{self.run_id}", daemon=True)
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def result(self) -> tuple[str, str]:
        self.join()
        if self.error is not None:
            raise TrainingError(f"the similar-song index could not be built: {self.error}") from self.error
        return self.path, self.digest

    def record(self) -> None:
        path, digest = self.result()
        TrainingRun.objects.filter(pk=self.run_id).update(index_path=path, index_sha256=digest)


def training_run_execute(*, run_id: int) -> TrainingRun:
    """Train a claimed run, store its clusters and (by default) activate it.

    A heartbeat thread keeps the run alive while a step reports no progress.
    """
    with Heartbeat(TrainingRun._meta.db_table, run_id):
        return _training_run_execute(run_id=run_id)


def _training_run_execute(*, run_id: int) -> TrainingRun:
    run = TrainingRun.objects.get(pk=run_id)
    progress = _RunProgress(run.pk)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    progress("reading", 1, force=True)
    ids, X = song_feature_matrix()
    timings["read"] = time.perf_counter() - t0
    spec = training_run_spec(run)
    if len(ids) < 10 or (spec.k != "auto" and len(ids) < 2 * spec.k):
        raise TrainingError(f"the catalog has {len(ids):,} songs: too few to train (import a catalog first)")
    from .index import catalog_genre_pairs  # pandas loads in training processes only

    genres = catalog_genre_pairs(ids)
    model = ClusterModel(**spec.model_kwargs(), feature_labels=ATTRIBUTE_LABELS)
    try:
        model.fit(X, progress=lambda stage, pct: progress(stage, 5 + int(pct * 0.75)), genres=genres)
    except ValueError as exc:
        raise TrainingError(f"the model could not be fitted: {exc}") from None
    outputs = model.pop_training_outputs()
    progress("saving", 82, force=True)
    t1 = time.perf_counter()
    path, digest = model_write(model=model, run_id=run.pk)
    timings["save"] = time.perf_counter() - t1
    chunk = activation_chunk_size(run=run, n_songs=len(ids))
    activate_here = spec.activate and not chunk
    index = _IndexBuild(run_id=run.pk, ids=ids, X=X, labels=outputs["labels"])
    # On Postgres the index builds (CPU, this process) while the activation
    # writes labels (the database server's work): ~10 s saved at 1M songs.
    # Its thread reads through its own connection, which sees committed rows
    # only, so inside an outer transaction (tests) it builds in line.
    overlap = activate_here and connection.vendor == "postgresql" and not connection.in_atomic_block
    if overlap:
        index.start()
    else:
        progress("indexing", 84, force=True)
        index.run()
    summary = model.summary()
    with transaction.atomic():
        run.algorithm = summary["algorithm"]
        run.params = {
            **run.params,
            "effective": summary["params"],
            "k_chosen": summary["k"],
            "k_choice": summary["k_choice"],
        }
        run.n_songs = len(ids)
        run.n_clusters = summary["n_clusters"]
        run.metrics = {**summary["metrics"], "map_explained_variance": summary["map_explained_variance"]}
        run.k_scan = summary["k_scan"] or []
        run.sklearn_version = summary["sklearn_version"]
        run.artifact_path, run.artifact_sha256 = path, digest
        if not overlap:
            run.index_path, run.index_sha256 = index.result()
        run.save()
        _clusters_create(run=run, model=model, ids=ids)
    timings["fit"] = summary["timings"]
    if spec.activate and chunk:
        # Labelling and write-back are shared out by the task (a chord of id
        # ranges); the run succeeds when the last step has written the labels.
        progress("labelling", 88, force=True)
        timings["total_before_labelling"] = time.perf_counter() - t0
        TrainingRun.objects.filter(pk=run.pk).update(timings=_round(timings))
        run.refresh_from_db()
        return run
    if activate_here:
        progress("activating", 88, force=True)
        t2 = time.perf_counter()
        try:
            training_run_activate(
                run=run,
                ids=ids,
                labels=outputs["labels"],
                embedding=outputs["embedding"],
                model=model,
                before_flip=index.record if overlap else None,
            )
        finally:
            index.join()  # never leave the thread writing after a failed activation
        timings["activate"] = time.perf_counter() - t2
    timings["index"] = index.seconds
    timings["total"] = time.perf_counter() - t0
    TrainingRun.objects.filter(pk=run.pk).update(
        status=TrainingRun.Status.SUCCEEDED,
        stage="done",
        progress=100,
        finished_at=timezone.now(),
        timings=_round(timings),
    )
    run_artifacts_prune()
    run.refresh_from_db()
    return run


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    return value


def _clusters_create(*, run: TrainingRun, model: ClusterModel, ids: np.ndarray) -> None:
    clusters = []
    for profile in model.profiles_:
        label = int(profile["label"])
        stored = {k: v for k, v in profile.items() if k != "representatives"}
        stored["representative_song_ids"] = [int(ids[i]) for i in profile.get("representatives", [])]
        clusters.append(
            Cluster(
                run=run,
                label=label,
                name=model.names_[label][:128],
                description=model.descriptions_.get(label, ""),
                size=int(profile["size"]),
                profile=stored,
            )
        )
    Cluster.objects.bulk_create(clusters)


# --- activation -----------------------------------------------------------------


def _carry_identity(*, run: TrainingRun, model: ClusterModel, previous: TrainingRun | None) -> None:
    """Match the new clusters to the previous active run's: lineage and admin names carry over."""
    clusters = {c.label: c for c in run.clusters.all()}
    mapping: dict[int, int] = {}
    if previous is not None and previous.pk != run.pk:
        try:
            mapping = match_models(model_load(previous), model)
        except (ArtifactError, ValueError) as exc:
            logger.warning("no cluster matching with run %s: %s", previous.pk, exc)
    old = {c.label: c for c in previous.clusters.all()} if previous is not None else {}
    taken = {c.name for c in clusters.values()}
    for label, cluster in clusters.items():
        match = old.get(mapping.get(label)) if label in mapping else None
        if match is not None:
            cluster.lineage = match.lineage or uuid.uuid4()
            if match.name_is_custom and match.name != cluster.name:
                # An admin's name wins; a generated name it collides with gives way.
                for other in clusters.values():
                    if other is not cluster and other.name == match.name:
                        other.name = f"{other.name} ({other.label})"
                taken.discard(cluster.name)
                cluster.name, cluster.name_is_custom = match.name, True
                taken.add(cluster.name)
        elif cluster.lineage is None:
            cluster.lineage = uuid.uuid4()
    Cluster.objects.bulk_update(list(clusters.values()), ["lineage", "name", "name_is_custom"])


def training_run_activate(
    *,
    run: TrainingRun,
    ids: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    embedding: np.ndarray | None = None,
    model: ClusterModel | None = None,
    before_flip: Callable[[], None] | None = None,
) -> TrainingRun:
    """Make `run` the active model: labels and map positions of every song and
    the active flag change in one transaction. Without labels (rolling back
    to an older run) the run's model labels the current catalog.
    ``before_flip`` runs inside that transaction just before the flag flips
    (an exception there rolls everything back)."""
    if run.status != TrainingRun.Status.SUCCEEDED and not (
        labels is not None and run.status == TrainingRun.Status.RUNNING
    ):
        raise TrainingError(f"run #{run.pk} is {run.status}; only a successful run can be activated")
    model = model or model_load(run)
    own_labels = labels is not None
    if labels is None:
        ids, X = song_feature_matrix()
        labels = model.predict(X) if len(ids) else np.empty(0, dtype=np.int64)
        embedding = model.transform_map(X) if len(ids) else np.empty((0, 2))
    previous = active_run()
    cluster_ids = dict(run.clusters.values_list("label", "id"))
    lookup = np.array([cluster_ids.get(int(label)) for label in labels], dtype=object)
    with transaction.atomic():
        _activate_locked(
            run=run,
            model=model,
            previous=previous,
            ids=ids,
            cluster_ids=lookup,
            embedding=embedding,
            before_flip=before_flip,
        )
        TrainingRun.objects.filter(pk=run.pk).update(index_labels_current=own_labels)
    catalog_analyze()  # every song's cluster changed: the planner's cluster statistics too
    run.refresh_from_db()
    return run


def _activate_locked(
    *,
    run: TrainingRun,
    model: ClusterModel,
    previous: TrainingRun | None,
    ids: np.ndarray,
    cluster_ids: np.ndarray,
    embedding: np.ndarray,
    before_flip: Callable[[], None] | None = None,
) -> None:
    """Identity carry-over, label write-back and the active flag; the caller holds a transaction."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CATALOG_LOCK_ID])
    _carry_identity(run=run, model=model, previous=previous)
    _write_labels(ids=ids, cluster_ids=cluster_ids, embedding=embedding)
    if before_flip is not None:
        before_flip()
    TrainingRun.objects.filter(is_active=True).exclude(pk=run.pk).update(is_active=False)
    TrainingRun.objects.filter(pk=run.pk).update(is_active=True)


def _write_labels(*, ids: np.ndarray, cluster_ids: np.ndarray, embedding: np.ndarray) -> None:
    """Write cluster and map position per song; songs not listed lose theirs."""
    table = Song._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # ON COMMIT DROP ends it; inside a caller's outer transaction it may still be here.
            cursor.execute("DROP TABLE IF EXISTS pg_temp.song_labels")
            cursor.execute(
                "CREATE TEMP TABLE song_labels (id bigint PRIMARY KEY, cluster_id bigint, map_x float8, map_y float8) "
                "ON COMMIT DROP"
            )
            buf = io.StringIO()
            for song_id, cluster_id, (x, y) in zip(ids.tolist(), cluster_ids.tolist(), embedding.tolist()):
                buf.write(f"{song_id}\t{'' if cluster_id is None else cluster_id}\t{x!r}\t{y!r}\n")
            with cursor.copy(
                "COPY song_labels (id, cluster_id, map_x, map_y) FROM STDIN WITH (FORMAT csv, DELIMITER E'\\t')"
            ) as copy:
                copy.write(buf.getvalue())
            cursor.execute(
                f"UPDATE {table} s SET cluster_id = l.cluster_id, map_x = l.map_x, map_y = l.map_y "
                "FROM song_labels l WHERE s.id = l.id"
            )
            cursor.execute(
                f"UPDATE {table} s SET cluster_id = NULL, map_x = NULL, map_y = NULL "
                "WHERE s.cluster_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM song_labels l WHERE l.id = s.id)"
            )
        else:
            cursor.execute(f"UPDATE {table} SET cluster_id = NULL, map_x = NULL, map_y = NULL")
            cursor.executemany(
                f"UPDATE {table} SET cluster_id = %s, map_x = %s, map_y = %s WHERE id = %s",
                [(c, x, y, i) for i, c, (x, y) in zip(ids.tolist(), cluster_ids.tolist(), embedding.tolist())],
            )


# --- activation split over workers ----------------------------------------------


def activation_chunk_size(*, run: TrainingRun, n_songs: int) -> int:
    """Songs per labelling chunk when activation is shared out, else 0.

    Only with a real broker: in-process tasks gain nothing from chunks.
    """
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return 0
    requested = training_run_spec(run).activation_chunk_songs
    if requested:
        return requested
    return settings.ACTIVATION_CHUNK_SONGS if n_songs > settings.ACTIVATION_SPLIT_SONGS else 0


def song_labels_stage(*, run_id: int, lo: int, hi: int) -> int:
    """Label the songs with ids in [lo, hi] with the run's model; idempotent.

    Nothing for a run that is not running any more (failed meanwhile: a
    redelivered chunk of a dead run must not stage labels again).
    """
    run = TrainingRun.objects.get(pk=run_id)
    if run.status != TrainingRun.Status.RUNNING:
        logger.info("run %s is %s: chunk %s-%s skipped", run_id, run.status, lo, hi)
        return 0
    with Heartbeat(TrainingRun._meta.db_table, run_id):
        return _song_labels_stage(run=run, lo=lo, hi=hi)


def _song_labels_stage(*, run: TrainingRun, lo: int, hi: int) -> int:
    run_id = run.pk
    model = model_load(run)
    ids, X = song_feature_matrix(id_range=(lo, hi))
    cluster_ids = dict(run.clusters.values_list("label", "id"))
    with transaction.atomic():
        SongLabel.objects.filter(run_id=run_id, song_id__gte=lo, song_id__lte=hi).delete()
        if len(ids):
            labels, embedding = model.predict(X), model.transform_map(X)
            SongLabel.objects.bulk_create(
                [
                    SongLabel(run_id=run_id, song_id=i, cluster_id=cluster_ids.get(int(label)), map_x=x, map_y=y)
                    for i, label, (x, y) in zip(ids.tolist(), labels.tolist(), embedding.tolist())
                ],
                batch_size=5000,
            )
    TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.RUNNING).update(heartbeat_at=timezone.now())
    return len(ids)


def training_run_activate_staged(*, run_id: int, chunks: int) -> TrainingRun:
    """The chord's last step: staged labels onto the songs and the flip, in one transaction."""
    with Heartbeat(TrainingRun._meta.db_table, run_id):
        return _training_run_activate_staged(run_id=run_id, chunks=chunks)


def _training_run_activate_staged(*, run_id: int, chunks: int) -> TrainingRun:
    run = TrainingRun.objects.get(pk=run_id)
    if run.status != TrainingRun.Status.RUNNING:  # failed meanwhile (stale): never activate it
        raise TrainingError(f"run #{run.pk} is {run.status}; its labels were not written")
    staged = SongLabel.objects.filter(run_id=run_id).order_by("song_id")
    ids = np.fromiter(staged.values_list("song_id", flat=True), dtype=np.int64)
    cluster_ids = np.array(list(staged.values_list("cluster_id", flat=True)), dtype=object)
    embedding = np.array(list(staged.values_list("map_x", "map_y")), dtype=np.float64).reshape(-1, 2)
    model = model_load(run)
    previous = active_run()
    t0 = time.perf_counter()
    with transaction.atomic():
        _activate_locked(run=run, model=model, previous=previous, ids=ids, cluster_ids=cluster_ids, embedding=embedding)
        SongLabel.objects.filter(run_id=run_id).delete()
        TrainingRun.objects.filter(pk=run.pk).update(index_labels_current=False)
    catalog_analyze()
    timings = {**run.timings, "activate": round(time.perf_counter() - t0, 3), "activation_chunks": chunks}
    TrainingRun.objects.filter(pk=run.pk).update(
        status=TrainingRun.Status.SUCCEEDED, stage="done", progress=100, finished_at=timezone.now(), timings=timings
    )
    run_artifacts_prune()
    run.refresh_from_db()
    return run


# --- prediction -----------------------------------------------------------------


def cluster_predict(*, X: np.ndarray, run: TrainingRun | None = None) -> list[dict]:
    """For each feature vector (FEATURE_NAMES order, real units): its cluster
    (id, label, name), distances to every centroid or probabilities (mixture),
    and its 2-D map position. DBSCAN / HDBSCAN: the nearest core sample within
    reach decides, else noise (cluster None, label -1)."""
    run = run or active_run()
    if run is None:
        raise TrainingError("no model is active yet: train one first")
    model = model_load(run)
    X = np.asarray(X, dtype=np.float64).reshape(-1, len(FEATURE_NAMES))
    details = model.predict_details(X)
    clusters = {c.label: c for c in run.clusters.all()}
    results = []
    distances = details.get("distances")
    probabilities = details.get("probabilities")
    # Built from whole columns, with one shared cluster object per label: a
    # 10,000-vector batch makes far fewer Python objects (a web worker's
    # peak memory).
    n_columns = len(distances[0]) if distances is not None and len(distances) else 0
    names = [clusters[j].name if j in clusters else str(j) for j in range(n_columns or len(clusters))]
    shared = {label: {"id": c.pk, "label": label, "name": c.name} for label, c in clusters.items() if label >= 0}
    coords = details["map"].tolist()
    dist_rows = distances.tolist() if distances is not None else None
    prob_rows = probabilities.tolist() if probabilities is not None else None
    for i, label in enumerate(details["labels"].tolist()):
        item = {"cluster": shared.get(label), "map": {"x": coords[i][0], "y": coords[i][1]}}
        if dist_rows is not None:
            item["distances"] = dict(zip(names, dist_rows[i]))
        if prob_rows is not None:
            item["probabilities"] = dict(zip(names, prob_rows[i]))
        results.append(item)
    return results


# --- a listener's blocklist ------------------------------------------------------------------

# Enough for anyone's dislikes, and a bound on the work every request does with them.
BLOCKLIST_MAX = 1000
GENRE_MAX_LENGTH = 100


def genre_normalise(genre: str) -> str:
    """A genre as blocklists store and compare it: trimmed, inner spaces single, case folded."""
    return " ".join(str(genre).split()).casefold()


def _block_target(kind: str, value: str) -> tuple[str, str]:
    """(stored value, label) of what ``value`` names, or BlocklistError."""
    value = str(value or "").strip()
    if not value:
        raise BlocklistError(f"Give the {kind} to block: its id{' or name' if kind == 'artist' else ''}.")
    if kind == BlockedItem.Kind.SONG:
        song = Song.objects.select_related("artist").filter(external_id=value).first()
        if song is None:
            raise BlocklistError(f"No song with id {value!r}.")
        return song.external_id, f"{song.name} — {song.artist.name}"
    if kind == BlockedItem.Kind.ARTIST:
        artist = Artist.objects.filter(external_id=value).first() or Artist.objects.filter(name=value).first()
        if artist is None:
            raise BlocklistError(f"No artist with id or name {value!r}.")
        return artist.external_id, artist.name
    genre = genre_normalise(value)
    if "," in genre or len(genre) > GENRE_MAX_LENGTH:
        raise BlocklistError(f"Give one genre of at most {GENRE_MAX_LENGTH} characters, without commas.")
    return genre, genre


def _block_kind(kind: str) -> str:
    if kind not in BlockedItem.Kind.values:
        raise BlocklistError(
            f"Unknown type {kind!r}: choose one of {', '.join(BlockedItem.Kind.values)}.", field="type"
        )
    return kind


def blocklist_add(*, user, kind: str, value: str) -> tuple[BlockedItem, bool]:
    """Block an artist (external id or exact name), a song (external id) or a
    genre for ``user``: (item, created). Blocking twice keeps one item."""
    kind = _block_kind(kind)
    stored, label = _block_target(kind, value)
    with transaction.atomic():
        existing = BlockedItem.objects.filter(user=user, kind=kind, value=stored).first()
        if existing is not None:
            return existing, False
        if BlockedItem.objects.filter(user=user).count() >= BLOCKLIST_MAX:
            raise BlocklistError(f"A blocklist holds at most {BLOCKLIST_MAX:,} items: unblock some first.")
        try:
            with transaction.atomic():
                return BlockedItem.objects.create(user=user, kind=kind, value=stored, label=label), True
        except IntegrityError:  # the same block added at the same moment
            return BlockedItem.objects.get(user=user, kind=kind, value=stored), False


def blocklist_remove(*, user, kind: str, value: str) -> bool:
    """Unblock; True when something was blocked. Artists by external id or
    exact name, genres in any case."""
    kind = _block_kind(kind)
    value = str(value or "").strip()
    candidates = {value}
    if kind == BlockedItem.Kind.GENRE:
        candidates = {genre_normalise(value)}
    elif kind == BlockedItem.Kind.ARTIST:
        candidates |= set(Artist.objects.filter(name=value).values_list("external_id", flat=True)[:10])
    deleted, _ = BlockedItem.objects.filter(user=user, kind=kind, value__in=candidates).delete()
    return deleted > 0
