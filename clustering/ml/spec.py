"""The one specification of a training run.

:class:`TrainingSpec` declares every parameter once (type, default, bounds,
help). The admin's Retrain form, ``manage.py train`` and ``POST /api/runs/``
are derived from :func:`spec_params`; :meth:`TrainingSpec.from_params`
validates whatever any of them sends, in one place, with a ValueError that
names the parameter; a run stores :meth:`TrainingSpec.to_params` and is
rebuilt from it. Pure Python: no Django.
"""

from __future__ import annotations

import numbers
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from .algorithms import ALGORITHMS, check_params
from .features import FEATURES, SCALERS

K_AUTO = "auto"
K_BOUNDS = (2, 100)
SCAN_K_BOUNDS = (2, 50)


def _meta(kind: str, help: str, *, low=None, high=None, choices=(), label: str = "") -> dict[str, Any]:
    return {"kind": kind, "help": help, "low": low, "high": high, "choices": tuple(choices), "label": label}


@dataclass(frozen=True)
class TrainingSpec:
    """What a training run is asked to do. Kinds: choice, k, int, bool,
    features (a subset of the ten), k_range (from, to), params (a dict)."""

    algorithm: str = field(default="kmeans", metadata=_meta("choice", "The clustering algorithm.", choices=ALGORITHMS))
    k: int | str = field(
        default=K_AUTO,
        metadata=_meta(
            "k",
            f"A number of clusters ({K_BOUNDS[0]}–{K_BOUNDS[1]}), or 'auto' to pick it by silhouette.",
            low=K_BOUNDS[0],
            high=K_BOUNDS[1],
        ),
    )
    scaler: str = field(
        default="standard", metadata=_meta("choice", "How the features are scaled before clustering.", choices=SCALERS)
    )
    features: tuple[str, ...] = field(
        default=FEATURES,
        metadata=_meta("features", "The features to cluster on (at least two; default all ten).", choices=FEATURES),
    )
    scan_sample_size: int = field(
        default=10_000,
        metadata=_meta(
            "int",
            "Rows used for the silhouette of each k in the k scan.",
            low=100,
            high=1_000_000,
            label="Sample size for the scan",
        ),
    )
    # 5-12: silhouette alone peaks at k = 2 on every real catalog measured
    # (docs/CLUSTERING.md), two clusters nobody can browse.
    scan_k_range: tuple[int, int] = field(
        default=(5, 12),
        metadata=_meta(
            "k_range",
            "The k values tried by k='auto' (from, to).",
            low=SCAN_K_BOUNDS[0],
            high=SCAN_K_BOUNDS[1],
            label="k scan",
        ),
    )
    random_state: int = field(
        default=0,
        metadata=_meta(
            "int",
            "Seed of the random number generator: the same seed on the same catalog gives the same model.",
            low=0,
            high=2**32 - 1,
        ),
    )
    algorithm_params: dict = field(
        default_factory=dict,
        metadata=_meta("params", 'Extra parameters of the algorithm, e.g. {"eps": 0.8} for dbscan.'),
    )
    activate: bool = field(default=True, metadata=_meta("bool", "Make the new model active when it succeeds."))
    activation_chunk_songs: int = field(
        default=0,
        metadata=_meta(
            "int",
            "Songs per labelling task when labelling is shared out over workers (0: by catalog size).",
            low=0,
            high=10**9,
        ),
    )

    @classmethod
    def from_params(cls, **params: Any) -> TrainingSpec:
        """A validated spec from parameters of any front door (strings from a
        form or a command line are accepted where a number is meant)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; accepted: {', '.join(sorted(known))}")
        values = {name: default for name, default, _ in spec_params()}
        values.update({name: value for name, value in params.items() if value is not None})
        clean = {f.name: _check(f.name, f.metadata, values[f.name]) for f in fields(cls)}
        clean["algorithm_params"] = check_params(clean["algorithm"], clean["algorithm_params"])
        k_min, k_max = clean["scan_k_range"]
        if k_min > k_max:
            raise ValueError(f"scan_k_range: from ({k_min}) must not be greater than to ({k_max})")
        return cls(**clean)

    def to_params(self) -> dict[str, Any]:
        """JSON-ready parameters (what a run stores)."""
        data = asdict(self)
        data["features"] = list(self.features)
        data["scan_k_range"] = list(self.scan_k_range)
        return data

    def model_kwargs(self) -> dict[str, Any]:
        """Arguments of :class:`clustering.ml.ClusterModel`."""
        low, high = self.scan_k_range
        return {
            "algorithm": self.algorithm,
            "k": self.k,
            "scaler": self.scaler,
            "features": list(self.features),
            "random_state": self.random_state,
            "scan_sample_size": self.scan_sample_size,
            "scan_k_values": tuple(range(low, high + 1)),
            "algorithm_params": self.algorithm_params or None,
        }


def spec_params() -> list[tuple[str, Any, dict[str, Any]]]:
    """(name, default, metadata) of every parameter, in declaration order: what front doors derive from."""
    out = []
    for f in fields(TrainingSpec):
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        out.append((f.name, default, dict(f.metadata)))
    return out


def _int(name: str, value: Any, low: int | None, high: int | None) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be between {low:,} and {high:,}, not {value:,}")
    return value


def _check(name: str, meta: dict[str, Any], value: Any) -> Any:
    kind, low, high, choices = meta["kind"], meta["low"], meta["high"], meta["choices"]
    if kind == "choice":
        if value not in choices:
            raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
        return value
    if kind == "k":
        if isinstance(value, str) and value.strip().lower() == K_AUTO:
            return K_AUTO
        try:
            return _int(name, value, low, high)
        except ValueError:
            raise ValueError(f"k must be a whole number between {low} and {high}, or 'auto'; not {value!r}") from None
    if kind == "int":
        return _int(name, value, low, high)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, not {value!r}")
        return value
    if kind == "features":
        chosen = tuple(value) if not isinstance(value, str) else tuple(v.strip() for v in value.split(",") if v.strip())
        unknown = [f for f in chosen if f not in choices]
        if unknown:
            raise ValueError(f"unknown feature(s) {', '.join(map(str, unknown))}; choose from {', '.join(choices)}")
        if len(chosen) < 2:
            raise ValueError("choose at least two features")
        return chosen
    if kind == "k_range":
        if isinstance(value, str) or len(value) != 2:
            raise ValueError(f"{name} must be two whole numbers (from, to), not {value!r}")
        return tuple(_int(name, v, low, high) for v in value)
    if kind == "params":
        if not isinstance(value, dict):
            raise ValueError(f"{name} must be an object of parameter names and values, not {value!r}")
        return dict(value)
    raise AssertionError(f"unknown parameter kind {kind!r}")
