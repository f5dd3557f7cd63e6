"""Similar-songs research: genre precision@10 on ../shared/data/high_popularity_spotify_data.csv.

Deterministic, ~10 s. Run: .venv/bin/python scripts/similarity_eval.py
Findings and the recipe: docs/SIMILARITY.md. Issue #4 turns the chosen
recipe into the similar-songs index and a `bench` phase.
"""
import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "high_popularity_spotify_data.csv"
if not DATA.exists():
    sys.exit(f"skipped: {DATA} is not here")

FEATS = ['danceability', 'energy', 'loudness', 'speechiness', 'acousticness',
         'instrumentalness', 'liveness', 'valence', 'tempo', 'duration_ms']
K = 10

d = pd.read_csv(DATA)
d = d.drop_duplicates(['track_name', 'track_artist'], keep='last').reset_index(drop=True)
assert len(d) == 1420
y = d.playlist_genre.to_numpy(dtype=object)                    # evaluation label only
n = len(d)
year = d.track_album_release_date.astype(str).str.extract(r'(\d{4})')[0].astype(float).values
artists = d.track_artist.str.split(', ').tolist()  # "A, B" -> ['A','B']
std = lambda M: StandardScaler().fit_transform(np.asarray(M, float).reshape(len(M), -1))

def audio(log=True):
    X = d[FEATS].astype(float).copy()
    if log:
        for c in ['speechiness', 'liveness', 'acousticness']:
            X[c] = np.log(X[c] + 0.01)
        X['instrumentalness'] = np.log(X['instrumentalness'] + 1e-3)
        X['duration_ms'] = np.log(X['duration_ms'])
    return std(X)

def artist_centroid(Z):
    """per-track mean of its artists' mean vectors (unsupervised, computed once over the catalog)"""
    idx = {}
    for i, l in enumerate(artists):
        for a in l:
            idx.setdefault(a, []).append(i)
    M = {a: Z[l].mean(0) for a, l in idx.items()}
    return np.array([np.mean([M[a] for a in l], 0) for l in artists])

def embed(log=True, w_year=0.0, w_pop=0.0, alpha=0.0):
    B = np.hstack([audio(log), w_year * std(year), w_pop * std(d.track_popularity.values)])
    return np.hstack([B, alpha * artist_centroid(B)]) if alpha else B

# same-artist matrix (shares >= 1 artist)
S = np.zeros((n, n), bool)
idx = {}
for i, l in enumerate(artists):
    for a in l:
        idx.setdefault(a, []).append(i)
for l in idx.values():
    S[np.ix_(l, l)] = True
np.fill_diagonal(S, False)

def dist(Z, metric='euclid'):
    if metric == 'cosine':
        Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)
        D = 1 - Z @ Z.T
    else:
        sq = (Z ** 2).sum(1)
        D = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * Z @ Z.T, 0))
    np.fill_diagonal(D, np.inf)  # never return the query itself (dedup already removed exact dups)
    return D

def p_at_10(D, queries=None, cand=None, same_artist_first=False, exclude_same_artist=False):
    queries = np.arange(n) if queries is None else queries
    D = D[queries].copy()
    if cand is not None:
        D[:, ~cand] = np.inf
    if same_artist_first:
        D = np.where(S[queries], D - 1e6, D)
    if exclude_same_artist:
        D[S[queries]] = np.inf
    nn = np.argsort(D, 1, kind='stable')[:, :K]
    return np.mean(y[nn] == y[queries][:, None])

rows = []
rng = np.random.default_rng(0)
rows.append(('random songs', np.mean([np.mean(y[rng.choice(np.delete(np.arange(n), i), K, replace=False)] == y[i]) for i in range(n)])))
rows.append(('StandardScaler 10 feats, Euclid (baseline)', p_at_10(dist(audio(False)))))
rows.append(('StandardScaler 10 feats, cosine', p_at_10(dist(audio(False), 'cosine'))))
rows.append(('log-skewed + std, Euclid', p_at_10(dist(audio()))))
rows.append(('log-skewed + std + 3*year', p_at_10(dist(embed(w_year=3)))))
rows.append(('log-skewed + std + 3*year + 1*pop', p_at_10(dist(embed(w_year=3, w_pop=1)))))
rows.append(('log-skewed + std, same-artist first', p_at_10(dist(audio()), same_artist_first=True)))
rows.append(('log+3*year+1*pop, same-artist first', p_at_10(dist(embed(w_year=3, w_pop=1)), same_artist_first=True)))
BEST = dict(log=True, w_year=3, w_pop=1, alpha=3)
rows.append(('BEST: log+3*year+1*pop + 3*artist-centroid', p_at_10(dist(embed(**BEST)))))
rows.append(('BEST, scored on different-artist results only', p_at_10(dist(embed(**BEST)), exclude_same_artist=True)))
for name, v in rows:
    print(f'{name:50s} {100 * v:5.1f}%')

# 2-fold CV of the 3 tuned hyper-parameters (w_year, w_pop, alpha); folds grouped by primary artist,
# queries AND catalogue restricted to the fold.
prim = np.array([l[0] for l in artists]); ua = np.unique(prim)
fa = set(np.random.default_rng(0).permutation(ua)[:len(ua) // 2])
fold = np.array([0 if p in fa else 1 for p in prim])
grid = list(itertools.product([0, 1, 2, 3, 4, 6], [0, 0.5, 1, 1.5], [0, 1, 2, 3]))
sc = {}
for g in grid:
    D = dist(embed(True, *g))
    sc[g] = [p_at_10(D, np.where(fold == f)[0], fold == f) for f in (0, 1)]
base = [p_at_10(dist(audio(False)), np.where(fold == f)[0], fold == f) for f in (0, 1)]
for sub, lab in [(grid, 'with artist-centroid'), ([g for g in grid if g[2] == 0], 'audio+year+pop only')]:
    for f in (0, 1):
        g = max(sub, key=lambda g: sc[g][f])
        print(f'CV [{lab}] tuned on fold {f}: {g} -> held-out fold {1 - f}: {100 * sc[g][1 - f]:.1f}% '
              f'(baseline on that fold {100 * base[1 - f]:.1f}%)')
