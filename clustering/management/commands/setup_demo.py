import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from songs.models import ImportJob, Song
from songs.services import songs_import_file

DEMO_CATALOG = settings.BASE_DIR / "fixtures" / "demo_catalog.csv"


class Command(BaseCommand):
    help = (
        "Import the demo catalog from fixtures/ when the catalog is empty, and train and activate a model "
        "when none is active (used by `make run`)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--k",
            default="auto",
            help="Clusters of the demo model: a number, or auto (the default) to choose it by a scan of 5-12.",
        )

    def handle(self, *args, **options):
        k = options["k"]
        if k != "auto":
            try:
                k = int(k)
            except ValueError:
                raise CommandError(f"--k must be a whole number or auto, not {k!r}") from None
        if Song.objects.exists():
            self.stdout.write(f"Catalog has {Song.objects.count():,} songs; demo import skipped.")
        else:
            self._import()
        self._train(k)

    def _train(self, k):
        from clustering import services
        from clustering.errors import TrainingError
        from clustering.models import TrainingRun

        if TrainingRun.objects.filter(is_active=True).exists():
            return
        started = time.perf_counter()
        # Silhouette alone prefers 2 broad clusters; a browsing demo wants more.
        scan = {"scan_k_range": (5, 12)} if k == "auto" else {}
        try:
            run = services.training_run_create(k=k, enqueue=False, **scan)
        except TrainingError as exc:
            raise CommandError(f"--k: {exc}") from None
        services.training_run_claim(run_id=run.pk)
        try:
            run = services.training_run_execute(run_id=run.pk)
        except TrainingError as exc:
            services.training_run_fail(run_id=run.pk, error=str(exc))
            raise CommandError(f"training the demo model failed: {exc}") from None
        names = ", ".join(run.clusters.order_by("label").values_list("name", flat=True))
        self.stdout.write(
            f"Trained run #{run.pk}: {run.algorithm}, k={run.n_clusters}, silhouette "
            f"{run.metrics.get('silhouette', 0):.3f} in {time.perf_counter() - started:.1f} s — {names}."
        )

    def _import(self):
        started = time.perf_counter()
        job = songs_import_file(path=DEMO_CATALOG)
        if job.status != ImportJob.Status.SUCCEEDED:
            raise CommandError(f"demo catalog import failed: {job.error}")
        self.stdout.write(
            f"Imported the demo catalog: {job.rows_created:,} songs in {time.perf_counter() - started:.1f} s."
        )
