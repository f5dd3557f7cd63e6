"""REST API of saved playlists: CRUD, sharing by link, export as a file.

Who sees what: anyone reads public playlists; a signed-in user also reads
and edits their own; anyone holding a playlist's share link reads it
(`/api/playlists/shared/<share_id>/`), public or not. Only the owner sees
`share_id`, and can replace it (`POST /api/playlists/<id>/share/rotate/`).
A generated playlist saved with its `params` is made again on the current
catalog by its owner (`POST /api/playlists/<id>/regenerate/`).
"""

import uuid

from django.db.models import Count
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotAcceptable, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from songs.api import ApiErrorSerializer

from . import playlists
from .api import model_call
from .models import Playlist

FORMATS_TEXT = ", ".join(playlists.EXPORT_FORMATS)


class PlaylistSongSerializer(serializers.Serializer):
    id = serializers.CharField(source="external_id", help_text="The song's external id.")
    name = serializers.CharField()
    artist = serializers.CharField(source="artist.name")
    duration_ms = serializers.IntegerField()


class PlaylistSerializer(serializers.ModelSerializer):
    """A playlist as lists show it: without its songs. `share_id` only for its owner."""

    owner = serializers.CharField(source="owner.get_username", read_only=True, help_text="The owner's username.")
    song_count = serializers.SerializerMethodField()

    class Meta:
        model = Playlist
        fields = [
            "id",
            "name",
            "description",
            "is_public",
            "source",
            "params",
            "share_id",
            "owner",
            "song_count",
            "created_at",
            "updated_at",
            "regenerated_at",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "params": {"help_text": "What generated the songs (empty for a manual playlist): see POST's params."},
            "regenerated_at": {"help_text": "When the songs were last made again from params (null: never)."},
        }

    def to_representation(self, playlist):
        data = super().to_representation(playlist)
        request = self.context.get("request")
        user = getattr(request, "user", None)
        if not (user is not None and user.is_authenticated and playlist.owner_id == user.pk):
            data.pop("share_id", None)  # the share link is its owner's to give out
        return data

    def get_song_count(self, playlist) -> int:
        annotated = getattr(playlist, "song_count", None)
        return annotated if annotated is not None else playlist.items.count()


class PlaylistDetailSerializer(PlaylistSerializer):
    """A playlist with its songs, in order."""

    duration_ms = serializers.SerializerMethodField(help_text="Total length of the songs in milliseconds.")
    songs = serializers.SerializerMethodField()

    class Meta(PlaylistSerializer.Meta):
        fields = [*PlaylistSerializer.Meta.fields, "duration_ms", "songs"]
        read_only_fields = fields

    def _songs(self, playlist) -> list:
        cache = self.context.setdefault("_songs", {})
        if playlist.pk not in cache:
            cache[playlist.pk] = playlists.playlist_songs(playlist=playlist)
        return cache[playlist.pk]

    def get_song_count(self, playlist) -> int:
        return len(self._songs(playlist))

    def get_duration_ms(self, playlist) -> int:
        return sum(song.duration_ms for song in self._songs(playlist))

    @extend_schema_field(PlaylistSongSerializer(many=True))
    def get_songs(self, playlist):
        return PlaylistSongSerializer(self._songs(playlist), many=True).data


class PlaylistWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=playlists.DESCRIPTION_MAX, allow_blank=True, required=False)
    is_public = serializers.BooleanField(required=False, help_text="Listed for everyone; false by default.")
    source = serializers.ChoiceField(
        choices=Playlist.Source.choices, required=False, help_text="Where the songs came from; 'manual' by default."
    )
    songs = serializers.ListField(
        child=serializers.CharField(max_length=64),
        max_length=playlists.MAX_SONGS,
        required=False,
        help_text=f"External ids of the songs, in order (at most {playlists.MAX_SONGS:,}; repeats allowed). "
        "Replaces the playlist's songs; leave it out to keep them.",
    )
    params = serializers.JSONField(
        required=False,
        help_text="For a generated playlist, the parameters that made it, so that it can be made again "
        "(POST /api/playlists/{id}/regenerate/); the names of the generator's API parameters. "
        "radio: song (id, required), limit, variety, seed, max_per_artist. "
        "recommendations: seed_songs, seed_artists, seed_genres (lists of ids or comma-separated), limit, "
        "min_/max_/target_<attribute>, max_per_artist. path: from, to (ids, required), length. "
        "cluster: cluster (id, required; after a retrain its successor in the active model), limit, "
        "max_per_artist. Every one also takes the filters genres, exclude_genres, exclude_artists, "
        "exclude_songs (lists or comma-separated, at most 100 items each). "
        "An empty object clears them; changing source without params clears them too.",
    )


