"""REST API of the catalog: songs, searchable and filterable; CSV imports (staff)."""

import django_filters
from django.db.models.expressions import RawSQL
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from . import services
from .features import FEATURES
from .formats import FORMATS
from .labels import cluster_song_ids_sql
from .models import ImportJob, Song
from .selectors import SONG_FIELDS, search_filter, song_record_get, song_record_of, song_records
from .uploads import refused_uploads, upload_is_too_large, upload_too_large_message


# The whole API documents its errors with this (musiccluster.api_errors produces them).
class ApiErrorSerializer(serializers.Serializer):
    """The body of every API error (for the OpenAPI schema)."""

    detail = serializers.CharField(help_text="What went wrong, naming the field: 'limit: Ensure this value is …'.")
    errors = serializers.JSONField(
        required=False, help_text="Validation errors only: the messages per field, as DRF reports them."
    )


# The fields document the shape for the schema; the data is songs.selectors.song_record_of's,
# the same records the engine's endpoints read with one raw query.
class SongSerializer(serializers.ModelSerializer):
    """A song as every endpoint shows it: its catalog columns, the ten audio
    features, and its cluster and map position in the active run."""

    id = serializers.CharField(source="external_id", read_only=True)
    artist = serializers.CharField(source="artist.name", read_only=True)
    artist_id = serializers.CharField(source="artist.external_id", read_only=True)
    cluster = serializers.SerializerMethodField()
    map_x = serializers.FloatField(read_only=True, allow_null=True, help_text="Position on the active run's map.")
    map_y = serializers.FloatField(read_only=True, allow_null=True, help_text="Position on the active run's map.")

    class Meta:
        model = Song
        fields = list(SONG_FIELDS)

    def get_cluster(self, song) -> dict | None:
        """{id, name} of the song's cluster in the active run, or null."""
        return song_record_of(song)["cluster"]

    def to_representation(self, instance):
        return dict(song_record_of(instance))


class SongFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(method="filter_search", help_text="Substring of the title or the artist name.")
    cluster = django_filters.NumberFilter(
        method="filter_cluster", min_value=1, max_value=2**63 - 1, help_text="Id of a cluster of the active run."
    )

    class Meta:
        model = Song
        fields = {name: ["gte", "lte"] for name in [f.name for f in FEATURES]}

    def filter_search(self, queryset, name, value):
        return queryset.filter(search_filter(value))

    def filter_cluster(self, queryset, name, value):
        members = cluster_song_ids_sql(int(value))
        return queryset.filter(id__in=RawSQL(*members)) if members else queryset.none()


class SongCursorPagination(CursorPagination):
    """Keyset pages of songs in catalog order (id): each page reads page_size + 1
    rows after (or before) the cursor's id, so no COUNT(*) and no OFFSET over a
    million songs. ``next``/``previous`` are opaque links (null at either end)."""

    ordering = "id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    cursor_query_description = (
        "Opaque position in the list: follow a page's `next` and `previous` links as given (none: the first page)."
    )
    INVALID = "not a cursor of this list; follow the `next` and `previous` links of a page as given."

    def paginate_queryset(self, queryset, request, view=None):
        if "page" in request.query_params:  # a client of the numbered pages this list had
            raise ValidationError({"page": "this list pages by cursor: follow a page's `next` link (see /api/docs/)."})
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            cursor = False
        if cursor is None:
            return None
        # Ids are unique: the cursors this list hands out carry an id and no
        # offset. Anything else was made by hand (and an offset would be a scan).
        position = cursor.position if cursor else None
        if (
            cursor is False
            or cursor.offset
            or (position is not None and not (position.isascii() and position.isdigit() and int(position) < 2**63))
        ):
            raise ValidationError({"cursor": self.INVALID})
        return cursor


def songs_page_response(view, queryset):
    """One cursor page of ``queryset``'s songs as records of the API's one shape:
    the page's ids through the keyset, then the songs in one query
    (songs.selectors.song_records), as the similar-song endpoints read them."""
    page = view.paginate_queryset(queryset.values("id"))
    ids = [row["id"] for row in page]
    records = song_records(ids=ids)
    return view.get_paginated_response([records[pk] for pk in ids if pk in records])


