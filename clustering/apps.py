from django.apps import AppConfig


class ClusteringConfig(AppConfig):
    name = "clustering"
    verbose_name = "Clustering"

    def ready(self) -> None:
        from django.db.models.signals import post_delete

        from songs.labels import label_source_register
        from songs.models import ImportJob
        from songs.signals import songs_imported

        from . import labels
        from .models import TrainingRun

        # The catalog reads songs' clusters and map positions through this
        # (songs.labels): the active run's labels, which the engine keeps.
        label_source_register(labels.active_label_source)
        songs_imported.connect(_label_imported, sender=ImportJob, dispatch_uid="clustering-label-imported")
        post_delete.connect(_run_deleted, sender=TrainingRun, dispatch_uid="clustering-run-labels-drop")


def _label_imported(sender, *, song_ids, **kwargs) -> None:
    """Songs an import created or changed are labelled by the active model at once."""
    from .models import TrainingRun

    # Without an active run there is no model to label them with: the
    # services (and scikit-learn with them) stay unloaded in an import
    # process. An activation labels the songs added after its run's labels.
    if not TrainingRun.objects.filter(is_active=True).exists():
        return
    from .services import songs_label_imported

    songs_label_imported(song_ids=song_ids)


def _run_deleted(sender, instance, **kwargs) -> None:
    """A deleted run's labels go with it."""
    from .labels import labels_drop

    labels_drop(instance.pk)
