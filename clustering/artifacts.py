"""A run's files: the model (joblib) and the similar-song index (a folder).

One way to write them (``*.part``, fsync, rename, sha256 recorded on the
run), one way to verify them (hash, and the scikit-learn version for the
model) and one per-process cache of what was loaded, keyed by (run id,
sha256), so activating another run reaches every process without a
restart. :func:`cache_clear` empties it (tests, and a process that wants
to drop the memory).

The index is a folder ``run-N.index/`` of files a process memory-maps (the
faiss index, one ``.npy`` per array; :meth:`SimilarityIndex.save`) and a
``manifest.json`` holding each file's sha256; the run records the sha256
of the manifest. A process checks every file against the manifest when it
first opens the index, then maps them: the web workers of a machine share
one copy through the page cache. Indexes of older installs (one ``.npz``
file) still load, into private memory, until the next retrain.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from django.conf import settings

from .errors import ArtifactError, TrainingError
from .models import TrainingRun

# joblib, scikit-learn, faiss (and what they pull in: SciPy, pandas) load
# where a model or an index is written or read, not with this module: every
# Django process reaches it (the health check, the API), and one that never
# opens a model - `manage.py import_songs`, a catalog-only page - starts ~1-3 s
# sooner and ~100 MB smaller without them.
if TYPE_CHECKING:
    from .ml import ClusterModel
    from .ml.similarity import SimilarityIndex

logger = logging.getLogger(__name__)

MODEL_SUFFIX = ".joblib"
INDEX_SUFFIX = ".index"
# The one-file index of installs before the memory-mapped folder (still loaded).
LEGACY_INDEX_SUFFIX = ".index.npz"
MANIFEST = "manifest.json"


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def artifact_path(*, run_id: int, suffix: str) -> Path:
    return Path(settings.MODEL_DIR) / f"run-{run_id}{suffix}"


def _write_atomic(final: Path, write: Callable[[IO[bytes]], None]) -> str:
    """Write ``final`` through ``final.part`` (fsync, then rename); its sha256.

    A failed write leaves no ``.part`` behind; a full disk is a TrainingError
    that says so.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    part = final.with_name(final.name + ".part")
    try:
        with open(part, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        digest = sha256_file(part)
        os.replace(part, final)
    except BaseException as exc:
        part.unlink(missing_ok=True)
        _raise_full_disk(exc)
        raise
    return digest


def _raise_full_disk(exc: BaseException) -> None:
    """A full disk (or quota) while writing a run's files is the run's
    failure with that reason; other errors are left to the caller."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        raise TrainingError(
            "the model directory is full (no space left on the device); the previous model stays active. "
            "Free some space and train again."
        ) from exc


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic_dir(final: Path, write: Callable[[Path], list[str]]) -> str:
    """Write the folder ``final`` through ``final.part/``: ``write`` fills it
    and names its files; each is fsynced and hashed into ``manifest.json``,
    the folder renamed into place. Returns the manifest's sha256. A failed
    write leaves no ``.part`` behind; a full disk is a TrainingError."""
    final.parent.mkdir(parents=True, exist_ok=True)
    part = final.with_name(final.name + ".part")
    try:
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir()
        files = {}
        for name in write(part):
            with open(part / name, "rb+") as fh:
                os.fsync(fh.fileno())
            files[name] = sha256_file(part / name)
        with open(part / MANIFEST, "w") as fh:
            json.dump({"files": files}, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        digest = sha256_file(part / MANIFEST)
        _fsync_dir(part)
        if final.exists():  # the same run built again: processes that mapped the old files keep them
            shutil.rmtree(final)
        os.replace(part, final)
        _fsync_dir(final.parent)
    except BaseException as exc:
        shutil.rmtree(part, ignore_errors=True)
        _raise_full_disk(exc)
        raise
    return digest


def run_files_remove(run_id: int) -> list[str]:
    """Remove a run's model and index files and any ``.part`` left of them
    (a failed run, a run past MODEL_KEEP_RUNS); the names removed."""
    removed = []
    for suffix in (MODEL_SUFFIX, INDEX_SUFFIX, LEGACY_INDEX_SUFFIX):
        final = artifact_path(run_id=run_id, suffix=suffix)
        for path in (final, final.with_name(final.name + ".part")):
            try:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            except FileNotFoundError:
                continue
            except OSError:
                logger.exception("could not remove %s", path)
                continue
            removed.append(path.name)
    return removed


def _verify(*, path: str | None, recorded: str, what: str, run_id: int) -> Path:
    """The file at ``path`` if it is there and its sha256 is the recorded one."""
    file = Path(path) if path else None
    if file is None or not file.is_file():
        # The path goes to the log only: error messages reach API clients.
        logger.error("The %s of run #%s is missing: %s", what, run_id, path or "never built")
        raise ArtifactError(f"the {what} of run #{run_id} is missing; retrain")
    digest = sha256_file(file)
    if digest != recorded:
        raise ArtifactError(
            f"the {what} of run #{run_id} was altered: sha256 {digest[:12]}… but the run recorded {recorded[:12]}…"
        )
    return file


# --- the model ---------------------------------------------------------------------


def model_write(*, model: ClusterModel, run_id: int) -> tuple[str, str]:
    """Save a fitted model; (path, sha256)."""
    import joblib

    final = artifact_path(run_id=run_id, suffix=MODEL_SUFFIX)
    return str(final), _write_atomic(final, lambda fh: joblib.dump(model, fh, compress=3))


# --- the similar-song index ------------------------------------------------------------


def index_write(*, index: SimilarityIndex, run_id: int) -> tuple[str, str]:
    """Save a fitted similarity index as a folder of mappable files; (path,
    sha256 of its manifest)."""
    final = artifact_path(run_id=run_id, suffix=INDEX_SUFFIX)
    return str(final), _write_atomic_dir(final, index.save)


def _verify_folder(*, path: str | None, recorded: str, run_id: int) -> Path:
    """The index folder at ``path`` if its manifest's sha256 is the recorded
    one and every file it lists has the sha256 the manifest gives."""
    what = "similar-song index"
    folder = Path(path) if path else None
    if folder is None or not (folder / MANIFEST).is_file():
        logger.error("The %s of run #%s is missing: %s", what, run_id, path or "never built")
        raise ArtifactError(f"the {what} of run #{run_id} is missing; retrain")
    digest = sha256_file(folder / MANIFEST)
    if digest != recorded:
        raise ArtifactError(
            f"the {what} of run #{run_id} was altered: sha256 {digest[:12]}… but the run recorded {recorded[:12]}…"
        )
    try:
        files = json.loads((folder / MANIFEST).read_text())["files"]
    except (ValueError, KeyError, TypeError):
        raise ArtifactError(f"the {what} of run #{run_id} cannot be read (manifest); retrain") from None
    for name, expected in files.items():
        file = folder / name
        if Path(name).name != name or not file.is_file():
            logger.error("The %s of run #%s lacks %s", what, run_id, file)
            raise ArtifactError(f"the {what} of run #{run_id} is incomplete; retrain")
        got = sha256_file(file)
        if got != expected:
            raise ArtifactError(
                f"the {what} of run #{run_id} was altered: a file's sha256 {got[:12]}… is not the "
                f"manifest's {expected[:12]}…"
            )
    return folder


# --- loading, once per process ------------------------------------------------------------

_lock = threading.Lock()
_models: dict[tuple[int, str], ClusterModel] = {}
# The one index this process serves from: {(run id, sha256): (run, index)}.
_indexes: dict[tuple[int, str], tuple[TrainingRun, SimilarityIndex]] = {}
_active: dict[str, Any] = {"run": None, "checked": -1e9}
# Background loads of a newly active run's index: the key being loaded (a
# load installs its index only while its key is still this one: not after a
# cache_clear, nor after another run became the one to load), and the error
# of a load that failed (the next request loads in the open and says it).
_loading: dict[str, Any] = {"key": None, "failed": {}}


def cache_clear() -> None:
    """Forget every loaded model and index, and which run is active."""
    with _lock:
        _models.clear()
        _indexes.clear()
        _active.update(run=None, checked=-1e9)
        _loading.update(key=None, failed={})


def model_load(run: TrainingRun) -> ClusterModel:
    """The run's model, loaded once per process and cached by (run id, sha256).

    Refuses a file whose hash or scikit-learn version does not match.
    """
    key = (run.pk, run.artifact_sha256)
    cached = _models.get(key)  # one read: another thread may clear the cache
    if cached is not None:
        return cached
    import joblib
    import sklearn

    path = _verify(path=run.artifact_path, recorded=run.artifact_sha256, what="model file", run_id=run.pk)
    if run.sklearn_version and run.sklearn_version != sklearn.__version__:
        raise ArtifactError(
            f"run #{run.pk} was trained with scikit-learn {run.sklearn_version}, this process has "
            f"{sklearn.__version__}; retrain or install the matching version"
        )
    with open(path, "rb") as fh:
        model = joblib.load(fh)
    with _lock:
        _models.clear()  # one active model per process is enough
        _models[key] = model
    return model


def _index_key(run: TrainingRun) -> tuple[int, str]:
    return (run.pk, run.index_sha256)


def _index_open(run: TrainingRun) -> SimilarityIndex:
    """Verify the run's index files against their recorded sha256 and map them."""
    from .ml.similarity import SimilarityIndex

    legacy = bool(run.index_path) and Path(run.index_path).suffix == ".npz"
    if legacy:
        path = _verify(path=run.index_path, recorded=run.index_sha256, what="similar-song index", run_id=run.pk)
    else:
        path = _verify_folder(path=run.index_path, recorded=run.index_sha256, run_id=run.pk)
    try:
        if legacy:
            # An index written before the folder: loaded into this process's
            # memory (its faiss index rebuilt from its cells) until a retrain.
            import numpy as np

            with np.load(path, allow_pickle=False) as arrays:
                return SimilarityIndex.from_arrays(arrays)
        return SimilarityIndex.load(path, mmap=True)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        logger.error("The similar-song index of run #%s (%s) cannot be read", run.pk, path, exc_info=exc)
        raise ArtifactError(
            f"the similar-song index of run #{run.pk} cannot be read ({exc.__class__.__name__}); retrain"
        ) from None


def _index_install(run: TrainingRun, index: SimilarityIndex, *, behind: bool = False) -> bool:
    """Serve ``index`` from now on (a load ``behind`` requests: only if its
    run is still the one to load); whether it was installed."""
    key = _index_key(run)
    with _lock:
        if behind and _loading["key"] != key:
            return False
        if _loading["key"] == key:  # loaded in the open meanwhile: a load behind is not installed
            _loading["key"] = None
        _loading["failed"].pop(key, None)
        _indexes.clear()  # one index per process: requests that hold the old one keep it
        _indexes[key] = (run, index)
    return True


def index_load(run: TrainingRun) -> SimilarityIndex:
    """The run's similar-song index, loaded once per process and cached by (run id, sha256)."""
    cached = _indexes.get(_index_key(run))  # one read: another thread may clear the cache
    if cached is not None:
        return cached[1]
    index = _index_open(run)
    _index_install(run, index)
    return index


def _index_load_behind(run: TrainingRun) -> bool:
    """Start loading ``run``'s index in a thread of this process, unless it is
    loading already; False when a load of it here failed (the caller loads
    it in the open: the request gets the error, as without a background
    load, and a mended file is picked up)."""
    key = _index_key(run)
    with _lock:
        if key in _loading["failed"]:  # until a load in the open succeeds
            return False
        if _loading["key"] == key:
            return True
        _loading["key"] = key

    def load() -> None:
        started = time.monotonic()
        try:
            index = _index_open(run)
        except Exception as exc:  # any failure: the next request loads in the open and reports it
            logger.warning("The similar-song index of run #%s could not be loaded in the background: %s", run.pk, exc)
            with _lock:
                if _loading["key"] == key:
                    _loading["failed"][key] = exc
                    _loading["key"] = None
            return
        if _index_install(run, index, behind=True):
            logger.info(
                "Run #%s's similar-song index loaded in %.2f s in the background", run.pk, time.monotonic() - started
            )

    threading.Thread(target=load, name=f"index-load-run-{run.pk}", daemon=True).start()
    return True


def active_index(*, wait: bool = False) -> tuple[TrainingRun, SimilarityIndex]:
    """The active run and its index; TrainingError without a model, ArtifactError when unreadable.

    Which run is active is asked of the database at most every
    MODEL_RECHECK_SECONDS per process (default 1 s): a query saved on every
    request of the hot path, and an activation still reaches every process
    within a second, without a restart.

    Opening a newly active run's index checks the sha256 of all its files
    (~1.9 s at 10M songs). With INDEX_LOAD_IN_BACKGROUND (the default), a
    process that already serves another run's index loads the new one in a
    thread and answers from the one it has - each answer labelled with the
    run whose index it searched - until the new one is ready; ``wait=True``
    (a question about the new run's own clusters) loads it in the open.
    """
    now = time.monotonic()
    run = _active["run"]
    if run is None or now - _active["checked"] >= settings.MODEL_RECHECK_SECONDS:
        run = TrainingRun.objects.active()
        _active.update(run=run, checked=now)
    if run is None:
        raise TrainingError("no model is active yet: train one first")
    cached = _indexes.get(_index_key(run))
    if cached is not None:
        return run, cached[1]
    if not wait and settings.INDEX_LOAD_IN_BACKGROUND:
        with _lock:  # another thread may swap it meanwhile
            serving = next(iter(_indexes.values()), None)
        if serving is not None and _index_load_behind(run):
            return serving
    return run, index_load(run)


def active_index_or_none() -> tuple[TrainingRun, SimilarityIndex] | None:
    """:func:`active_index`, or None when there is no model or its index cannot be read."""
    try:
        return active_index()
    except (TrainingError, ArtifactError):
        return None
