"""Celery tasks of the clustering engine: they take ids and call one service."""

import logging

from celery import chord, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from . import selectors, services
from .errors import RunBusy, TrainingError

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    acks_late=True,
    soft_time_limit=settings.TRAIN_SOFT_TIME_LIMIT,
    time_limit=settings.TRAIN_SOFT_TIME_LIMIT + 60,
    max_retries=None,
)
def train_run_task(self, run_id: int) -> str:
    services.training_runs_fail_stale()
    try:
        claimed = services.training_run_claim(run_id=run_id)
    except RunBusy:
        if self.request.is_eager:
            services.training_run_fail(
                run_id=run_id, error="Another training run is in progress; try again when it ends."
            )
            return "failed"
        # Wait for the running one: the database allows one at a time. The
        # sweeper sees this message alive and does not send another.
        services.training_run_message_alive(run_id=run_id)
        raise self.retry(countdown=settings.TRAIN_BUSY_RETRY_SECONDS) from None
    if not claimed:  # redelivered, or already taken: nothing to do
        return "skipped"
    try:
        run = services.training_run_execute(run_id=run_id)
        if run.status == run.Status.RUNNING and run.stage == "labelling":
            ranges = selectors.song_id_ranges(chunk_songs=services.activation_chunk_size(run=run, n_songs=run.n_songs))
            # Workers label id ranges side by side; the last step writes them back atomically.
            chord(label_chunk_task.si(run_id, lo, hi) for lo, hi in ranges)(
                activate_staged_task.si(run_id, len(ranges)).on_error(fail_run_task.si(run_id))
            )
            return "labelling"
    except SoftTimeLimitExceeded:
        services.training_run_fail(
            run_id=run_id,
            error=f"Stopped at the time limit ({settings.TRAIN_SOFT_TIME_LIMIT} s); the previous model stays active.",
        )
        return "failed"
    except TrainingError as exc:
        services.training_run_fail(run_id=run_id, error=str(exc))
        return "failed"
    except Exception as exc:  # any crash fails the run with its reason; the old model stays active
        logger.exception("training run %s crashed", run_id)
        services.training_run_fail(run_id=run_id, error=f"Internal error: {exc.__class__.__name__}: {exc}")
        return "failed"
    return "succeeded"


# A chunk cut off by a dead worker process is redelivered and redone by
# another one: late acknowledgement, rejected (requeued) on worker loss, and
# idempotent (a chunk replaces its id range's staged labels).
@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.TRAIN_SOFT_TIME_LIMIT,
    time_limit=settings.TRAIN_SOFT_TIME_LIMIT + 60,
)
def label_chunk_task(run_id: int, lo: int, hi: int) -> int:
    return services.song_labels_stage(run_id=run_id, lo=lo, hi=hi)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.TRAIN_SOFT_TIME_LIMIT,
    time_limit=settings.TRAIN_SOFT_TIME_LIMIT + 60,
)
def activate_staged_task(run_id: int, chunks: int) -> str:
    try:
        services.training_run_activate_staged(run_id=run_id, chunks=chunks)
    except Exception as exc:  # the previous model stays active
        logger.exception("activation of run %s failed", run_id)
        services.training_run_fail(run_id=run_id, error=f"Activation failed: {exc.__class__.__name__}: {exc}")
        return "failed"
    return "succeeded"


@shared_task
def fail_run_task(run_id: int) -> None:
    services.training_run_fail(run_id=run_id, error="A labelling chunk failed; the previous model stays active.")
