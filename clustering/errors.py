"""The engine's errors: each message says what went wrong and what to do.

Views and API classes turn them into responses (a missing model is a 503,
a request the index cannot answer a 400); tasks record them on the run.
"""


class TrainingError(Exception):
    """A run cannot train or activate, or no model is active; the message says why."""


class RunBusy(Exception):
    """Another run is training; the database allows one at a time."""


class ArtifactError(Exception):
    """A model artifact or similarity index is missing, altered or from another scikit-learn."""


class SimilarityError(Exception):
    """A request the similarity index cannot answer as asked (the message says why)."""


class BlocklistError(ValueError):
    """A blocklist change refused (the message says why); ``field`` names the input at fault."""

    def __init__(self, message: str, *, field: str = "id"):
        super().__init__(message)
        self.field = field
