"""Smooth paths between two songs (docs/PATHS.md).

A path is chosen in the *sound space*: the ten audio features, each divided
by its catalog standard deviation (the space the clustering's standard
scaler works in, and what the path page charts). Picking the nearest song
to each of ``length - 2`` evenly spaced points on the line from the start to
the end is not enough: the nearest songs sit on either side of the line, so
a chart of any one feature zig-zags, and the projection onto the line can
step backwards. So the middle songs are chosen together, by a beam search
that minimises, over the whole path,

- the distance of each song to its point on the line (keeps the pace even),
- the size of each step from the previous song (consecutive songs on the
  same side of the line: no zig-zag),
- a heavy penalty for any step backwards along the line (progress is
  monotonic where the catalog allows it), and
- a penalty for re-entering a cluster the path has left (the clusters are
  crossed in one direction),

under hard rules: no song or exact duplicate twice, each artist at most
``max_per_artist`` times counting the two ends (so the start and end songs'
artists never appear in between) and never twice in a row.

Candidates come from a pool: the songs nearest to the *segment* between the
two ends (one pass over the attribute matrix, in chunks). Every song within
distance r of a point on the segment is within r of the segment, so the
pool holds each point's true nearest songs whenever they are nearer than
the pool's radius.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .features import FEATURES

N_FEATURES = len(FEATURES)
# Weights of the path's cost, in squared ideal steps (|end - start| / (length - 1)).
CLOSE_WEIGHT = 1.0
STEP_WEIGHT = 1.0
BACKTRACK_WEIGHT = 50.0
FEATURE_BACK_WEIGHT = 5.0
REVISIT_PENALTY = 8.0
# Candidates per point, states kept per position, at most this many candidates of one artist per point.
CANDIDATES = 16
BEAM_WIDTH = 24
CANDIDATES_PER_ARTIST = 2
CHUNK = 200_000


@dataclass
class _State:
    cost: float
    rows: list[int] = field(default_factory=list)
    artists: dict[int, int] = field(default_factory=dict)
    keys: frozenset = frozenset()
    last: int = -1  # pool position of the last song; -1 = the start song
    label: int = -1
    left: frozenset = frozenset()
    last_artist: int | None = None


def sound_space(X: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Rows of real-unit features (FEATURES order) in the sound space (divided by the catalog std)."""
    X = np.asarray(X, dtype=np.float64)[..., :N_FEATURES]
    return X / np.where(std[:N_FEATURES] > 0, std[:N_FEATURES], 1.0)


def progress(Z: np.ndarray) -> np.ndarray:
    """Projection of each row of a path (sound space) onto the line from its
    first to its last row: 0 at the start, 1 at the end."""
    Z = np.asarray(Z, dtype=np.float64)
    d = Z[-1] - Z[0]
    dd = float(d @ d)
    return np.zeros(len(Z)) if dd == 0 else (Z - Z[0]) @ d / dd


def smoothness(Z: np.ndarray) -> dict[str, float]:
    """How smoothly a path moves (rows in the sound space, or real units of
    features on one scale such as the chart's 0-1 features).

    ``reversals``: direction changes, summed over the features (0 = each
    feature moves one way only); ``excess``: the distance travelled summed
    over the features, divided by the direct change from start to end, minus
    1 (0 = no feature ever moves back); ``backsteps``: steps whose projection
    on the start-end line goes backwards.
    """
    Z = np.asarray(Z, dtype=np.float64)
    steps = np.diff(Z, axis=0)
    signs = np.sign(np.where(np.abs(steps) < 1e-9, 0, steps))
    reversals = 0
    for j in range(Z.shape[1]):
        moves = signs[:, j][signs[:, j] != 0]
        reversals += int((moves[1:] != moves[:-1]).sum())
    direct = float(np.abs(Z[-1] - Z[0]).sum())
    excess = float(np.abs(steps).sum() / direct - 1) if direct > 0 else 0.0
    t = progress(Z)
    return {"reversals": reversals, "excess": round(excess, 4), "backsteps": int((np.diff(t) < -1e-9).sum())}


