from django.conf import settings
from django.core.management.base import BaseCommand

from songs.services import import_uploads_prune


class Command(BaseCommand):
    help = (
        "Remove uploaded CSVs of imports that ended more than IMPORT_UPLOAD_KEEP_DAYS days ago (0: all of them) "
        "and uploads no import job owns. Imports and the workers' sweeper do this by themselves; this is for "
        "cleaning up now (e.g. files kept by an older version)."
    )

    def handle(self, *args, **options):
        removed = import_uploads_prune()
        self.stdout.write(
            f"Removed {removed:,} uploaded file(s) from {settings.MEDIA_ROOT} "
            f"(kept: queued and running imports' files, and ended ones younger than "
            f"{settings.IMPORT_UPLOAD_KEEP_DAYS:g} days)."
        )
