import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from clustering.exporting import songs_export_csv


class Command(BaseCommand):
    help = (
        "Export every song with its imported columns plus cluster, cluster_name, map_x, map_y as CSV ('-' for stdout)."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")

    def handle(self, *args, path, **options):
        started = time.perf_counter()
        if path == "-":
            rows = songs_export_csv(out=sys.stdout)
        else:
            target = Path(path)
            if not target.parent.is_dir():
                raise CommandError(f"{target.parent}: no such directory")
            part = target.with_name(target.name + ".part")
            with open(part, "w", encoding="utf-8", newline="") as fh:
                rows = songs_export_csv(out=fh)
            part.replace(target)
        self.stderr.write(f"Exported {rows:,} songs to {path} in {time.perf_counter() - started:.1f} s.")
