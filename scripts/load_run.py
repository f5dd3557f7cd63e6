"""The bounded load run: gunicorn (2 sync workers, DEBUG off) on loopback
over a trained catalog, driven by threads of this process.

    .venv/bin/python scripts/load_run.py [--songs N] [--database-url postgres://…/postgres]
                                         [--cache-url redis://…/N] [--seconds S] [--rss-requests N] [--json PATH]

It measures, in this order (docs/PERFORMANCE.md, "Load run"):

1. **bystander**: a client fetching song pages one after another, alone
   (the baseline), then while six clients hammer the most expensive anonymous
   request (``POST /api/predict/?nearest=20`` with 1,000 vectors, the most
   the caps allow); its p50 / p99 in both, and what the six got (200 / 429).
2. **concurrency**: 1, 4, 16 and 64 clients on similar songs, recommendations
   and song pages; every status counted (429s apart; a 5xx or a dropped
   connection is a failure).
3. **memory**: a second server with the throttles lifted (so that every
   request does its work), warmed up with 2,000 requests, then
   ``--rss-requests`` requests from 4 clients (similar songs and
   recommendations, one song page and one 10-vector prediction with
   neighbours in ten); each worker's VmRSS before and after.

The server runs with production settings (DEBUG off, the default throttles,
a cache shared by the two workers: ``--cache-url`` or a file cache), tasks
in-process (no broker: nothing here queues work). By default the database is
a SQLite file in a scratch folder; ``--database-url`` (an admin URL of a
Postgres server) makes it a scratch Postgres database, dropped afterwards.
The exit status is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from songs.features import FEATURES  # noqa: E402  (plain Python, no Django)

DEMO_CSV = ROOT / "fixtures" / "demo_catalog.csv"
HAMMER_CLIENTS = 6
PREDICT_VECTORS = 1_000  # clustering.api.MAX_NEAREST_VECTORS
PREDICT_NEAREST = 20  # 1,000 × 20 = PREDICT_MAX_NEIGHBOUR_LOOKUPS
CONCURRENCY = (1, 4, 16, 64)
TARGET_P99_MS = 500
TARGET_RSS_GROWTH = 0.05
LIFTED = "1000000000/second"


def say(text: str) -> None:
    print(text, flush=True)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def spare_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# --- the server ---------------------------------------------------------------------


class Scratch:
    """A scratch folder, database and environment; removed by :meth:`close`."""

    def __init__(self, *, database_url: str | None, cache_url: str | None, keep: bool):
        self.dir = Path(tempfile.mkdtemp(prefix="load-run-"))
        self.keep = keep
        self.admin_url = database_url
        self.db_name = f"load_run_{os.getpid()}"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CACHE_URL", "DEBUG")
        }
        env.update(
            DEBUG="0",
            SECRET_KEY=secrets.token_urlsafe(50),
            VAR_DIR=str(self.dir),
            MODEL_DIR=str(self.dir / "models"),
            MEDIA_ROOT=str(self.dir / "uploads"),
            STATIC_ROOT=str(self.dir / "static"),
            CACHE_URL=cache_url or f"file://{self.dir / 'cache'}",
            LOG_LEVEL="WARNING",
        )
        if database_url:
            self._admin(f"CREATE DATABASE {self.db_name}")
            parts = urlsplit(database_url)
            env["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{self.db_name}"))
        self.env = env

    def _admin(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(statement)

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
        return done.stdout

    def close(self) -> None:
        if self.keep:
            say(f"kept: {self.dir}" + (f" and database {self.db_name}" if self.admin_url else ""))
            return
        if self.admin_url:
            self._admin(f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)")
        shutil.rmtree(self.dir, ignore_errors=True)


class Server:
    """gunicorn with two sync workers on a spare loopback port."""

    def __init__(self, env: dict[str, str], log: Path, workers: int = 2):
        self.port = spare_port()
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "musiccluster.wsgi", "-b", f"127.0.0.1:{self.port}",
                 "--workers", str(workers), "--timeout", "120"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited:\n{log.read_text()[-3000:]}")
            try:
                if request(self.port, "GET", "/healthz?quick=1")[0] == 200 and len(self.workers()) == workers:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not answer within 120 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)

    def workers(self) -> list[int]:
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def rss_kb(self) -> dict[int, int]:
        found = {}
        for pid in self.workers():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    found[pid] = int(line.split()[1])
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()


# --- the clients ----------------------------------------------------------------------


def request(port: int, method: str, path: str, body: bytes | None = None, timeout: float = 60) -> tuple[int, float]:
    """(status, seconds) of one request on a new connection (gunicorn's sync
    workers close after each response); status 0 for a dropped connection."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        status = response.status
    except (OSError, http.client.HTTPException):
        status = 0
    finally:
        conn.close()
    return status, time.perf_counter() - started


