"""Celery tasks of the catalog: thin wrappers that take ids and call a service."""
import logging
from pathlib import Path

from celery import shared_task

from . import services
from .models import ImportJob

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, soft_time_limit=3600, time_limit=3700)
def import_songs_task(self, job_id: int, fmt: str = "auto") -> str:
    # The conditional claim makes a redelivered message (acks_late) a no-op.
    if not services.import_job_claim(job_id=job_id):
        logger.info("import job %s is not queued any more; skipping", job_id)
        return "skipped"
    job = ImportJob.objects.get(pk=job_id)
    job = services.import_job_run(job=job, path=Path(job.file.path), fmt=fmt)
    return job.status
