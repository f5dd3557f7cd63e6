import uuid

from django.conf import settings
from django.db import models


class TrainingRunQuerySet(models.QuerySet):
    def active(self) -> "TrainingRun | None":
        """The active run (the database allows at most one), or None."""
        return self.filter(is_active=True).first()


class TrainingRun(models.Model):
    """One fit of the clustering pipeline: a versioned model."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    algorithm = models.CharField(max_length=32, default="kmeans")
    params = models.JSONField(default=dict, blank=True)
    features = models.JSONField(default=list, blank=True)
    scaler = models.CharField(max_length=32, default="standard")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    stage = models.CharField(max_length=32, blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    n_songs = models.IntegerField(null=True, blank=True)
    n_clusters = models.IntegerField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    k_scan = models.JSONField(default=list, blank=True)
    timings = models.JSONField(default=dict, blank=True)
    sklearn_version = models.CharField(max_length=32, blank=True)
    artifact_path = models.CharField(max_length=512, blank=True)
    artifact_sha256 = models.CharField(max_length=64, blank=True)
    # The similar-song index built with the model (clustering.ml.similarity).
    index_path = models.CharField(max_length=512, blank=True)
    index_sha256 = models.CharField(max_length=64, blank=True)
    is_active = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text="When its task was last sent (the sweeper re-sends a lost one)."
    )

    objects = TrainingRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Exactly one active run, and at most one run training at a time,
            # enforced by the database.
            models.UniqueConstraint(fields=["is_active"], condition=models.Q(is_active=True), name="one_active_run"),
            models.UniqueConstraint(fields=["status"], condition=models.Q(status="running"), name="one_running_run"),
        ]

    def __str__(self) -> str:
        return f"Run #{self.pk} {self.algorithm} ({self.status})"

    @property
    def is_live(self) -> bool:
        """Queued or running: its pages follow its progress."""
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)


class Cluster(models.Model):
    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="clusters")
    label = models.IntegerField(help_text="The model's label for this cluster (-1 is noise).")
    name = models.CharField(max_length=128)
    name_is_custom = models.BooleanField(default=False, help_text="Renamed by an admin; carried over on retrain.")
    description = models.TextField(blank=True)
    size = models.IntegerField(default=0)
    profile = models.JSONField(default=dict, blank=True)
    # Stable identity across retrains: clusters matched to one of the
    # previous run share its lineage.
    lineage = models.UUIDField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["run", "label"]
        constraints = [models.UniqueConstraint(fields=["run", "label"], name="unique_label_per_run")]

    def __str__(self) -> str:
        return self.name


class SongLabel(models.Model):
    """A run's label of one song: its cluster and map position.

    The permanent, append-only label store of every run (the catalog keeps
    no labels). On Postgres the table is partitioned by run (``PARTITION BY
    LIST (run_id)``), one partition per run named after it
    (``clustering_songlabel_run_<id>``), written with COPY and dropped whole
    (clustering.labels); on SQLite it is a plain table. Activating a run
    flips ``TrainingRun.is_active``; reads join the active run's rows
    (songs.labels). No database foreign keys: they would be checked row by
    row on every write, and a run's labels go with their partition.
    """

    pk = models.CompositePrimaryKey("run", "song_id")
    run = models.ForeignKey(TrainingRun, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    song_id = models.BigIntegerField()
    # The Cluster row of the song's label; NULL for noise without one.
    cluster_id = models.BigIntegerField(null=True)
    # NULL: the song is off the map (a model without a 2-D projection).
    map_x = models.FloatField(null=True)
    map_y = models.FloatField(null=True)

    class Meta:
        # Keyset pages of a cluster walk (run, cluster, song) in order.
        indexes = [models.Index(fields=["run", "cluster_id", "song_id"], name="songlabel_run_cluster_song")]

    def __str__(self) -> str:
        return f"song {self.song_id} of run #{self.run_id}"


class Playlist(models.Model):
    """A saved, ordered list of songs.

    Items point at songs, not clusters, so a playlist keeps its songs across
    retrains; the share id lets anyone holding the link read it.
    """

    class Source(models.TextChoices):
        MANUAL = "manual"
        RADIO = "radio"
        RECOMMENDATIONS = "recommendations"
        CLUSTER = "cluster"
        PATH = "path"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="playlists")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    is_public = models.BooleanField(default=False)
    # Random, not derived from the primary key: knowing one link reveals no other.
    share_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    source = models.CharField(max_length=32, choices=Source.choices, default=Source.MANUAL)
    # What generated the songs (radio, recommendations, path, cluster), as
    # clustering.playlists.generator_params_clean leaves them: a saved
    # generated playlist can be made again on the current catalog.
    params = models.JSONField(default=dict, blank=True)
    regenerated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [models.Index(fields=["is_public"], name="playlist_public_idx", condition=models.Q(is_public=True))]

    def __str__(self) -> str:
        return self.name


class PlaylistItem(models.Model):
    playlist = models.ForeignKey(Playlist, on_delete=models.CASCADE, related_name="items")
    # A song removed from the catalog leaves the playlists it was in.
    song = models.ForeignKey("songs.Song", on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ["playlist", "position"]
        constraints = [models.UniqueConstraint(fields=["playlist", "position"], name="unique_position_per_playlist")]

    def __str__(self) -> str:
        return f"{self.playlist_id}#{self.position}"


class BlockedItem(models.Model):
    """An artist, song or genre a signed-in user never wants to see again.

    The listener's preference belongs to the engine (the catalog stands
    alone): songs and artists are held by their external ids, which survive
    a re-import, genres by their normalised name. Every discovery endpoint
    passes a user's blocks as exclude_artists / exclude_songs / exclude_genres.
    """

    class Kind(models.TextChoices):
        ARTIST = "artist"
        SONG = "song"
        GENRE = "genre"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blocked_items")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    value = models.CharField(max_length=512, help_text="External id (artist, song) or genre name (lower case).")
    label = models.CharField(
        max_length=1024, blank=True, help_text="How pages show it, e.g. a song's title and artist."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "label", "id"]
        constraints = [models.UniqueConstraint(fields=["user", "kind", "value"], name="unique_block_per_user")]

    def __str__(self) -> str:
        return f"{self.kind} {self.label or self.value}"
