"""Write a synthetic catalog in the flagship CSV format (see songs.generator)."""

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from songs.generator import generate_catalog

MAX_SONGS = 50_000_000


class Command(BaseCommand):
    help = (
        "Generate a realistic synthetic music catalog (flagship CSV format) with genre "
        "archetypes, so clustering finds real structure. Same --songs and --seed give the "
        "same bytes."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--songs", type=int, default=3000, help="Number of songs (rows), 1..50,000,000. Default 3000."
        )
        parser.add_argument("--seed", type=int, default=42, help="Random seed (>= 0). Default 42.")
        parser.add_argument("--out", required=True, help="Output CSV path, or '-' for standard output.")

    def handle(self, *args, songs, seed, out, **options):
        if songs < 1 or songs > MAX_SONGS:
            raise CommandError(f"--songs must be between 1 and {MAX_SONGS:,}, got {songs:,}.")
        if seed < 0:
            raise CommandError(f"--seed must be >= 0, got {seed}.")

        started = time.perf_counter()
        if out == "-":
            # The CSV goes to stdout; the summary goes to stderr so a pipe stays clean.
            try:
                rows = generate_catalog(songs=songs, seed=seed, out=self.stdout)
            except BrokenPipeError:  # e.g. piped into `head`: the reader has had enough
                return
            where, report = "stdout", self.stderr
        else:
            path = Path(out)
            if path.is_dir():
                raise CommandError(f"--out {out} is a directory; give a file path.")
            if not path.parent.is_dir():
                raise CommandError(f"--out {out}: directory {path.parent} does not exist.")
            progress = None
            if songs >= 500_000 and options.get("verbosity", 1) >= 2:

                def progress(done):
                    self.stderr.write(f"  {done:,}/{songs:,} rows")

            try:
                rows = generate_catalog(songs=songs, seed=seed, out=path, progress=progress)
            except OSError as exc:
                raise CommandError(f"Cannot write {out}: {exc}") from exc
            where, report = str(path), self.stdout
        elapsed = time.perf_counter() - started
        report.write(f"Wrote {rows:,} songs to {where} (seed {seed}) in {elapsed:.2f} s.")
