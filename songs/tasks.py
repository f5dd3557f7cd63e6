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
    try:
        path = Path(job.file.path)
        if not path.is_file():
            services.import_job_fail(
                job=job,
                error=f"The uploaded file is not on this worker ({path}); MEDIA_ROOT must be storage the workers share.",
            )
            return job.status
        job = services.import_job_run(job=job, path=path, fmt=fmt)
        return job.status
    finally:
        # The upload of an ended import goes (now, or after IMPORT_UPLOAD_KEEP_DAYS).
        try:
            services.import_uploads_prune()
        except Exception:
            logger.exception("could not prune uploaded files after import job %s", job_id)
