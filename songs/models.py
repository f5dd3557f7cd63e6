from django.conf import settings
from django.db import models, transaction

from .features import FEATURE_NAMES
from .labels import ActiveLabel, labels_attach


def _with_hash(kwargs: dict) -> dict:
    """save() arguments that also write content_hash (a save of some fields only)."""
    if kwargs.get("update_fields") is not None:
        kwargs = {**kwargs, "update_fields": {*kwargs["update_fields"], "content_hash"}}
    return kwargs


class _EditsClearHashQuerySet(models.QuerySet):
    """update() and bulk_update() are edits outside the import too: they clear
    content_hash (unless they write it themselves), as save() does, so that
    the next import compares the rows in full rather than trusting a hash of
    what the file once said."""

    def update(self, **kwargs):
        if "content_hash" in kwargs:
            return super().update(**kwargs)
        with transaction.atomic(using=self.db):
            self._edited()
            return super().update(**kwargs, content_hash=None)

    def bulk_update(self, objs, fields, batch_size=None):
        if "content_hash" in fields:
            return super().bulk_update(objs, fields, batch_size=batch_size)
        objs = list(objs)
        for obj in objs:
            obj.content_hash = None
        with transaction.atomic(using=self.db):
            self.filter(pk__in=[o.pk for o in objs])._edited()
            return super().bulk_update(objs, [*fields, "content_hash"], batch_size=batch_size)

    def _edited(self) -> None:
        """What else an edit of these rows makes stale (before they change)."""


class _ArtistQuerySet(_EditsClearHashQuerySet):
    def _edited(self) -> None:
        # Songs' rows name their artist: they are compared in full too (also after Artist.save).
        Song.objects.using(self.db).filter(artist_id__in=self.values("pk"), content_hash__isnull=False).update(
            content_hash=None
        )