class Catalog:
    def __init__(self, path: Path, seed: int = 7):
        with open(path, newline="", encoding="utf-8") as fh:
            self.ids = [row["id_songs"] for row in csv.DictReader(fh)]
        self.rng = random.Random(seed)
        self.lock = threading.Lock()

    def song(self) -> str:
        with self.lock:
            return self.rng.choice(self.ids)

    def predict_body(self, n: int) -> bytes:
        rng = random.Random(11)
        vectors = []
        for _ in range(n):
            vector = {}
            for f in FEATURES:
                low, high = f.slider or (f.low, f.high)
                value = rng.uniform(low, high)
                vector[f.name] = max(value, low + 1) if f.name == "duration_ms" else value
            vectors.append(vector)
        return json.dumps(vectors).encode()


def browse_request(catalog: Catalog, kind: str) -> tuple[str, str]:
    song = catalog.song()
    if kind == "similar":
        return "GET", f"/api/songs/{song}/similar/?limit=10"
    if kind == "recommendations":
        return "GET", f"/api/recommendations/?seed_songs={song}&limit=10"
    return "GET", f"/songs/{song}/"


KINDS = ("similar", "recommendations", "song page")


def run_clients(n: int, work, *, requests: int | None = None, seconds: float | None = None) -> list[tuple]:
    """``n`` threads calling ``work(i)`` until ``requests`` calls in all or
    ``seconds`` have passed; every call's result."""
    results: list[tuple] = []
    lock = threading.Lock()
    counter = iter(range(requests)) if requests is not None else None
    deadline = time.monotonic() + seconds if seconds is not None else None

    def loop() -> None:
        while True:
            if deadline is not None and time.monotonic() > deadline:
                return
            if counter is not None:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
            else:
                i = 0
            result = work(i)
            with lock:
                results.append(result)

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def status_counts(statuses) -> dict[str, int]:
    counts = Counter()
    for status in statuses:
        if status == 0:
            counts["dropped"] += 1
        elif status == 429:
            counts["429"] += 1
        elif status >= 500:
            counts["5xx"] += 1
        elif status >= 400:
            counts["4xx"] += 1
        else:
            counts["2xx"] += 1
    return {k: counts.get(k, 0) for k in ("2xx", "429", "4xx", "5xx", "dropped")}


# --- the phases ------------------------------------------------------------------------


