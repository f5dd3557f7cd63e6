"""Signals of the catalog, for the apps built on it (the catalog imports none of them)."""

from django.dispatch import Signal

# Sent after an import's merge has committed, when it created or changed
# songs: ``song_ids`` (the primary keys of the songs created or changed by
# the import, ascending: an iterable with a length, read from the database
# when a receiver first iterates it), ``job`` (the ImportJob). The clustering
# engine labels them with its active model (clustering.apps).
songs_imported = Signal()
