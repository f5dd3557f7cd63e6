"""Schemathesis against /api/schema/ of a live server: no request may get a 5xx.

A gunicorn server (DEBUG off, tasks in-process) serves a scratch copy of the
demo catalog with a trained model: an embedded SQLite database in a temp
folder, or a scratch Postgres database on the server of DATABASE_URL when
that is set (the second pass of .ci/run). `schemathesis run` then reads the
schema and sends generated requests — valid and invalid, coverage,
fuzzing and stateful phases — to every operation, authenticated with a
staff token.

Only server errors (check `not_a_server_error`, code ST101) and requests the
server did not answer (schemathesis errors) fail the test. All the other
checks (status codes, content types and bodies conforming to the schema,
auth, negative/positive data) run too; their findings are printed and kept
in test-output/schemathesis/ for reading, without failing the build.

MC_FUZZ_SEED and MC_FUZZ_EXAMPLES change the seed (fixed by default, so a
CI run is reproducible) and the examples per operation: 5 by default (a quick
pass for `make test`, every phase still runs: ~900 requests), 25 in `.ci/run`
(the deep pass, ~1,700 requests). tests/clustering/test_spotify_contract.py
takes the same number for its run with catalog ids.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output" / "schemathesis"
SEED = int(os.environ.get("MC_FUZZ_SEED", "20261127"))
MAX_EXAMPLES = int(os.environ.get("MC_FUZZ_EXAMPLES", "5"))
RUN_TIMEOUT = 600  # seconds; the run takes well under a minute on the demo catalog

SERVER_ERROR_CODES = {"ST101"}  # not_a_server_error

SET_UP = (
    "from django.core.management import call_command; "
    "call_command('migrate', interactive=False, verbosity=0); "
    "call_command('setup_demo', k='4'); "
    "call_command('create_api_token', 'fuzz', create_user=True, staff=True)"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


class _ScratchPostgres:
    """A database of its own on the server of DATABASE_URL, dropped afterwards."""

    def __init__(self, url: str):
        import dj_database_url
        import psycopg

        self.psycopg = psycopg
        db = dj_database_url.parse(url)
        self.name = f"musiccluster_fuzz_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.params = {
            "host": db["HOST"] or "127.0.0.1",
            "port": db["PORT"] or 5432,
            "user": db["USER"],
            "password": db.get("PASSWORD") or None,
            "dbname": db["NAME"],
        }
        auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        self.url = f"postgres://{auth}@{self.params['host']}:{self.params['port']}/{self.name}"

    def _execute(self, sql: str) -> None:
        with self.psycopg.connect(**self.params, autocommit=True) as conn:
            conn.execute(sql)

    def create(self) -> None:
        self._execute(f"CREATE DATABASE {self.name}")

    def drop(self) -> None:
        self._execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


@pytest.fixture(scope="module")
def live_api(tmp_path_factory):
    """(base URL, staff token, server log path) of a gunicorn on the demo catalog."""
    var = tmp_path_factory.mktemp("fuzz-var")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(
        VAR_DIR=str(var),
        MODEL_DIR=str(var / "models"),
        MEDIA_ROOT=str(var / "uploads"),
        DEBUG="0",
        LOG_LEVEL="WARNING",
        # One client, many requests: lift the throttles (the anonymous 1200/minute per IP and
        # the expensive endpoints' scoped rates; every worker of the server counts in one cache).
        API_ANON_RATE="1000000/second",
        API_USER_RATE="1000000/second",
        API_PREDICT_NEAREST_RATE="1000000/second",
        API_RECOMMENDATIONS_RATE="1000000/second",
        API_PATH_RATE="1000000/second",
        API_RADIO_RATE="1000000/second",
    )
    scratch = None
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        scratch = _ScratchPostgres(os.environ["DATABASE_URL"])
        scratch.create()
        env["DATABASE_URL"] = scratch.url
        env.setdefault("SECRET_KEY", "fuzz-only-secret")
    server = None
    try:
        # One process for the three set-up commands (each start costs seconds of
        # imports); k fixed: the fuzz needs a model, not the demo's k scan.
        token = _manage(env, "shell", "-c", SET_UP).strip().splitlines()[-1]
        port = _free_port()
        gunicorn = Path(sys.executable).parent / "gunicorn"
        log_path = var / "gunicorn.log"
        with open(log_path, "wb") as log:
            server = subprocess.Popen(
                [
                    str(gunicorn),
                    "musiccluster.wsgi",
                    "-b",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "2",
                    "--preload",
                    "--timeout",
                    "120",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer within 60 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base, token, log_path
    finally:
        if server is not None and server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, 9)
                server.wait()
        if scratch is not None:
            scratch.drop()


def _server_tracebacks(log_path: Path, limit: int = 6000) -> str:
    text = log_path.read_text(errors="replace")
    parts = [chunk for chunk in re.split(r"\n(?=\d{4}-\d\d-\d\d )", text) if "Traceback" in chunk]
    return "\n".join(parts)[-limit:]


def _sections(output: str, operations: list[str], width: int = 400) -> str:
    """The parts of schemathesis' output about these operations, long lines cut."""
    kept, keep = [], False
    for line in output.splitlines():
        heading = re.fullmatch(r"_{3,} (.+?) _{3,}", line.strip())
        if heading:
            keep = heading.group(1) in operations
        elif line.startswith("====="):
            keep = False
        if keep:
            kept.append(line if len(line) <= width else line[:width] + " …")
    return "\n".join(kept)


