"""Benchmark the service on a generated catalog, in a scratch database.

Each phase is compared with a baseline measured in the same run (ratios are
what the performance targets are stated in; machines are noisy):
- import: `manage.py import_songs` in a child process (peak RSS measured)
  against `psql \\copy` of the same file into a bare table (Postgres only).
"""
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections

from songs.generator import generate_catalog
from songs.importing import FLAGSHIP_HEADER

_TEXT_COLUMNS = {"id_songs", "name_song", "id_artists", "release_date", "genres", "name_artists"}


def _run_child(args: list[str], env: dict) -> tuple[float, float, subprocess.CompletedProcess]:
    """Run a command; return (seconds, its own peak RSS in MB, result)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(args, proc.returncode, out.read().decode(), err.read().decode())
    return seconds, usage.ru_maxrss / 1024, result


class Command(BaseCommand):
    help = "Benchmark import (and later phases) on a generated catalog of N songs, in a scratch database."

    def add_arguments(self, parser):
        parser.add_argument("--songs", type=int, default=100_000, help="Catalog size (default 100,000)")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--json", dest="json_path", help="Also write the results as JSON to this path")
        parser.add_argument("--keep-db", action="store_true", help="Keep the scratch database afterwards")

    def handle(self, *args, songs, seed, json_path, keep_db, **options):
        if not 1_000 <= songs <= 20_000_000:
            raise CommandError("--songs must be between 1,000 and 20,000,000.")
        self.results: dict = {
            "songs": songs,
            "database": connection.vendor,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "phases": {},
        }
        with tempfile.TemporaryDirectory(prefix="mc-bench-") as tmp:
            tmp_path = Path(tmp)
            csv_path = tmp_path / "catalog.csv"
            t = time.perf_counter()
            generate_catalog(songs=songs, seed=seed, out=csv_path)
            self._phase("generate", seconds=time.perf_counter() - t, bytes=csv_path.stat().st_size)

            env = self._scratch_database(tmp_path)
            try:
                call_command("migrate", verbosity=0)
                self._bench_import(csv_path, env)
                self._bench_retrain(env)
            finally:
                self._drop_scratch(keep_db)

        self.stdout.write(json.dumps(self.results, indent=2))
        if json_path:
            Path(json_path).write_text(json.dumps(self.results, indent=2) + "\n")
            self.stdout.write(f"Wrote {json_path}")

    # --- phases -----------------------------------------------------------

    def _phase(self, name: str, **values) -> None:
        rounded = {k: round(v, 3) if isinstance(v, float) else v for k, v in values.items()}
        self.results["phases"][name] = rounded
        self.stderr.write(f"{name}: " + ", ".join(f"{k}={v}" for k, v in rounded.items()))

    def _bench_import(self, csv_path: Path, env: dict) -> None:
        seconds, peak_mb, result = _run_child(
            [sys.executable, str(settings.BASE_DIR / "manage.py"), "import_songs", str(csv_path), "--no-progress"], env
        )
        if result.returncode != 0:
            raise CommandError(f"import failed: {result.stderr.strip()}")
        rows = self.results["songs"]
        values = {"seconds": seconds, "rows_per_second": rows / seconds, "peak_rss_mb": peak_mb}
        if connection.vendor == "postgresql":
            copy_seconds = self._psql_copy(csv_path, env)
            values.update(psql_copy_seconds=copy_seconds, ratio_to_psql_copy=seconds / copy_seconds)
        self._phase("import", **values)
        # A second import of the same file: every row is checked, none is rewritten.
        seconds, _, result = _run_child(
            [sys.executable, str(settings.BASE_DIR / "manage.py"), "import_songs", str(csv_path), "--no-progress"], env
        )
        if result.returncode != 0:
            raise CommandError(f"re-import failed: {result.stderr.strip()}")
        self._phase("reimport_unchanged", seconds=seconds, rows_per_second=rows / seconds)

    def _bench_retrain(self, env: dict) -> None:
        """Retrain k=8 and the k scan in a child process (in-process tasks),
        against the bare scikit-learn pipeline on the same matrix."""
        from sklearn.cluster import KMeans
        from sklearn.preprocessing import StandardScaler

        from clustering.services import song_feature_matrix

        child_env = {k: v for k, v in env.items() if k != "CELERY_BROKER_URL"}
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        for phase, extra in (("retrain_k8", ["--k", "8"]), ("k_scan_2_12", ["--k", "auto", "--no-activate"])):
            seconds, peak_mb, result = _run_child([*manage, "train", *extra, "--wait"], child_env)
            if result.returncode != 0:
                raise CommandError(f"{phase} failed: {result.stderr.strip()[-2000:]}")
            run = json.loads(result.stdout.strip().splitlines()[-1])
            values = {"seconds": seconds, "peak_rss_mb": peak_mb, "k": run["n_clusters"],
                      "silhouette": run["metrics"].get("silhouette"), "run_timings": run["timings"]}
            if phase == "retrain_k8":
                # The same work with nothing around it: read once, scale, fit, predict.
                t = time.perf_counter()
                _, X = song_feature_matrix()
                read = time.perf_counter() - t
                t = time.perf_counter()
                Z = StandardScaler().fit_transform(X)
                KMeans(n_clusters=8, n_init=3, random_state=0).fit(Z).predict(Z)
                bare = time.perf_counter() - t
                values.update(bare_sklearn_seconds=bare, bare_read_seconds=read, ratio_to_bare_sklearn=seconds / bare)
                del X, Z
            self._phase(phase, **values)

    def _psql_copy(self, csv_path: Path, env: dict) -> float:
        columns = ", ".join(f"{c} {'text' if c in _TEXT_COLUMNS else 'double precision'}" for c in FLAGSHIP_HEADER)
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS bench_bare_copy")
            cursor.execute(f"CREATE TABLE bench_bare_copy ({columns})")
        db = connection.settings_dict
        started = time.perf_counter()
        subprocess.run(
            ["psql", "-q", "-h", db["HOST"] or "127.0.0.1", "-p", str(db["PORT"] or 5432), "-U", db["USER"] or "postgres",
             "-d", db["NAME"], "-c", f"\\copy bench_bare_copy FROM '{csv_path}' WITH (FORMAT csv, HEADER true)"],
            check=True,
            env={**env, "PGPASSWORD": db.get("PASSWORD") or ""},
        )
        seconds = time.perf_counter() - started
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE bench_bare_copy")
        return seconds

    # --- scratch database -------------------------------------------------

    def _scratch_database(self, tmp_path: Path) -> dict:
        """Point the default connection (and child processes) at a new, empty database."""
        db = connections["default"].settings_dict
        env = dict(os.environ)
        self._original = dict(db)
        if connection.vendor == "postgresql":
            self._scratch_name = f"musiccluster_bench_{os.getpid()}"
            with connection.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {self._scratch_name}")
                cursor.execute(f"CREATE DATABASE {self._scratch_name}")
            connection.close()
            db["NAME"] = self._scratch_name
            auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
            env["DATABASE_URL"] = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{self._scratch_name}"
            env.setdefault("SECRET_KEY", settings.SECRET_KEY)
        else:
            self._scratch_name = None
            connection.close()
            env["VAR_DIR"] = str(tmp_path / "var")
            db["NAME"] = str(tmp_path / "var" / "db.sqlite3")
            Path(db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        return env

    def _drop_scratch(self, keep: bool) -> None:
        connection.close()
        connections["default"].settings_dict.update(self._original)
        if self._scratch_name and not keep:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {self._scratch_name}")
        elif self._scratch_name:
            self.stderr.write(f"kept scratch database {self._scratch_name}")