def phase_bystander(port: int, catalog: Catalog, seconds: float) -> dict:
    def page(_):
        return request(port, "GET", f"/songs/{catalog.song()}/")

    alone = run_clients(1, page, seconds=seconds / 2)
    body = catalog.predict_body(PREDICT_VECTORS)
    path = f"/api/predict/?nearest={PREDICT_NEAREST}"
    hammer_results: list[tuple] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            hammer_results.append(request(port, "POST", path, body))

    hammers = [threading.Thread(target=hammer, daemon=True) for _ in range(HAMMER_CLIENTS)]
    for t in hammers:
        t.start()
    time.sleep(1)  # the six are at it
    loaded = run_clients(1, page, seconds=seconds)
    stop.set()
    for t in hammers:
        t.join()
    ms = lambda rs: [s * 1000 for _, s in rs]  # noqa: E731
    ok_ms = [s * 1000 for status, s in hammer_results if status == 200]
    return {
        "page": "/songs/<id>/",
        "alone": {"requests": len(alone), "p50_ms": percentile(ms(alone), 50), "p99_ms": percentile(ms(alone), 99),
                  "statuses": status_counts(s for s, _ in alone)},
        "under_load": {"requests": len(loaded), "p50_ms": percentile(ms(loaded), 50),
                       "p99_ms": percentile(ms(loaded), 99), "statuses": status_counts(s for s, _ in loaded)},
        "hammer": {"clients": HAMMER_CLIENTS, "request": f"POST {path} with {PREDICT_VECTORS:,} vectors",
                   "body_bytes": len(body), "statuses": status_counts(s for s, _ in hammer_results),
                   "served_p50_ms": percentile(ok_ms, 50)},
    }  # fmt: skip


def phase_concurrency(port: int, catalog: Catalog, per_client: int) -> dict:
    levels = {}
    for n in CONCURRENCY:
        total = max(300, n * per_client)

        def work(i):
            kind = KINDS[i % len(KINDS)]
            status, seconds = request(port, *browse_request(catalog, kind))
            return kind, status, seconds

        started = time.monotonic()
        results = run_clients(n, work, requests=total)
        elapsed = time.monotonic() - started
        by_kind = {kind: status_counts(s for k, s, _ in results if k == kind) for kind in KINDS}
        served = [s * 1000 for _, status, s in results if status == 200]
        levels[n] = {
            "requests": len(results),
            "seconds": round(elapsed, 1),
            "statuses": status_counts(s for _, s, _ in results),
            "by_kind": by_kind,
            "served_p50_ms": percentile(served, 50),
            "served_p99_ms": percentile(served, 99),
        }
        say(f"  {n:>2} clients: {levels[n]['statuses']} in {elapsed:.1f} s")
    return levels


