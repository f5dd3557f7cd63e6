"""Pure ML core of musiccluster: numpy / scipy / scikit-learn / joblib only, no Django.

Services turn querysets into float64 arrays of shape (n, 10) whose columns
follow :data:`FEATURES` (real units) and call this package::

    model = ClusterModel(algorithm="kmeans", k="auto").fit(X, progress=cb)
    out = model.pop_training_outputs()      # labels + 2-D map per row
    joblib.dump(model, path)                # small: no per-row data
    model.predict(X_new); model.predict_details(X_new)

See README.md beside this file for the measured speed and design notes.
"""

from .algorithms import ALGORITHMS, DEFAULT_MINIBATCH_THRESHOLD, KMEANS_N_INIT, BuiltEstimator, make_estimator
from .features import FEATURES, SCALERS, FeaturePreparer
from .identity import DEFAULT_MAX_MATCH_DISTANCE, match_clusters
from .model import ClusterModel, match_models
from .naming import NOISE_NAME, name_clusters
from .profiles import NOISE_LABEL, ClusterProfile, cluster_profiles, describe_cluster
from .selection import choose_eps, choose_k, explain_k_choice, scan_k, silhouette

__all__ = [
    "ALGORITHMS",
    "DEFAULT_MAX_MATCH_DISTANCE",
    "DEFAULT_MINIBATCH_THRESHOLD",
    "FEATURES",
    "KMEANS_N_INIT",
    "NOISE_LABEL",
    "NOISE_NAME",
    "SCALERS",
    "BuiltEstimator",
    "ClusterModel",
    "ClusterProfile",
    "FeaturePreparer",
    "choose_eps",
    "choose_k",
    "cluster_profiles",
    "describe_cluster",
    "explain_k_choice",
    "make_estimator",
    "match_clusters",
    "match_models",
    "name_clusters",
    "scan_k",
    "silhouette",
]
