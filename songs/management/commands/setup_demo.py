import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from songs.models import ImportJob, Song
from songs.services import songs_import_file

DEMO_CATALOG = settings.BASE_DIR / "fixtures" / "demo_catalog.csv"


class Command(BaseCommand):
    help = "Import the demo catalog from fixtures/ when the catalog is empty (used by `make run`)."

    def handle(self, *args, **options):
        if Song.objects.exists():
            self.stdout.write(f"Catalog has {Song.objects.count():,} songs; demo import skipped.")
            return
        started = time.perf_counter()
        job = songs_import_file(path=DEMO_CATALOG)
        if job.status != ImportJob.Status.SUCCEEDED:
            raise CommandError(f"demo catalog import failed: {job.error}")
        self.stdout.write(
            f"Imported the demo catalog: {job.rows_created:,} songs in {time.perf_counter() - started:.1f} s."
        )