def segment_pool(
    X: np.ndarray, std: np.ndarray, start: np.ndarray, end: np.ndarray, *, size: int, mask: np.ndarray | None = None
) -> np.ndarray:
    """Rows of ``X`` (real units, at least the ten features) nearest to the segment
    from ``start`` to ``end`` in the sound space, nearest first; rows where
    ``mask`` is False are left out."""
    scale = 1.0 / np.where(std[:N_FEATURES] > 0, std[:N_FEATURES], 1.0)
    a = np.asarray(start, dtype=np.float64)[:N_FEATURES]
    d = (np.asarray(end, dtype=np.float64)[:N_FEATURES] - a) * scale
    dd = float(d @ d)
    n = len(X)
    best_rows, best_d2 = [], []
    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        Z = (X[lo:hi, :N_FEATURES] - a.astype(np.float32)) * scale.astype(np.float32)
        t = np.clip(Z @ d.astype(np.float32) / dd, 0, 1) if dd > 0 else np.zeros(hi - lo, dtype=np.float32)
        R = Z - t[:, None] * d.astype(np.float32)
        d2 = np.einsum("ij,ij->i", R, R)
        if mask is not None:
            d2[~mask[lo:hi]] = np.inf
        k = min(size, hi - lo)
        top = np.argpartition(d2, k - 1)[:k] if k < hi - lo else np.arange(hi - lo)
        top = top[np.isfinite(d2[top])]
        best_rows.append(top + lo)
        best_d2.append(d2[top])
    rows, d2 = np.concatenate(best_rows), np.concatenate(best_d2)
    order = np.argsort(d2, kind="stable")[:size]
    return rows[order].astype(np.int64)


