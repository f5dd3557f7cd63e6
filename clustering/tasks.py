"""Celery tasks of the clustering engine: they take ids and call one service."""
import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from . import services

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
    except services.RunBusy:
        if self.request.is_eager:
            services.training_run_fail(run_id=run_id, error="Another training run is in progress; try again when it ends.")
            return "failed"
        # Wait for the running one: the database allows one at a time.
        raise self.retry(countdown=settings.TRAIN_BUSY_RETRY_SECONDS) from None
    if not claimed:  # redelivered, or already taken: nothing to do
        return "skipped"
    try:
        services.training_run_execute(run_id=run_id)
    except SoftTimeLimitExceeded:
        services.training_run_fail(
            run_id=run_id, error=f"Stopped at the time limit ({settings.TRAIN_SOFT_TIME_LIMIT} s); the previous model stays active."
        )
        return "failed"
    except services.TrainingError as exc:
        services.training_run_fail(run_id=run_id, error=str(exc))
        return "failed"
    except Exception as exc:  # any crash fails the run with its reason; the old model stays active
        logger.exception("training run %s crashed", run_id)
        services.training_run_fail(run_id=run_id, error=f"Internal error: {exc.__class__.__name__}: {exc}")
        return "failed"
    return "succeeded"