class Artist(models.Model):
    external_id = models.CharField(max_length=64)
    name = models.CharField(max_length=512)
    genres = models.JSONField(default=list, blank=True)
    followers = models.BigIntegerField(null=True, blank=True)
    popularity = models.SmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    # What the import last wrote: a 64-bit hash of the artist's columns as they
    # came from the file (songs.importing.ARTIST_HASH_COLUMNS). NULL once the
    # row is edited by other means, so the next import compares it in full.
    content_hash = models.BigIntegerField(null=True, blank=True, editable=False)

    objects = _ArtistQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        # A constraint rather than unique=True: on Postgres the latter adds a
        # second (LIKE) index that every import would pay for.
        constraints = [models.UniqueConstraint(fields=["external_id"], name="artist_external_id_unique")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        # An edit outside the import: the stored row no longer is the file's,
        # and neither are its songs' rows (they name the artist by its
        # external id): the next import compares them in full.
        self.content_hash = None
        super().save(*args, **_with_hash(kwargs))
        if self.pk is not None:
            Artist.objects.using(self._state.db).filter(pk=self.pk)._edited()


class Song(models.Model):
    """One track of the catalog, addressed by its external_id.

    external_id is the source's track id, or a stable id derived from artist
    and title when the source has none (see songs.importing.derived_id).
    """

    external_id = models.CharField(max_length=64)
    name = models.CharField(max_length=512)
    # No database-level FK: the import resolves artist ids by a join, and a
    # deferred FK check per row cost ~3.5 s at commit per million songs.
    # Deleting an artist with songs is still refused by the ORM (PROTECT).
    artist = models.ForeignKey(Artist, on_delete=models.PROTECT, related_name="songs", db_constraint=False)
    # NULL: the export has no album column (an empty string would claim one).
    album = models.CharField(max_length=512, null=True, blank=True)  # noqa: DJ001
    # Genre labels of the song (the artist's genres in the flagship format,
    # the playlist or track genre in other exports).
    genres = models.JSONField(default=list, blank=True)
    popularity = models.SmallIntegerField(null=True, blank=True)
    explicit = models.BooleanField(null=True, blank=True)
    release_date = models.DateField(null=True, blank=True)
    release_year = models.SmallIntegerField(null=True, blank=True)

    # The ten clustering features.
    danceability = models.FloatField()
    energy = models.FloatField()
    loudness = models.FloatField(help_text="dB")
    speechiness = models.FloatField()
    acousticness = models.FloatField()
    instrumentalness = models.FloatField()
    liveness = models.FloatField()
    valence = models.FloatField()
    tempo = models.FloatField(help_text="BPM")
    duration_ms = models.IntegerField()

    key = models.SmallIntegerField(null=True, blank=True)
    mode = models.SmallIntegerField(null=True, blank=True)
    time_signature = models.SmallIntegerField(null=True, blank=True)

    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    # What the import last wrote: a 64-bit hash of the song's columns as they
    # came from the file (songs.importing.SONG_HASH_COLUMNS). A re-import
    # stages only the rows whose hash the catalog does not hold; an edit by
    # any other means clears it (save below), so such a row is compared in
    # full and re-written when the file differs.
    content_hash = models.BigIntegerField(null=True, blank=True, editable=False)

    objects = _EditsClearHashQuerySet.as_manager()

    FEATURES = FEATURE_NAMES

    class Meta:
        ordering = ["id"]
        # Every index slows the import; title search is a substring match that
        # a b-tree on name would not serve (a trigram index does).
        constraints = [models.UniqueConstraint(fields=["external_id"], name="song_external_id_unique")]
        # A cluster's songs sorted by title walk this index (3-25 ms at 1M songs
        # instead of sorting a 345k-song cluster, 316 ms).
        indexes = [models.Index(fields=["name", "id"], name="song_name_id")]
        # Title and artist search use trigram indexes (Postgres; migration 0002).

    def __str__(self) -> str:
        return f"{self.name} — {self.artist.name}" if self.artist_id else self.name

    def save(self, *args, **kwargs):
        self.content_hash = None  # edited outside the import (see the field)
        super().save(*args, **_with_hash(kwargs))

    # A song's cluster and map position are the engine's labels of its active
    # run, not columns of the catalog (songs.labels): attached in bulk by
    # labels_attach, or read on first use.
    @property
    def label(self) -> ActiveLabel | None:
        if "_label" not in self.__dict__:
            labels_attach([self])
        return self.__dict__["_label"]

    @property
    def cluster_id(self) -> int | None:
        return self.label.cluster_id if self.label else None

    @property
    def cluster_name(self) -> str | None:
        return self.label.cluster_name if self.label else None

    @property
    def map_x(self) -> float | None:
        return self.label.map_x if self.label else None

    @property
    def map_y(self) -> float | None:
        return self.label.map_y if self.label else None


class ImportJob(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    file = models.FileField(upload_to="imports/%Y/%m/", null=True, blank=True)
    file_name = models.CharField(max_length=512)
    sha256 = models.CharField(max_length=64, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    format = models.CharField(max_length=32, blank=True, help_text="Detected or requested input format.")
    encoding = models.CharField(max_length=32, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    stage = models.CharField(max_length=32, blank=True)
    rows_total_estimate = models.BigIntegerField(null=True, blank=True)
    rows_read = models.BigIntegerField(default=0)
    rows_created = models.BigIntegerField(default=0)
    rows_updated = models.BigIntegerField(default=0)
    rows_unchanged = models.BigIntegerField(default=0)
    rows_rejected = models.BigIntegerField(default=0)
    rows_duplicate = models.BigIntegerField(
        default=0, help_text="Rows whose id appeared again later in the same file (the last one wins)."
    )
    rejected_rows = models.JSONField(
        default=list, blank=True, help_text="The first rejected rows: line, column, value and reason."
    )
    error = models.TextField(blank=True)
    timings = models.JSONField(default=dict, blank=True, help_text="Seconds spent per stage.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text="When its task was last sent (the sweeper re-sends a lost one)."
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Import #{self.pk} {self.file_name} ({self.status})"

    @property
    def progress_percent(self) -> int:
        if self.status == self.Status.SUCCEEDED:
            return 100
        if not self.rows_total_estimate:
            return 0
        return min(99, int(100 * self.rows_read / self.rows_total_estimate))

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None