def smooth_path(
    *,
    X: np.ndarray,
    std: np.ndarray,
    artists: np.ndarray,
    dup_keys: np.ndarray,
    labels: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    length: int,
    start_artist: int,
    end_artist: int,
    start_label: int = -1,
    end_label: int = -1,
    exclude_rows=(),
    exclude_keys=(),
    max_per_artist: int = 1,
    mask: np.ndarray | None = None,
) -> list[int]:
    """Rows of the ``length - 2`` songs between ``start`` and ``end`` (real-unit
    feature vectors), in order; fewer when the catalog has no song left that keeps
    the rules. ``X`` (n, >= 10) holds every row's features in real units, ``std``
    their catalog standard deviations; ``artists``, ``dup_keys`` and ``labels``
    (cluster labels, -1 unknown) are per row."""
    middle = length - 2
    if middle <= 0:
        return []
    a = sound_space(start, std)
    b = sound_space(end, std)
    d = b - a
    dd = float(d @ d)
    ideal = dd / (length - 1) ** 2
    unit = max(ideal, 1e-6)  # costs in squared ideal steps (two songs of equal sound: any unit)
    excluded = {int(r) for r in exclude_rows}
    base_keys = frozenset(int(k) for k in exclude_keys)
    pool = segment_pool(X, std, start, end, size=min(len(X), max(1000, 60 * length)), mask=mask)
    keep = ~np.isin(dup_keys[pool], np.fromiter(base_keys, np.int64, len(base_keys)))
    keep &= ~np.isin(pool, np.fromiter(excluded, np.int64, len(excluded)))
    pool = pool[keep]
    if not len(pool):
        return []
    Zp = sound_space(X[pool], std) - a  # relative to the start
    tp = Zp @ d / dd if dd > 0 else np.zeros(len(pool))
    pool_artists = artists[pool].astype(np.int64)
    pool_keys = dup_keys[pool].astype(np.int64)
    pool_labels = labels[pool].astype(np.int64)
    start_counts = {int(start_artist): 1}
    start_counts[int(end_artist)] = start_counts.get(int(end_artist), 0) + 1
    full = {artist for artist, count in start_counts.items() if count >= max_per_artist}

    def candidates(i: int, k: int) -> list[int]:
        """Pool positions nearest to point i, skipping artists already used up by
        the ends and keeping at most CANDIDATES_PER_ARTIST per artist."""
        point = d * (i / (length - 1))
        d2 = ((Zp - point) ** 2).sum(axis=1)
        out, per_artist = [], {}
        for p in np.argsort(d2, kind="stable").tolist():
            artist = int(pool_artists[p])
            if artist in full or per_artist.get(artist, 0) >= CANDIDATES_PER_ARTIST:
                continue
            per_artist[artist] = per_artist.get(artist, 0) + 1
            out.append(p)
            if len(out) == k:
                break
        return out

    # Features that change from start to end: moving one of them the other way is a reversal.
    direction = np.where(np.abs(d) > 0.05 * np.sqrt(max(dd, 1e-12)), np.sign(d), 0.0)

    def step_costs(beam: list[_State], cands: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(cost, steps back along the line) of each step from each state (rows)
        to each candidate (columns), before the rules."""
        last = np.array([state.last for state in beam])
        prev = np.where(last[:, None] >= 0, Zp[np.maximum(last, 0)], 0.0)
        prev_t = np.where(last >= 0, tp[np.maximum(last, 0)], 0.0)
        delta = Zp[cands][None, :, :] - prev[:, None, :]
        cost = np.array([state.cost for state in beam])[:, None] + CLOSE_WEIGHT * close[None, :]
        cost = cost + STEP_WEIGHT * (delta**2).sum(axis=2) / unit
        cost += FEATURE_BACK_WEIGHT * (np.maximum(0.0, -delta * direction) ** 2).sum(axis=2) / unit
        back = (prev_t[:, None] - tp[cands][None, :]) * (length - 1)
        cost += np.where(back > 0, BACKTRACK_WEIGHT * back * back, 0.0)
        for s_, state in enumerate(beam):
            if state.left:
                revisit = [label != state.label and label in state.left for label in pool_labels[cands].tolist()]
                cost[s_] += np.where(revisit, REVISIT_PENALTY, 0.0)
        return cost, back

    def to_end(beam: list[_State], cands: np.ndarray) -> np.ndarray:
        """What each candidate's step to the end song costs, from each state."""
        delta = d - Zp[cands]
        cost = STEP_WEIGHT * (delta**2).sum(axis=1) / unit
        cost += FEATURE_BACK_WEIGHT * (np.maximum(0.0, -delta * direction) ** 2).sum(axis=1) / unit
        out = np.tile(cost, (len(beam), 1))
        labels = pool_labels[cands].tolist()
        for s_, state in enumerate(beam):
            out[s_] += [
                REVISIT_PENALTY
                if end_label != label
                and end_label >= 0
                and (end_label in state.left or end_label == state.label != label)
                else 0.0
                for label in labels
            ]
        return out

    beam = [_State(0.0, artists=dict(start_counts), keys=base_keys, label=int(start_label), last_artist=start_artist)]
    for i in range(1, middle + 1):
        point = d * (i / (length - 1))
        chosen: list[_State] = []
        # Monotone steps among the nearest candidates first; then more candidates;
        # then steps back along the line (penalised) rather than no path.
        for k, monotone in ((CANDIDATES, True), (CANDIDATES * 8, True), (CANDIDATES * 8, False)):
            cands = np.asarray(candidates(i, k), dtype=np.int64)
            if not len(cands):
                break
            cost, back = step_costs(beam, cands, ((Zp[cands] - point) ** 2).sum(axis=1) / unit)
            if monotone:
                cost[(back > 0) | (tp[cands] > 1)[None, :]] = np.inf
            if i == middle:
                cost += to_end(beam, cands)
            seen: set[int] = set()
            # Cheapest first; the rules are checked only until the beam is full.
            for flat in np.argsort(cost, axis=None, kind="stable").tolist():
                s_, j = divmod(flat, len(cands))
                if not np.isfinite(cost[s_, j]):
                    break
                p, state = int(cands[j]), beam[s_]
                artist, key = int(pool_artists[p]), int(pool_keys[p])
                if (
                    p in seen
                    or key in state.keys
                    or state.artists.get(artist, 0) >= max_per_artist
                    or artist == state.last_artist
                    or (i == middle and artist == end_artist)
                ):
                    continue
                # One state per last song: states that end on the same song differ
                # only in their past, and the cheapest one wins.
                seen.add(p)
                chosen.append(_revised(state, float(cost[s_, j]), p, artist, key, int(pool_labels[p])))
                if len(chosen) == BEAM_WIDTH:
                    break
            if chosen:
                break
        if not chosen:
            break  # the catalog has no song left that keeps the rules
        beam = chosen
    best = min(beam, key=lambda s: s.cost)
    return [int(pool[p]) for p in best.rows]


def _revised(state: _State, cost: float, p: int, artist: int, key: int, label: int) -> _State:
    artists = dict(state.artists)
    artists[artist] = artists.get(artist, 0) + 1
    left = state.left | {state.label} if label != state.label and state.label >= 0 else state.left
    return _State(
        cost=cost,
        rows=[*state.rows, p],
        artists=artists,
        keys=state.keys | {key},
        last=p,
        label=label,
        left=left,
        last_artist=artist,
    )