class ExportQuerySerializer(serializers.Serializer):
    fmt = serializers.ChoiceField(
        choices=playlists.EXPORT_FORMATS,
        error_messages={
            "required": f"Choose the file format with ?fmt= ({FORMATS_TEXT}).",
            "invalid_choice": f'"{{input}}" is not a format; choose one of {FORMATS_TEXT}.',
        },
    )


class IsOwnerOrReadOnly(permissions.BasePermission):
    message = "Only the playlist's owner may change it."

    def has_object_permission(self, request, view, obj):
        return request.method in permissions.SAFE_METHODS or obj.owner_id == request.user.pk


class _ExportNegotiation(DefaultContentNegotiation):
    """Serve the file whatever the client accepts (players send their own types).

    `?format=` (DRF's renderer override) would otherwise end in a 404; the
    export then tells the client to use `?fmt=`.
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except (NotAcceptable, Http404):
            return renderers[0], renderers[0].media_type


FMT_PARAMETER = OpenApiParameter(
    "fmt",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    required=True,
    enum=list(playlists.EXPORT_FORMATS),
    description="File format: m3u (extended M3U, UTF-8), csv, json or xspf (XSPF 1). Named `fmt` because DRF "
    "reserves `format`.",
)
ID_PARAMETER = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The playlist's id.")
SHARE_ID_PARAMETER = OpenApiParameter(
    "share_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The playlist's share id (from its owner)."
)
_FILE = "The playlist as a file download (Content-Disposition: attachment), in the media type of `fmt`."
EXPORT_RESPONSES = {
    (200, "audio/x-mpegurl"): OpenApiResponse(OpenApiTypes.STR, description=_FILE),
    (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description=_FILE),
    (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description=_FILE),
    (200, "application/xspf+xml"): OpenApiResponse(OpenApiTypes.STR, description=_FILE),
    400: OpenApiResponse(ApiErrorSerializer, description="Missing or unknown fmt."),
    404: OpenApiResponse(ApiErrorSerializer, description="No such playlist, or not visible to you."),
}
SHARE_RESPONSE = inline_serializer(
    "PlaylistShareLink",
    fields={
        "share_id": serializers.UUIDField(help_text="The new share id."),
        "share_url": serializers.URLField(help_text="The playlist's page by its new share link."),
    },
)
ERRORS = {
    400: ApiErrorSerializer,
    401: ApiErrorSerializer,
    403: ApiErrorSerializer,
    404: ApiErrorSerializer,
}


@extend_schema_view(
    list=extend_schema(
        summary="Public playlists, and your own when signed in",
        parameters=[
            OpenApiParameter("mine", OpenApiTypes.BOOL, OpenApiParameter.QUERY, description="Only your own playlists."),
        ],
    ),
    retrieve=extend_schema(
        summary="A playlist with its songs (yours, or a public one)",
        parameters=[ID_PARAMETER],
        responses={200: PlaylistDetailSerializer, 404: ApiErrorSerializer},
    ),
    create=extend_schema(
        summary="Save a playlist", request=PlaylistWriteSerializer, responses={201: PlaylistDetailSerializer, **ERRORS}
    ),
    update=extend_schema(
        summary="Replace a playlist's fields (owner only)",
        request=PlaylistWriteSerializer,
        parameters=[ID_PARAMETER],
        responses={200: PlaylistDetailSerializer, **ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change some of a playlist's fields (owner only)",
        request=PlaylistWriteSerializer,
        parameters=[ID_PARAMETER],
        responses={200: PlaylistDetailSerializer, **ERRORS},
    ),
    destroy=extend_schema(
        summary="Delete a playlist (owner only)", parameters=[ID_PARAMETER], responses={204: None, **ERRORS}
    ),
)
class PlaylistViewSet(viewsets.ModelViewSet):
    """Saved playlists: public ones for everyone, your own when signed in."""

    permission_classes = [permissions.IsAuthenticatedOrReadOnly, IsOwnerOrReadOnly]
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        qs = playlists.playlists_visible(user=self.request.user)
        if self.action == "list":
            qs = qs.annotate(song_count=Count("items"))
            mine = self.request.query_params.get("mine", "").lower() in ("1", "true", "yes")
            if mine:
                qs = qs.filter(owner_id=self.request.user.pk) if self.request.user.is_authenticated else qs.none()
        return qs.order_by("-updated_at", "-id")

    def get_serializer_class(self):
        if self.action == "list":
            return PlaylistSerializer
        if self.action in ("create", "update", "partial_update"):
            return PlaylistWriteSerializer
        return PlaylistDetailSerializer

    # --- writes --------------------------------------------------------------

    def _write_data(self, *, partial: bool) -> dict:
        serializer = PlaylistWriteSerializer(data=self.request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @staticmethod
    def _service(fn, **kwargs) -> Playlist:
        try:
            return fn(**kwargs)
        except playlists.PlaylistError as exc:
            raise ValidationError({exc.field: [str(exc)]}) from exc

    def _detail(self, playlist: Playlist, *, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(
            PlaylistDetailSerializer(playlist, context=self.get_serializer_context()).data, status=status_code
        )

    def create(self, request, *args, **kwargs):
        data = self._write_data(partial=False)
        playlist = self._service(
            playlists.playlist_create,
            owner=request.user,
            name=data["name"],
            song_ids=data.get("songs", []),
            description=data.get("description", ""),
            is_public=data.get("is_public", False),
            source=data.get("source", Playlist.Source.MANUAL),
            params=data.get("params"),
        )
        return self._detail(playlist, status_code=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        playlist = self.get_object()  # 404 when hidden from you, 403 when not yours
        data = self._write_data(partial=kwargs.get("partial", False))
        playlist = self._service(
            playlists.playlist_update,
            playlist=playlist,
            name=data.get("name"),
            description=data.get("description"),
            is_public=data.get("is_public"),
            source=data.get("source"),
            song_ids=data.get("songs"),
            params=data.get("params"),
        )
        return self._detail(playlist)

    def destroy(self, request, *args, **kwargs):
        playlists.playlist_delete(playlist=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    # --- sharing and export --------------------------------------------------

    def _export(self, request, playlist: Playlist) -> HttpResponse:
        query = ExportQuerySerializer(data=request.query_params)
        if not query.is_valid():
            if "fmt" not in request.query_params and "format" in request.query_params:
                raise ValidationError({"fmt": [f"Use ?fmt= for the file format ({FORMATS_TEXT}); ?format= is taken."]})
            raise ValidationError(query.errors)
        return playlists.playlist_download(
            request=request,
            title=playlist.name,
            fmt=query.validated_data["fmt"],
            songs=playlists.playlist_songs(playlist=playlist),
        )

    @extend_schema(
        summary="A new share link for a playlist (owner only); the old link stops working",
        request=None,
        parameters=[ID_PARAMETER],
        responses={200: SHARE_RESPONSE, **ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="share/rotate")
    def share_rotate(self, request, pk=None):
        playlist = playlists.playlist_share_rotate(playlist=self.get_object())  # 403 when not yours
        return Response(
            {
                "share_id": str(playlist.share_id),
                "share_url": request.build_absolute_uri(f"/playlists/shared/{playlist.share_id}/"),
            }
        )

    @extend_schema(
        summary="Make a generated playlist again on the current catalog (owner only)",
        description="Runs the playlist's generator (radio, recommendations, path or cluster) again with its saved "
        "params on the current catalog and active model, leaving out your blocklist, and replaces its songs; the "
        "name, description and share link stay. A radio with a seed gives the same songs while the catalog and "
        "the model are the same.",
        request=None,
        parameters=[ID_PARAMETER],
        responses={
            200: PlaylistDetailSerializer,
            **ERRORS,
            503: OpenApiResponse(ApiErrorSerializer, description="No active model, or it cannot be loaded."),
        },
    )
    @action(detail=True, methods=["post"])
    def regenerate(self, request, pk=None):
        playlist = self.get_object()  # 404 when hidden from you, 403 when not yours
        playlist = model_call(self._service, playlists.playlist_regenerate, playlist=playlist)
        return self._detail(playlist)

    @staticmethod
    def _shared(share_id: str) -> Playlist:
        try:
            share = uuid.UUID(share_id)
        except ValueError:
            raise Http404("No playlist has this share id.") from None
        return get_object_or_404(Playlist.objects.select_related("owner"), share_id=share)

    @extend_schema(
        summary="Download a playlist as a file", parameters=[ID_PARAMETER, FMT_PARAMETER], responses=EXPORT_RESPONSES
    )
    @action(detail=True, methods=["get"], content_negotiation_class=_ExportNegotiation)
    def export(self, request, pk=None):
        return self._export(request, self.get_object())

    @extend_schema(
        summary="A playlist by its share link (public or not)",
        parameters=[SHARE_ID_PARAMETER],
        responses={200: PlaylistDetailSerializer, 404: ApiErrorSerializer},
    )
    @action(
        detail=False,
        methods=["get"],
        url_path=r"shared/(?P<share_id>[^/.]+)",
        permission_classes=[permissions.AllowAny],
    )
    def shared(self, request, share_id=None):
        return self._detail(self._shared(share_id))

    @extend_schema(
        summary="Download a playlist by its share link",
        parameters=[SHARE_ID_PARAMETER, FMT_PARAMETER],
        responses=EXPORT_RESPONSES,
    )
    @action(
        detail=False,
        methods=["get"],
        url_path=r"shared/(?P<share_id>[^/.]+)/export",
        permission_classes=[permissions.AllowAny],
        content_negotiation_class=_ExportNegotiation,
    )
    def shared_export(self, request, share_id=None):
        return self._export(request, self._shared(share_id))
