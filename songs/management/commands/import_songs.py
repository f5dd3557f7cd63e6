import sys
import time
from pathlib import Path

from django.core.checks import Tags, registry
from django.core.management.base import BaseCommand, CommandError

from songs.formats import FORMATS
from songs.models import ImportJob
from songs.services import songs_import_file


class Command(BaseCommand):
    help = "Import a catalog CSV (Amazon/Spotify export or another Spotify-style export) into the song catalog."

    def check(self, app_configs=None, tags=None, **kwargs):
        # Every check but the URLconf's: resolving it imports every view, and
        # the engine's bring scikit-learn, SciPy, faiss and pandas (seconds of
        # start-up, ~100 MB) into a process that only reads a CSV. The web
        # server and `manage.py check` still check the URLs.
        if tags is None:
            tags = sorted(registry.registry.tags_available() - {Tags.urls})
        return super().check(app_configs=app_configs, tags=tags, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("path", help="CSV file to import")
        parser.add_argument(
            "--format",
            default="auto",
            choices=("auto", *FORMATS),
            help="Input format (default: auto-detect from the header)",
        )
        parser.add_argument(
            "--max-rejected-share",
            type=float,
            default=None,
            help="Reject the whole file when more than this share of rows is invalid (default: IMPORT_MAX_REJECTED_SHARE, 0.1)",
        )
        parser.add_argument("--no-progress", action="store_true", help="Do not draw a progress bar")

    def handle(self, *args, path, format, max_rejected_share, no_progress, **options):
        file_path = Path(path)
        if not file_path.is_file():
            raise CommandError(f"{path}: no such file.")
        if max_rejected_share is not None and not 0 <= max_rejected_share <= 1:
            raise CommandError("--max-rejected-share must be between 0 and 1.")
        bar = None
        if not no_progress and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(unit=" rows", unit_scale=True, dynamic_ncols=True, file=sys.stderr, desc="import")

        def progress(job: ImportJob) -> None:
            if bar is None:
                return
            if job.rows_total_estimate and bar.total != job.rows_total_estimate:
                bar.total = job.rows_total_estimate
            bar.set_postfix_str(job.stage, refresh=False)
            bar.update(job.rows_read - bar.n)

        started = time.perf_counter()
        job = songs_import_file(path=file_path, fmt=format, max_rejected_share=max_rejected_share, progress=progress)
        if bar is not None:
            bar.close()
        seconds = time.perf_counter() - started
        if job.status != ImportJob.Status.SUCCEEDED:
            raise CommandError(f"{path}: rejected: {job.error}")
        rate = job.rows_read / seconds if seconds else 0
        self.stdout.write(
            f"Imported {path} ({job.format}): {job.rows_read:,} rows read, {job.rows_created:,} created, "
            f"{job.rows_updated:,} updated, {job.rows_unchanged:,} unchanged, {job.rows_duplicate:,} duplicates, "
            f"{job.rows_rejected:,} rejected in {seconds:.1f} s ({rate:,.0f} rows/s); import job #{job.pk}."
        )
        for rejection in job.rejected_rows[:10]:
            self.stderr.write(f"  line {rejection['line']}, {rejection['column']}: {rejection['reason']}")
        if job.rows_rejected > 10:
            self.stderr.write(
                f"  … {job.rows_rejected - 10:,} more rejected rows (see import job #{job.pk} in the admin)."
            )