def test_schemathesis_finds_no_server_error(live_api, tmp_path):
    base, token, log_path = live_api
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert cli, "schemathesis is not installed: `make install-dev` (requirements-dev.txt pins it)"
    reports = tmp_path / "reports"
    args = [
        cli,
        "run",
        f"{base}/api/schema/",
        "--checks",
        "all",  # every check is reported; only server errors fail this test (below)
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--header",
        f"Authorization: Token {token}",
        "--request-timeout",
        "120",
        "--generation-database",
        "none",
        "--report",
        "json",
        "--report-dir",
        str(reports),
        "--no-color",
        "--output-truncate",
        "true",
    ]
    started = time.monotonic()
    result = subprocess.run(
        args,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )
    seconds = time.monotonic() - started
    OUTPUT.mkdir(parents=True, exist_ok=True)
    backend = "postgres" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"
    (OUTPUT / f"run-{backend}.txt").write_text(result.stdout + result.stderr)
    found = sorted(reports.glob("*.json"))
    assert found, f"schemathesis wrote no report (exit {result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr}"
    report = json.loads(found[-1].read_text())
    shutil.copy(found[-1], OUTPUT / f"report-{backend}.json")

    summary = [
        f"{f['code']} {f['title']}: {f['count']} ({', '.join(f['operations'][:4])})"
        for f in report["failures"]
        if f["code"] not in SERVER_ERROR_CODES
    ]
    print(
        f"schemathesis {report['schemathesis_version']}, seed {report['seed']}, {seconds:.0f} s: "
        f"{report['test_cases']['generated']} requests over {report['operations']['tested']} operations"
    )
    if summary:
        print("Findings that do not fail the build (see test-output/schemathesis/):\n  " + "\n  ".join(summary))

    assert report["operations"]["tested"] >= 20, f"only {report['operations']['tested']} operations tested"
    server_errors = [f for f in report["failures"] if f["code"] in SERVER_ERROR_CODES]
    problems = []
    if server_errors:
        problems.append(
            "server errors (5xx): " + "; ".join(f"{f['count']} on {', '.join(f['operations'])}" for f in server_errors)
        )
    if report["errors"]:
        problems.append(f"requests that got no answer or could not be made: {report['errors']}")
    if problems:
        pytest.fail(
            "\n".join(problems) + f"\n\nschemathesis output (reproduce with --seed {report['seed']}; all of it in "
            f"test-output/schemathesis/run-{backend}.txt):\n"
            + _sections(result.stdout, [op for f in server_errors for op in f["operations"]])[-8000:]
            + f"\n\nserver tracebacks:\n{_server_tracebacks(log_path)}",
            pytrace=False,
        )
