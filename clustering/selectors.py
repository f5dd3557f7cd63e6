"""Read queries of the clustering engine."""
from .models import TrainingRun


def training_run_json(run: TrainingRun) -> dict:
    return {
        "id": run.pk,
        "status": run.status,
        "is_active": run.is_active,
        "algorithm": run.algorithm,
        "scaler": run.scaler,
        "features": run.features,
        "params": run.params,
        "n_songs": run.n_songs,
        "n_clusters": run.n_clusters,
        "metrics": run.metrics,
        "k_scan": run.k_scan,
        "timings": run.timings,
        "sklearn_version": run.sklearn_version,
        "artifact_sha256": run.artifact_sha256,
        "error": run.error,
        "created_at": run.created_at.isoformat() if run.created_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "clusters": [
            {"id": c.pk, "label": c.label, "name": c.name, "size": c.size, "description": c.description}
            for c in run.clusters.order_by("label")
        ],
    }