def phase_memory(server: Server, catalog: Catalog, requests_n: int) -> dict:
    small = catalog.predict_body(10)

    def work(i):
        # Mostly the API (cheap requests: many of them in little time), one
        # song page in ten, one small prediction with neighbours in ten.
        if i % 10 == 9:
            return request(server.port, "POST", "/api/predict/?nearest=5", small)
        if i % 10 == 8:
            return request(server.port, *browse_request(catalog, "song page"))
        return request(server.port, *browse_request(catalog, KINDS[i % 2]))

    warm = run_clients(4, work, requests=2_000)
    before = server.rss_kb()
    started = time.monotonic()
    results = run_clients(4, work, requests=requests_n)
    elapsed = time.monotonic() - started
    after = server.rss_kb()
    growth = {pid: (after[pid] - before[pid]) / before[pid] for pid in before if pid in after}
    return {
        "warm_up_requests": len(warm),
        "requests": len(results),
        "seconds": round(elapsed, 1),
        "statuses": status_counts(s for s, _ in results),
        "rss_kb_before": before,
        "rss_kb_after": after,
        "growth": growth,
        "workers_replaced": sorted(set(before) ^ set(after)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--songs", type=int, default=0, help="a generated catalog of N songs (default: the demo)")
    parser.add_argument("--database-url", default="", help="admin URL of a Postgres server for a scratch database")
    parser.add_argument("--cache-url", default="", help="the throttles' cache (default: a file cache)")
    parser.add_argument("--seconds", type=float, default=30, help="the bystander's time under load (default 30)")
    parser.add_argument("--per-client", type=int, default=20, help="requests per client and level (default 20)")
    parser.add_argument("--rss-requests", type=int, default=20_000, help="requests of the memory phase")
    parser.add_argument("--json", default="", help="write the figures here too")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder and database")
    args = parser.parse_args()

    figures: dict = {"load_before": load_average(), "cpus": os.cpu_count()}
    say(f"load average {figures['load_before']} on {figures['cpus']} CPUs")
    scratch = Scratch(database_url=args.database_url or None, cache_url=args.cache_url or None, keep=args.keep)
    server = None
    failures = []
    try:
        scratch.manage("migrate", "--noinput", "-v", "0")
        scratch.manage("collectstatic", "--noinput", "-v", "0")
        if args.songs:
            catalog_csv = scratch.dir / "catalog.csv"
            scratch.manage("generate_catalog", "--songs", str(args.songs), "--out", str(catalog_csv))
            scratch.manage("import_songs", str(catalog_csv), "--no-progress")
            scratch.manage("train", "--k", "8", "--wait")
        else:
            catalog_csv = DEMO_CSV
            scratch.manage("setup_demo")
        catalog = Catalog(catalog_csv)
        figures["songs"] = len(catalog.ids)
        figures["database"] = "postgres" if args.database_url else "sqlite"
        say(f"{len(catalog.ids):,} songs trained ({figures['database']}); gunicorn, 2 sync workers, DEBUG off")

        server = Server(scratch.env, scratch.dir / "gunicorn.log")
        run_clients(2, lambda i: request(server.port, *browse_request(catalog, KINDS[i % 3])), requests=60)
        say(f"1. bystander: song pages alone, then beside {HAMMER_CLIENTS} predict clients ({args.seconds:.0f} s)")
        figures["bystander"] = b = phase_bystander(server.port, catalog, args.seconds)
        say(
            f"  alone p50 / p99 {b['alone']['p50_ms']:.0f} / {b['alone']['p99_ms']:.0f} ms; under load "
            f"{b['under_load']['p50_ms']:.0f} / {b['under_load']['p99_ms']:.0f} ms ({b['under_load']['requests']} "
            f"pages); the six got {b['hammer']['statuses']}"
        )
        if not b["under_load"]["p99_ms"] <= TARGET_P99_MS:
            failures.append(f"bystander p99 {b['under_load']['p99_ms']:.0f} ms > {TARGET_P99_MS} ms")
        if b["under_load"]["statuses"]["2xx"] != b["under_load"]["requests"]:
            failures.append(f"the bystander got {b['under_load']['statuses']}")
        say("2. concurrency: similar songs, recommendations and song pages")
        figures["concurrency"] = levels = phase_concurrency(server.port, catalog, args.per_client)
        for n, level in levels.items():
            if level["statuses"]["5xx"] or level["statuses"]["dropped"]:
                failures.append(f"{n} clients: {level['statuses']}")
        server.stop()

        say(f"3. memory: {args.rss_requests:,} requests, throttles lifted")
        lifted = {
            **scratch.env,
            **{f"API_{name}_RATE": LIFTED for name in ("ANON", "USER", "PREDICT_NEAREST", "RECOMMENDATIONS")},
        }
        server = Server(lifted, scratch.dir / "gunicorn-memory.log")
        figures["memory"] = m = phase_memory(server, catalog, args.rss_requests)
        worst = max(m["growth"].values()) if m["growth"] else float("nan")
        say(
            f"  {m['requests']:,} requests in {m['seconds']:.0f} s, {m['statuses']}; RSS kB before "
            f"{m['rss_kb_before']}, after {m['rss_kb_after']}; worst growth {worst:.1%}"
        )
        if m["workers_replaced"] or not worst <= TARGET_RSS_GROWTH:
            failures.append(
                f"worker RSS growth {worst:.1%} > {TARGET_RSS_GROWTH:.0%} (replaced: {m['workers_replaced']})"
            )
        if m["statuses"]["5xx"] or m["statuses"]["dropped"]:
            failures.append(f"memory phase: {m['statuses']}")
    finally:
        if server is not None:
            server.stop()
        scratch.close()
    figures["load_after"] = load_average()
    figures["failures"] = failures
    say(f"load average {figures['load_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
    say("all targets met" if not failures else "MISSED: " + "; ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
