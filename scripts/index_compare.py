"""Compare the similar-song index with exact search (recall@10) and, given
the previous implementation's module, with that index (latency), on a
generated catalog CSV (songs.generator; ``manage.py bench`` writes one).

    PYTHONPATH=. .venv/bin/python scripts/index_compare.py CATALOG.csv [--old OLD_similarity.py] [--queries 1000]

Prints one JSON object. Single-threaded, as a web worker searches.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from clustering.ml import FEATURES
from clustering.ml._threads import one_search_thread
from clustering.ml.similarity import SimilarityIndex


def _arrays(path: str) -> dict:
    cols = ["id_artists", "release_date", "popularity_songs", *FEATURES, "key", "mode", "time_signature"]
    frame = pd.read_csv(path, usecols=cols)
    n = len(frame)
    year = pd.to_numeric(frame["release_date"].astype(str).str[:4], errors="coerce").to_numpy(np.float64)
    popularity = frame["popularity_songs"].to_numpy(np.float64)
    artist = pd.factorize(frame["id_artists"])[0].astype(np.int64)
    extra = np.column_stack([frame["key"], frame["mode"], popularity, frame["time_signature"]]).astype(np.float64)
    rng = np.random.default_rng(0)
    return {
        "ids": np.arange(1, n + 1, dtype=np.int64),
        "X": frame[list(FEATURES)].to_numpy(np.float64),
        "year": year,
        "popularity": popularity,
        "artist": artist,
        "dup_keys": rng.integers(0, 2**62, n),
        "extra": extra,
        "labels": rng.integers(0, 8, n),
    }


def _timed(fn, queries) -> tuple[list, dict]:
    out, times = [], []
    for q in queries:
        t = time.perf_counter()
        out.append(fn(q))
        times.append(time.perf_counter() - t)
    ms = np.array(times) * 1000
    return out, {"p50_ms": round(float(np.median(ms)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("csv")
    parser.add_argument("--old", help="the previous clustering/ml/similarity.py, to time its index in the same run")
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    report: dict = {}
    t = time.perf_counter()
    data = _arrays(args.csv)
    n = len(data["ids"])
    report["songs"] = n
    report["read_seconds"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    built = SimilarityIndex(random_state=0).fit(**data)
    report["build_seconds"] = round(time.perf_counter() - t, 1)
    folder = tempfile.mkdtemp(prefix="index-compare-")
    built.save(folder)
    del built
    index = SimilarityIndex.load(folder, mmap=True)
    report["n_cells"] = index.n_cells_

    old = None
    if args.old:
        spec = importlib.util.spec_from_file_location("clustering.ml._old_similarity", args.old)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        t = time.perf_counter()
        old = module.SimilarityIndex(random_state=0).fit(**data)
        report["old_build_seconds"] = round(time.perf_counter() - t, 1)
    del data

    rng = np.random.default_rng(1)
    rows = rng.choice(n, size=args.queries, replace=False)
    queries = [index.vector(int(r)) for r in rows]
    with threadpool_limits(1):
        one_search_thread()
        truth, timing = _timed(lambda q: index.ids_[index._exact(q, None, 10)[0]], queries)
        report["exact"] = timing
        mask = index.attribute_mask({"energy": (0.6, None), "danceability": (None, 0.7)})
        report["filter_selects"] = int(mask.sum())
        masked_truth = [index.ids_[index._exact(q, np.flatnonzero(mask), 10)[0]] for q in queries[:200]]
        for probe in (4, 8, 12, 16, 24):
            found, timing = _timed(lambda q, p=probe: index.ids_[index.search(q, k=10, n_probe=p)[0]], queries)
            recall = np.mean([len(set(a.tolist()) & set(b.tolist())) / 10 for a, b in zip(found, truth)])
            report[f"faiss_probe_{probe}"] = {**timing, "recall_at_10": round(float(recall), 4)}
            found, timing = _timed(
                lambda q, p=probe: index.ids_[index.search(q, k=10, mask=mask, n_probe=p)[0]], queries[:200]
            )
            recall = np.mean([len(set(a.tolist()) & set(b.tolist())) / 10 for a, b in zip(found, masked_truth)])
            report[f"faiss_probe_{probe}_filtered"] = {**timing, "recall_at_10": round(float(recall), 4)}
        _, timing = _timed(
            lambda q: index.query(q, k=10, exclude_artists=[0, 1, 2], max_per_artist=2, exclude_keys=[1]), queries
        )
        report["faiss_query_default_with_exclusions"] = timing
        if old is not None:
            found, timing = _timed(lambda q: old.ids_[old.search(q, k=10)[0]], queries)
            recall = np.mean([len(set(a.tolist()) & set(b.tolist())) / 10 for a, b in zip(found, truth)])
            report[f"old_ivf_probe_{old.n_probe}"] = {**timing, "recall_at_10": round(float(recall), 4)}
            old_mask = old.attribute_mask({"energy": (0.6, None), "danceability": (None, 0.7)})
            _, timing = _timed(lambda q: old.search(q, k=10, mask=old_mask), queries[:200])
            report[f"old_ivf_probe_{old.n_probe}_filtered"] = timing
            _, timing = _timed(
                lambda q: old.query(q, k=10, exclude_artists=[0, 1, 2], max_per_artist=2, exclude_keys=[1]), queries
            )
            report["old_query_with_exclusions"] = timing
    print(json.dumps(report))


if __name__ == "__main__":
    main()