class SongViewSet(viewsets.ReadOnlyModelViewSet):
    """Songs of the catalog, addressed by their external id."""

    serializer_class = SongSerializer
    filterset_class = SongFilter
    pagination_class = SongCursorPagination
    lookup_field = "external_id"
    lookup_value_regex = ".+"  # any stored id, "a/b" too (sent as a%2Fb)
    queryset = Song.objects.all()

    def list(self, request, *args, **kwargs):
        return songs_page_response(self, self.filter_queryset(self.get_queryset()))

    def retrieve(self, request, *args, **kwargs):
        # One raw query, no filter set and no model instance: the similar-song
        # endpoints' read of a song.
        record = song_record_get(external_id=kwargs["external_id"])
        if record is None:
            # An address like /api/songs/x/y/ lands here too (ids may hold "/").
            raise NotFound(f"No song with id {kwargs['external_id']!r}; see /api/docs/.")
        return Response(record)


class ImportJobSerializer(serializers.ModelSerializer):
    progress = serializers.IntegerField(source="progress_percent", read_only=True, help_text="Percent done (0-100).")
    created_by = serializers.CharField(source="created_by.get_username", read_only=True, default=None)
    rejected_rows = serializers.JSONField(
        read_only=True, help_text="The first rejected rows, each with its line, column, value and reason."
    )

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "file_name",
            "status",
            "stage",
            "progress",
            "format",
            "encoding",
            "sha256",
            "size_bytes",
            "rows_total_estimate",
            "rows_read",
            "rows_created",
            "rows_updated",
            "rows_unchanged",
            "rows_duplicate",
            "rows_rejected",
            "rejected_rows",
            "error",
            "timings",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class UploadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "upload_too_large"


class ImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="The CSV: an Amazon Music / Spotify export or another Spotify-style export, at most "
        "IMPORT_UPLOAD_MAX_BYTES (512 MB unless the site says otherwise; 413 beyond)."
    )
    format = serializers.ChoiceField(
        choices=["auto", *FORMATS],
        default="auto",
        help_text="The input format; 'auto' detects it from the header.",
        error_messages={
            "invalid_choice": f'"{{input}}" is not a format; choose one of {", ".join(["auto", *FORMATS])}.'
        },
    )

    def validate_file(self, file):
        if upload_is_too_large(file.size):  # the upload handler refuses it sooner (413)
            raise serializers.ValidationError(upload_too_large_message(file.name, file.size))
        return file


@extend_schema_view(
    list=extend_schema(summary="Import jobs, newest first (staff)"),
    retrieve=extend_schema(summary="One import job: status, counts, progress, rejected rows (staff)"),
    create=extend_schema(
        summary="Upload a CSV to import (staff)",
        request={"multipart/form-data": ImportUploadSerializer},
        description="The file is stored, then imported by a worker (the job's status says how it went). A file "
        "larger than IMPORT_UPLOAD_MAX_BYTES is refused with 413 and a message naming the limit; the file of a "
        "finished import is removed (after IMPORT_UPLOAD_KEEP_DAYS days, 0 by default).",
        responses={
            202: ImportJobSerializer,
            400: ApiErrorSerializer,
            401: ApiErrorSerializer,
            403: ApiErrorSerializer,
            413: ApiErrorSerializer,
        },
    ),
)
class ImportJobViewSet(
    mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """CSV imports, as the admin upload runs them: a job row and a Celery task."""

    queryset = ImportJob.objects.select_related("created_by").order_by("-created_at", "-id")
    serializer_class = ImportJobSerializer
    permission_classes = [permissions.IsAdminUser]
    parser_classes = [MultiPartParser, FormParser]

    def create(self, request, *args, **kwargs):
        upload = ImportUploadSerializer(data=request.data)
        refused = refused_uploads(request).get("file")
        if refused is not None:
            raise UploadTooLarge(f"file: {upload_too_large_message(refused)}")
        upload.is_valid(raise_exception=True)
        file, fmt = upload.validated_data["file"], upload.validated_data["format"]
        job = services.import_job_submit(file_name=file.name, fmt=fmt, user=request.user, uploaded_file=file)
        # Without a broker the task has already run; with one, the job is queued.
        job.refresh_from_db()
        return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
