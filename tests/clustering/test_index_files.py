"""The similar-song index's files: a folder written atomically, checked
against its manifest when a process first opens it, then memory-mapped;
an index of an earlier install (one .npz file) still loads."""

import errno
import json
from pathlib import Path

import numpy as np
import pytest

from clustering import artifacts
from clustering.errors import ArtifactError, TrainingError
from clustering.ml.similarity import SimilarityIndex
from clustering.models import TrainingRun

from .ml.test_similarity_index import _data


@pytest.fixture(scope="module")
def index():
    # 8,000 songs in 64 cells: small, and still a faiss inverted file.
    return SimilarityIndex(n_cells=64, random_state=0).fit(**_data(n_per=2_000))


@pytest.fixture
def model_dir(settings, tmp_path):
    settings.MODEL_DIR = tmp_path / "models"
    artifacts.cache_clear()
    yield settings.MODEL_DIR
    artifacts.cache_clear()


def _run(path, digest, pk=7):
    return TrainingRun(pk=pk, index_path=path, index_sha256=digest)


def test_the_folder_is_written_whole_with_a_manifest_of_hashes(index, model_dir):
    path, digest = artifacts.index_write(index=index, run_id=7)
    folder = Path(path)
    assert folder.name == "run-7.index" and folder.is_dir()
    assert sorted(p.name for p in model_dir.iterdir()) == ["run-7.index"]  # no .part left
    manifest = json.loads((folder / "manifest.json").read_text())["files"]
    assert {"faiss.index", "vectors.npy", "meta.json"} <= set(manifest)
    assert set(manifest) | {"manifest.json"} == {p.name for p in folder.iterdir()}
    assert all(artifacts.sha256_file(folder / name) == sha for name, sha in manifest.items())
    assert digest == artifacts.sha256_file(folder / "manifest.json")
    # Built again under the same run: the folder is replaced, not merged.
    (folder / "stray.npy").write_bytes(b"x")
    path2, _ = artifacts.index_write(index=index, run_id=7)
    assert path2 == path and not (folder / "stray.npy").exists()


def test_a_process_maps_the_files_it_checked(index, model_dir):
    path, digest = artifacts.index_write(index=index, run_id=7)
    loaded = artifacts.index_load(_run(path, digest))
    maps = Path("/proc/self/maps").read_text()
    assert f"{path}/faiss.index" in maps and f"{path}/vectors.npy" in maps
    assert artifacts.index_load(_run(path, digest)) is loaded  # cached by (run, sha256)
    rows, _ = loaded.search(index.vector(17), k=10)
    assert rows.tolist() == index.search(index.vector(17), k=10)[0].tolist()


@pytest.mark.parametrize("victim", ["faiss.index", "ids.npy", "manifest.json"])
def test_an_altered_file_is_refused(index, model_dir, victim):
    path, digest = artifacts.index_write(index=index, run_id=7)
    with open(Path(path) / victim, "r+b") as fh:
        fh.seek(200)
        fh.write(b"\xff\xfe")
    with pytest.raises(ArtifactError, match="altered"):
        artifacts.index_load(_run(path, digest))


def test_a_missing_file_is_refused(index, model_dir):
    path, digest = artifacts.index_write(index=index, run_id=7)
    (Path(path) / "dup_keys.npy").unlink()
    with pytest.raises(ArtifactError, match="incomplete"):
        artifacts.index_load(_run(path, digest))


def test_a_full_disk_leaves_no_part_folder(index, model_dir, monkeypatch):
    def full(directory):
        (directory / "vectors.npy").write_bytes(b"x" * 10)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(index, "save", full)
    with pytest.raises(TrainingError, match="full"):
        artifacts.index_write(index=index, run_id=8)
    assert list(model_dir.iterdir()) == []


def test_an_index_of_an_earlier_install_still_serves(index, model_dir):
    """A run whose index is the one-file .npz of before (cells, no faiss)."""
    arrays = index.to_arrays()
    for key in ("faiss_index", "artist_rows", "dup_rows"):
        arrays.pop(key)
    arrays["cells"] = index.faiss_.quantizer.reconstruct_n(0, index.n_cells_)
    sizes = [index.faiss_.invlists.list_size(c) for c in range(index.n_cells_)]
    arrays["cell_starts"] = np.concatenate([[0], np.cumsum(sizes)])
    model_dir.mkdir(parents=True)
    path = model_dir / "run-3.index.npz"
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    old = artifacts.index_load(_run(str(path), artifacts.sha256_file(path), pk=3))
    for row in (1, 500, 4000):
        assert old.search(index.vector(row), k=10)[0].tolist() == index.search(index.vector(row), k=10)[0].tolist()
    assert artifacts.run_files_remove(3) == ["run-3.index.npz"]
