"""REST API of the catalog: songs, searchable and filterable; CSV imports (staff)."""

import django_filters
from django.db.models.expressions import RawSQL
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.exceptions import APIException, NotFound
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from . import services
from .features import FEATURES
from .formats import FORMATS
from .labels import cluster_song_ids_sql, labels_attach
from .models import ImportJob, Song
from .selectors import SONG_FIELDS, search_filter, song_record_of
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


class SongPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class SongViewSet(viewsets.ReadOnlyModelViewSet):
    """Songs of the catalog, addressed by their external id."""

    serializer_class = SongSerializer
    filterset_class = SongFilter
    pagination_class = SongPagination
    lookup_field = "external_id"
    lookup_value_regex = ".+"  # any stored id, "a/b" too (sent as a%2Fb)
    queryset = Song.objects.select_related("artist").order_by("id")

    def paginate_queryset(self, queryset):
        # One query for the labels of the page's songs, not one per song.
        page = super().paginate_queryset(queryset)
        return labels_attach(page) if page is not None else None

    def get_object(self):
        song = self.get_queryset().filter(external_id=self.kwargs["external_id"]).first()
        if song is None:
            # An address like /api/songs/x/y/ lands here too (ids may hold "/").
            raise NotFound(f"No song with id {self.kwargs['external_id']!r}; see /api/docs/.")
        self.check_object_permissions(self.request, song)
        return song


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
