"""Private services a fault test may kill: a Postgres cluster (initdb +
pg_ctl on a spare port, in a temporary directory), a Redis server, a Celery
worker and a gunicorn server bound to them. Nothing here touches the shared
Postgres or Redis of the test run.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import ROOT, wait_for


def spare_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    def __init__(self, workdir: Path):
        self.port = spare_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        subprocess.run(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "yes", "--dir", str(self.workdir), "--pidfile", str(self.workdir / "redis.pid"),
             "--logfile", str(self.workdir / "redis.log")],
            check=True,
        )  # fmt: skip
        wait_for(lambda: self.ping(), timeout=10, interval=0.1)

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Shut down without saving: every queued message is lost, as in a restart without persistence."""
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "nosave"], capture_output=True, check=False)
        wait_for(lambda: not self.ping(), timeout=10, interval=0.1)


def postgres_bindir() -> Path | None:
    """The directory of initdb and pg_ctl (on PATH, else Debian's /usr/lib/postgresql/<n>/bin)."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(candidates[-1]).parent if candidates else None


class PrivatePostgres:
    """A throwaway cluster (trust auth, no fsync) on a spare loopback port.
    As root, the server runs as the ``postgres`` user (initdb refuses root)."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.port = spare_port()
        self.dir = Path(tempfile.mkdtemp(prefix="mc-faults-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")

    def url(self, dbname: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *cmd: str, timeout: float = 60) -> None:
        argv = [str(self.bindir / cmd[0]), *cmd[1:]]
        if self.as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:2])} failed:\n{done.stdout}\n{done.stderr}\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=60"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """``immediate``: the server quits at once, as in a crash (recovery on the next start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")

    def destroy(self) -> None:
        if self.running():
            with contextlib.suppress(RuntimeError):
                self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class Process:
    """A subprocess in a session of its own (killable whole), its output in a log file."""

    def __init__(self, argv: list[str], *, env: dict[str, str], log: Path):
        self.argv, self.env, self.log = argv, env, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> Process:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def children(self) -> list[int]:
        try:
            return [int(p) for p in Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()]
        except OSError:
            return []

    def stop(self) -> None:
        if not self.alive():
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def start_worker(env: dict[str, str], log: Path, *, name: str, concurrency: int = 2) -> Process:
    """A Celery worker on the default queue; returns when it says it is ready."""
    start = log.stat().st_size if log.exists() else 0
    worker = Process(
        [sys.executable, "-m", "celery", "-A", "musiccluster", "worker", "--loglevel=INFO", f"--concurrency={concurrency}",
         "--pool=prefork", "--without-gossip", "--without-mingle", "-n", f"{name}@%h"],
        env=env, log=log,
    ).start()  # fmt: skip
    wait_for(lambda: not worker.alive() or " ready." in worker.text()[start:], timeout=60)
    if not worker.alive():
        raise RuntimeError(f"the worker exited at start:\n{worker.text()[-3000:]}")
    return worker


def start_web(env: dict[str, str], log: Path, *, workers: int = 1) -> tuple[Process, str]:
    """gunicorn on a spare port; (process, base URL) once /healthz?quick=1 answers."""
    port = spare_port()
    web = Process(
        [sys.executable, "-m", "gunicorn", "musiccluster.wsgi", "-b", f"127.0.0.1:{port}", "--workers", str(workers),
         "--timeout", "60"],
        env=env, log=log,
    ).start()  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if not web.alive():
            raise RuntimeError(f"gunicorn exited:\n{web.text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/healthz?quick=1", timeout=5):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    wait_for(up, timeout=60, interval=0.2)
    return web, base


def manage(env: dict[str, str], *args: str, timeout: float = 180) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    """wait_for, with a message naming what did not happen."""
    started = time.monotonic()
    try:
        return wait_for(predicate, timeout=timeout, interval=interval)
    except AssertionError:
        raise AssertionError(f"{what}: not within {timeout:.0f} s ({time.monotonic() - started:.0f} s)") from None
