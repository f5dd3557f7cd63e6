import json
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.renderers import JSONRenderer

from clustering import services
from clustering.api import TrainingRunSerializer
from clustering.errors import TrainingError
from clustering.ml.spec import spec_params
from clustering.models import TrainingRun
from songs.background import BrokerUnavailable


class Command(BaseCommand):
    help = "Queue a training run (runs in-process without a broker). --wait prints the finished run as JSON on its last line."

    def add_arguments(self, parser):
        # One option per training parameter (clustering.ml.spec); the service validates them.
        for name, default, meta in spec_params():
            flag, kind, text = "--" + name.replace("_", "-"), meta["kind"], meta["help"]
            if kind == "bool":
                parser.add_argument(
                    f"--no-{name.replace('_', '-')}",
                    dest=name,
                    action="store_false",
                    default=default,
                    help=f"Do not: {text[0].lower()}{text[1:]}",
                )
            elif kind == "k_range":
                parser.add_argument(
                    flag,
                    type=int,
                    nargs=2,
                    metavar=("FROM", "TO"),
                    default=default,
                    help=f"{text} (default {default[0]} {default[1]})",
                )
            elif kind == "params":
                parser.add_argument(flag, type=json.loads, default=default, help=f"{text} (JSON)")
            elif kind == "features":
                parser.add_argument(flag, default="", help=f"{text} Comma-separated.")
            else:
                parser.add_argument(
                    flag,
                    default=default,
                    choices=meta["choices"] or None,
                    type=int if kind == "int" else str,
                    help=f"{text} (default {default})",
                )
        parser.add_argument("--wait", action="store_true", help="wait for the run to finish and print it as JSON")
        parser.add_argument("--timeout", type=float, default=3600, help="seconds --wait waits at most")

    def handle(self, *args, **o):
        params = {name: o[name] for name, _, _ in spec_params()}
        params["features"] = params["features"] or None  # all ten
        try:
            with transaction.atomic():
                run = services.training_run_create(**params)
        except (TrainingError, BrokerUnavailable) as exc:
            raise CommandError(str(exc)) from None
        k = run.params["k"]
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
