import json
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.renderers import JSONRenderer

from clustering import services
from clustering.api import TrainingRunSerializer
from clustering.ml import ALGORITHMS, SCALERS
from clustering.models import TrainingRun


class Command(BaseCommand):
    help = "Queue a training run (runs in-process without a broker). --wait prints the finished run as JSON on its last line."

    def add_arguments(self, parser):
        parser.add_argument("--algorithm", default="kmeans", choices=ALGORITHMS)
        parser.add_argument("--k", default="8", help="number of clusters, or 'auto' to pick by silhouette (default 8)")
        parser.add_argument("--scaler", default="standard", choices=SCALERS)
        parser.add_argument("--features", default="", help="comma-separated subset of the ten features (default: all)")
        parser.add_argument("--scan-sample-size", type=int, default=10_000, help="rows used for silhouette in the k scan")
        parser.add_argument("--scan-k-min", type=int, default=2, help="smallest k tried by --k auto (default 2)")
        parser.add_argument("--scan-k-max", type=int, default=12, help="largest k tried by --k auto (default 12)")
        parser.add_argument("--random-state", type=int, default=0)
        parser.add_argument("--no-activate", action="store_true", help="train but keep the current model active")
        parser.add_argument("--wait", action="store_true", help="wait for the run to finish and print it as JSON")
        parser.add_argument("--timeout", type=float, default=3600, help="seconds --wait waits at most")

    def handle(self, *args, **o):
        k = o["k"]
        features = [f.strip() for f in o["features"].split(",") if f.strip()] or None
        try:
            with transaction.atomic():
                run = services.training_run_create(
                    algorithm=o["algorithm"], k=k, scaler=o["scaler"], features=features,
                    scan_sample_size=o["scan_sample_size"], random_state=o["random_state"],
                    scan_k_range=(o["scan_k_min"], o["scan_k_max"]),
                    activate=not o["no_activate"],
                )
        except services.TrainingError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(f"Queued training run #{run.pk} ({run.algorithm}, k={k}).")
        if not o["wait"]:
            return
        deadline = time.monotonic() + o["timeout"]
        last = None
        while True:
            run.refresh_from_db()
            if run.status in (TrainingRun.Status.SUCCEEDED, TrainingRun.Status.FAILED):
                break
            if (run.stage, run.progress) != last:
                last = (run.stage, run.progress)
                self.stderr.write(f"  {run.status}: {run.stage} {run.progress}%")
            if time.monotonic() > deadline:
                raise CommandError(f"run #{run.pk} did not finish within {o['timeout']:.0f} s (still {run.status})")
            time.sleep(0.5)
        # The same shape as GET /api/runs/{id}/.
        payload = json.loads(JSONRenderer().render(TrainingRunSerializer(run).data))
        if run.status == TrainingRun.Status.FAILED:
            self.stdout.write(json.dumps(payload))
            raise CommandError(f"run #{run.pk} failed: {run.error}")
        self.stdout.write(json.dumps(payload))
