"""Clustering services: training runs, artifacts, activation and prediction.

A run goes queued → running → succeeded / failed. Training fits the pure ML
core (`clustering.ml`) on the catalog's feature matrix, writes the model
artifact (joblib, `*.part` then rename, sha256 in the row), writes the run's
own labels (clustering.labels: once, with COPY, into storage of the run) and
activates the run: one small transaction flips its active flag, so a reader
sees the old run's labels or the new run's, never a mix, and the songs are
never written.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from songs.background import BrokerUnavailable, Heartbeat, broker_check, broker_waiting
from songs.features import ATTRIBUTE_LABELS, FEATURE_NAMES
from songs.models import Artist, Song
from songs.services import CATALOG_LOCK_ID, import_jobs_fail_stale, import_jobs_resend

from .artifacts import model_load, model_write, run_files_remove
from .errors import ArtifactError, BlocklistError, RunBusy, TrainingError
from .labels import (
    labels_analyze,
    labels_drop,
    labels_drops_held,
    labels_exist,
    labels_max_song_id,
    labels_prune,
    labels_write,
)
from .ml import ClusterModel, match_models
from .ml.algorithms import DENSITY_ALGORITHMS
from .ml.features import unique_ints
from .ml.spec import TrainingSpec, spec_params
from .models import BlockedItem, Cluster, TrainingRun
from .selectors import active_run, song_feature_matrix, song_features_of

if TYPE_CHECKING:
    from .catalog_read import CatalogColumns

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
    """A failed run keeps no labels and no files (never the active run's)."""
    if not TrainingRun.objects.filter(pk=run_id, is_active=True).exists():
        try:
            labels_drop(run_id)
        except ValueError:  # activated meanwhile: its labels stay
            return
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
    labels_prune()
    return pruned


def work_sweep() -> dict[str, Any]:
    """What the workers' sweeper does every WORK_SWEEP_SECONDS: fail dead runs
    and imports (their staging tables and files go), re-send lost messages."""
    return {
        "runs_failed": training_runs_fail_stale(),
        "imports_failed": import_jobs_fail_stale(),
        "runs_resent": training_runs_resend(),
        "imports_resent": import_jobs_resend(),
        "labels_dropped": labels_prune(),
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

    def __init__(self, *, run_id: int, catalog: CatalogColumns):
        self.run_id, self.catalog = run_id, catalog
        self.path = self.digest = None
        self.error: BaseException | None = None
        self.seconds = 0.0
        self.timings: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        self._labels: np.ndarray | None = None
        self._map: np.ndarray | None = None
        self._labels_given = threading.Event()

    def labels_give(self, labels: np.ndarray | None, map_positions: np.ndarray | None = None) -> None:
        """The run's clusters, which the index stores (None: the run stopped
        first; a thread waiting for them gives up), and with ``map_positions``
        the map positions: given when the run's stored labels are these very
        arrays, so that readers may take a result's label from the index
        (``SimilarityIndex.labels_set``). Only the first call counts."""
        if not self._labels_given.is_set():
            self._labels, self._map = labels, map_positions
            self._labels_given.set()

    def run(self) -> None:
        # pandas loads where indexes are built, not in web processes
        from .index import similarity_index_fit, similarity_index_save

        started = time.perf_counter()
        waited = 0.0
        try:
            # Everything but the clusters, which the fit beside it decides.
            index, self.timings = similarity_index_fit(catalog=self.catalog, release=True)
            t = time.perf_counter()
            self._labels_given.wait()
            waited = time.perf_counter() - t
            if self._labels is None:
                raise TrainingError("the run stopped before its clusters were known")
            index.labels_set(self.catalog.ids, self._labels, self._map)
            self._labels = self._map = None
            t = time.perf_counter()
            self.path, self.digest = similarity_index_save(run_id=self.run_id, index=index)
            self.timings["save"] = time.perf_counter() - t
            self.timings["labels_wait"] = waited
        except BaseException as exc:  # handed to the training thread by result()
            self.error = exc
        finally:
            self.seconds = time.perf_counter() - started - waited

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
            self.labels_give(None)  # no-op once given; else a stopped run's thread must not wait forever
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
    # The run's one read of the catalog: the fit, the labels and the index share it.
    from .catalog_read import catalog_columns  # Arrow loads in training processes only

    catalog = catalog_columns()
    ids, X = catalog.ids, catalog.X
    timings["read"] = time.perf_counter() - t0
    spec = training_run_spec(run)
    if len(ids) < 10 or (spec.k != "auto" and len(ids) < 2 * spec.k):
        raise TrainingError(f"the catalog has {len(ids):,} songs: too few to train (import a catalog first)")
    chunk = activation_chunk_size(run=run, n_songs=len(ids))
    index = _IndexBuild(run_id=run.pk, catalog=catalog)
    # On Postgres the index builds in a thread from here on, beside the fit
    # (whose single-threaded steps leave a core free) and the labels' COPY
    # (the database server's work); it takes the clusters once the fit has
    # them. Its thread reads through its own connection, which sees committed
    # rows only, so inside an outer transaction (tests) it builds in line.
    overlap = not chunk and connection.vendor == "postgresql" and not connection.in_atomic_block
    if overlap:
        index.start()
    try:
        model = ClusterModel(**spec.model_kwargs(), feature_labels=ATTRIBUTE_LABELS)
        try:
            model.fit(X, progress=lambda stage, pct: progress(stage, 5 + int(pct * 0.75)), genres=catalog.genres)
        except ValueError as exc:
            raise TrainingError(f"the model could not be fitted: {exc}") from None
        outputs = model.pop_training_outputs()
        del X  # the index build, which may still read them, lets the features go last
        # The stored labels are these arrays, or (split over workers, or
        # written again for a song an import relabels) the model's
        # prediction from the same features, which equals them for every
        # algorithm but the density ones (a border point may take either
        # cluster): with those the index keeps its clusters but not the
        # map, and readers take results' labels from the database
        # (clustering.index_labels).
        stored = model.algorithm_ not in DENSITY_ALGORITHMS
        index.labels_give(outputs["labels"], outputs["embedding"] if stored else None)
        progress("saving", 82, force=True)
        t1 = time.perf_counter()
        path, digest = model_write(model=model, run_id=run.pk)
        timings["save"] = time.perf_counter() - t1
        if not overlap:
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
        if chunk:
            # The labels are written by a chord of id-range chunks (the
            # task), each into the run's partition (the first one there
            # creates it); the last step activates.
            progress("labelling", 88, force=True)
            timings["total_before_labelling"] = time.perf_counter() - t0
            TrainingRun.objects.filter(pk=run.pk).update(timings=_round(timings))
            run.refresh_from_db()
            return run
        progress("labelling", 86, force=True)
        t2 = time.perf_counter()
        labels_write(run=run, ids=ids, labels=outputs["labels"], embedding=outputs["embedding"])
        del outputs  # the map positions (the index holds the labels)
        labels_analyze(run.pk)
        timings["labels"] = time.perf_counter() - t2
        if overlap:
            # The index thread finishes before the flip (which records it).
            progress("indexing", 90, force=True)
            t3 = time.perf_counter()
            index.join()
            timings["index_wait"] = time.perf_counter() - t3
        if spec.activate:
            progress("activating", 92, force=True)
            t3 = time.perf_counter()
            _run_activate(run=run, model=model, before_flip=index.record if overlap else None)
            timings["activate"] = time.perf_counter() - t3
        elif overlap:
            index.record()
    finally:
        index.join()  # never leave the thread writing after a failure
    timings["index"] = index.seconds
    timings["index_steps"] = index.timings
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


def training_run_activate(*, run: TrainingRun, model: ClusterModel | None = None) -> TrainingRun:
    """Make the successful run ``run`` the active model (a rollback when it
    is an older one): one small transaction flips its active flag, whatever
    the catalog's size; its own labels, kept since it trained, become the
    ones every read joins. Songs imported since its labels were written are
    labelled with its model first. A run whose labels were dropped (past
    LABEL_RUNS_KEPT) labels the catalog again with its model before the
    flip, and one whose model files are gone too cannot come back (retrain):
    never a half state."""
    if run.status != TrainingRun.Status.SUCCEEDED:
        raise TrainingError(f"run #{run.pk} is {run.status}; only a successful run can be activated")
    try:
        if not run.artifact_path:
            raise ArtifactError(f"the model files of run #{run.pk} were removed (MODEL_KEEP_RUNS)")
        model = model or model_load(run)
    except ArtifactError as exc:
        if labels_exist(run.pk):
            raise
        raise TrainingError(
            f"run #{run.pk} cannot be activated: its labels were dropped (LABEL_RUNS_KEPT) and its model "
            f"cannot label the catalog again ({exc}); retrain instead"
        ) from None
    _run_activate(run=run, model=model)
    run.refresh_from_db()
    return run


def _run_activate(*, run: TrainingRun, model: ClusterModel, before_flip: Callable[[], None] | None = None) -> None:
    """Label what the run has not labelled yet, then flip. ``before_flip``
    runs inside the flip's transaction just before the flag flips (an
    exception there rolls it back). No drop of labels runs meanwhile: one
    that found the run inactive has finished before the check below, and
    one that starts later sees the run active."""
    with labels_drops_held():
        _run_label_and_flip(run=run, model=model, before_flip=before_flip)


def _run_label_and_flip(*, run: TrainingRun, model: ClusterModel, before_flip: Callable[[], None] | None) -> None:
    if not labels_exist(run.pk):
        logger.info("run %s has no labels (dropped): labelling the catalog with its model", run.pk)
        ids, X = song_feature_matrix()
        _labels_predict_write(run=run, model=model, ids=ids, X=X, replace="none")
        labels_analyze(run.pk)
    else:
        _labels_catch_up(run=run, model=model)
    previous = active_run()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # No import merges meanwhile: a song it adds is either seen by the
            # catch-up below or labelled by the import's hook after the flip.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CATALOG_LOCK_ID])
        _labels_catch_up(run=run, model=model)
        _carry_identity(run=run, model=model, previous=previous)
        if before_flip is not None:
            before_flip()
        TrainingRun.objects.filter(is_active=True).exclude(pk=run.pk).update(is_active=False)
        TrainingRun.objects.filter(pk=run.pk).update(is_active=True)


def _labels_predict_write(
    *, run: TrainingRun, model: ClusterModel, ids: np.ndarray, X: np.ndarray, replace: str, **kwargs: Any
) -> int:
    """Label songs (ids, features) with ``model`` into ``run``'s labels: its
    cluster, and its map position when the model has a 2-D projection."""
    if not len(ids):
        return labels_write(run=run, ids=ids, labels=np.empty(0, np.int64), embedding=None, replace=replace, **kwargs)
    embedding = model.transform_map(X) if getattr(model, "map_", None) is not None else None
    return labels_write(run=run, ids=ids, labels=model.predict(X), embedding=embedding, replace=replace, **kwargs)


def _labels_catch_up(*, run: TrainingRun, model: ClusterModel) -> int:
    """Label the songs added to the catalog after ``run``'s labels were
    written (their ids are larger: ids only grow); usually none, two index
    look-ups."""
    last = labels_max_song_id(run.pk)
    ids, X = song_feature_matrix(id_range=((last or 0) + 1, 2**63 - 1))
    return _labels_predict_write(run=run, model=model, ids=ids, X=X, replace="none") if len(ids) else 0


def songs_label_imported(*, song_ids: Iterable[int]) -> int:
    """Label songs an import just created or changed with the active run's
    model, so they show in their cluster at once (what the ``songs_imported``
    signal triggers). Prediction is cheap; the songs join the similar-song
    index at the next retrain. The number of songs labelled."""
    run = active_run()
    ids = unique_ints(np.fromiter((int(i) for i in song_ids), dtype=np.int64))
    if run is None or not len(ids):
        return 0
    try:
        model = model_load(run)
    except ArtifactError as exc:
        logger.warning("imported songs not labelled: the active model cannot be loaded (%s)", exc)
        return 0
    found, X = song_features_of(ids)
    return _labels_predict_write(run=run, model=model, ids=found, X=X, replace="ids")


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
    model = model_load(run)
    ids, X = song_feature_matrix(id_range=(lo, hi))
    # Its own range, replaced whole: a redelivered chunk writes the same rows once.
    _labels_predict_write(run=run, model=model, ids=ids, X=X, replace="range", id_range=(lo, hi))
    TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING).update(heartbeat_at=timezone.now())
    return len(ids)


def training_run_activate_staged(*, run_id: int, chunks: int) -> TrainingRun:
    """The chord's last step, once every chunk has written its labels: the
    run succeeds and (unless trained with ``activate`` off) its flag flips."""
    with Heartbeat(TrainingRun._meta.db_table, run_id):
        return _training_run_activate_staged(run_id=run_id, chunks=chunks)


def _training_run_activate_staged(*, run_id: int, chunks: int) -> TrainingRun:
    run = TrainingRun.objects.get(pk=run_id)
    if run.status != TrainingRun.Status.RUNNING:  # failed meanwhile (stale): never activate it
        raise TrainingError(f"run #{run.pk} is {run.status}; its labels were not written")
    labels_analyze(run.pk)
    t0 = time.perf_counter()
    if training_run_spec(run).activate:
        _run_activate(run=run, model=model_load(run))
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
