"""What a listener's exclusions cost a similar-song query, as ratios against
the same run's plain query (no database: the index alone).

Builds a similarity index over a synthetic catalog of ``--songs`` songs and
times ``SimilarityIndex.query(k=15, max_per_artist=2)`` for 200 random
seeds: plain; with 100 artists and 100 songs excluded by a check per
candidate (what the discovery services do, :class:`clustering.similarity.Filters`);
and with the same exclusions as a catalog-sized row mask (the alternative,
for comparison). The blocked
artists are those of the seeds' nearest songs, the worst case: their songs
are the ones a query would return.

    .venv/bin/python manage.py bench_exclusions --songs 1000000
"""

import json
import time

import numpy as np
from django.core.management.base import BaseCommand

from clustering.ml.similarity import SimilarityIndex


def _best_ms(fn, queries, reps: int) -> float:
    best = np.inf
    for _ in range(reps):
        start = time.perf_counter()
        for q in queries:
            fn(q)
        best = min(best, (time.perf_counter() - start) / len(queries))
    return best * 1000


class Command(BaseCommand):
    help = "Cost of a listener's exclusions (blocklist) on similar-song queries, against the plain query."

    def add_arguments(self, parser):
        parser.add_argument("--songs", type=int, default=200_000, help="Synthetic catalog size (default 200,000)")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, songs: int, seed: int, **options):
        n, rng = songs, np.random.default_rng(seed)
        X = np.column_stack(
            [
                rng.random(n),
                rng.random(n),
                rng.uniform(-30, 0, n),
                rng.random(n) * 0.3,
                rng.random(n),
                rng.random(n) * 0.2,
                rng.random(n) * 0.5,
                rng.random(n),
                rng.uniform(60, 200, n),
                rng.integers(120_000, 400_000, n),
            ]
        )
        start = time.perf_counter()
        index = SimilarityIndex().fit(
            ids=np.arange(1, n + 1),
            X=X,
            year=rng.integers(1960, 2024, n).astype(float),
            popularity=rng.integers(0, 100, n).astype(float),
            artist=rng.integers(1, max(n // 8, 2), n),
            dup_keys=np.arange(n),
            extra=np.full((n, 4), np.nan),
        )
        fit = time.perf_counter() - start
        queries = [index.vector(int(r)) for r in rng.integers(0, n, 200)]
        artists = {int(index.artists_[index.query(q, k=1)[0][0]]) for q in queries[:100]}
        # Excluded songs are near-duplicate keys, as clustering.similarity.filters_resolve gives them.
        keys = [int(k) for k in index.dup_keys_[rng.integers(0, n, 100)]]

        def masked(q):
            mask = ~np.isin(index.artists_, np.fromiter(artists, dtype=np.int64))
            mask &= ~np.isin(index.dup_keys_, np.asarray(keys, dtype=np.int64))
            return index.query(q, k=15, max_per_artist=2, mask=mask)

        plain = _best_ms(lambda q: index.query(q, k=15, max_per_artist=2), queries, 3)
        checks = _best_ms(
            lambda q: index.query(q, k=15, max_per_artist=2, exclude_keys=keys, exclude_artists=artists), queries, 3
        )
        mask = _best_ms(masked, queries, 1)
        result = {
            "songs": n,
            "fit_seconds": round(fit, 1),
            "plain_ms": round(plain, 3),
            "excluded_by_checks_ms": round(checks, 3),
            "excluded_by_mask_ms": round(mask, 3),
            "checks_to_plain": round(checks / plain, 2),
            "mask_to_plain": round(mask / plain, 2),
        }
        self.stdout.write(json.dumps(result))
