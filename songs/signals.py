"""Signals of the catalog, for the apps built on it (the catalog imports none of them)."""

from django.dispatch import Signal

# Sent after an import's merge has committed, when it created or changed
# songs: ``song_ids`` (a sorted list of the primary keys of the songs created
# or changed by the import), ``job`` (the ImportJob). The clustering engine
# labels them with its active model (clustering.apps).
songs_imported = Signal()
