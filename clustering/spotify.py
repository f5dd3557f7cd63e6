"""The Spotify-compatible surface (``/spotify/v1/``): Spotify Web API paths,
parameters and response shapes over the same services and selectors as
``/api/``. Nothing here queries on its own: each view validates its query
(the /api/ serializers where the parameters are the same), calls one
service or selector, and reshapes its records into Spotify's objects.

Ids are the catalog's external ids (a track's id is the source's track id,
a real Spotify id when the catalog came from Spotify); URIs are
``musiccluster:track:ID`` and ``musiccluster:artist:ID``; ``href`` is the
object's address on this surface. Where an id is expected, either URI form
(``musiccluster:track:ID`` or Spotify's ``spotify:track:ID``) is taken as
its ID. Errors are Spotify's
``{"error": {"status", "message"}}`` with /api/'s messages.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from songs.features import FEATURE_NAMES
from songs.selectors import (
    SEARCH_MAX_DEPTH,
    SongRecord,
    artist_records,
    artist_search_slice,
    song_records,
    song_search_slice,
)

from . import similarity
from .api import RecommendationsQuerySerializer, id_list, model_call

TAGS = ["Spotify-compatible"]
# A Spotify id (base62, 22 characters): the track or artist is on Spotify too.
SPOTIFY_ID = re.compile(r"[0-9A-Za-z]{22}")
MAX_TRACK_IDS = 50
MAX_AUDIO_FEATURE_IDS = 100
RELATED_ARTISTS = 20
SEARCH_TYPES = ("track", "artist")
SEARCH_MAX_OFFSET = 1_000
# A URI given where an id is expected: this site's own (`uri` of its objects)
# or Spotify's (what clients hold from Spotify). Clients that pass URIs
# through unchanged get the same answer as with the bare id.
URI = re.compile(r"(?:spotify|musiccluster):(track|artist):(.+)")


# --- errors ------------------------------------------------------------------------


def spotify_exception_handler(exc, context):
    """The API's exception handler (same statuses, messages and headers such
    as Retry-After), its body in Spotify's shape: ``{"error": {"status", "message"}}``."""
    response = api_settings.EXCEPTION_HANDLER(exc, context)
    if response is None or not isinstance(response, Response):
        return response  # Django's debug page, or a 503 already in this surface's shape
    data = response.data
    message = data.get("detail") if isinstance(data, dict) else None
    response.data = {"error": {"status": response.status_code, "message": str(message or response.status_text)}}
    return response


class SpotifyErrorBodySerializer(serializers.Serializer):
    status = serializers.IntegerField(help_text="The HTTP status code.")
    message = serializers.CharField(help_text="What went wrong, as /api/ says it ('limit: Ensure this value …').")


class SpotifyErrorSerializer(serializers.Serializer):
    """The body of every error of this surface."""

    error = SpotifyErrorBodySerializer()


def bare_id(value: str, kind: str, name: str) -> str:
    """The id in ``value``: itself, or the ID of a ``spotify:KIND:ID`` or
    ``musiccluster:KIND:ID`` URI (a URI of another kind is refused, naming ``name``)."""
    match = URI.fullmatch(value)
    if match is None:
        return value
    if match[1] != kind:
        article = "an" if match[1] == "artist" else "a"
        raise ValidationError({name: f"{value!r} is {article} {match[1]} URI; {name} takes {kind}s."})
    return match[2]


def _errors(*codes: int) -> dict:
    return {code: OpenApiResponse(SpotifyErrorSerializer) for code in codes}


def _nullable_list(key: str, component: str) -> dict:
    """``{key: [object or null, ...]}`` (a list response with nulls in place of unknown ids)."""
    item = {"allOf": [{"$ref": f"#/components/schemas/{component}"}], "nullable": True}
    return {"type": "object", "properties": {key: {"type": "array", "items": item}}, "required": [key]}


class SpotifyView(APIView):
    """Reads open like /api/'s (anonymous ones throttled per IP); errors in Spotify's shape."""

    permission_classes = [permissions.AllowAny]

    def get_exception_handler(self):
        return spotify_exception_handler


# --- objects -----------------------------------------------------------------------


class Links:
    """Addresses of objects on this surface, absolute (as Spotify's href)."""

    def __init__(self, request):
        self.base = request.build_absolute_uri(reverse("spotify-tracks")).removesuffix("tracks")

    def href(self, collection: str, external_id: str) -> str:
        return f"{self.base}{collection}/{quote(external_id, safe='')}"


def _external_urls(kind: str, external_id: str) -> dict:
    return {"spotify": f"https://open.spotify.com/{kind}/{external_id}"} if SPOTIFY_ID.fullmatch(external_id) else {}


def artist_ref(external_id: str, name: str, links: Links) -> dict:
    """Spotify's simplified artist object."""
    return {
        "external_urls": _external_urls("artist", external_id),
        "href": links.href("artists", external_id),
        "id": external_id,
        "name": name,
        "type": "artist",
        "uri": f"musiccluster:artist:{external_id}",
    }


def artist_object(artist: dict, links: Links) -> dict:
    """Spotify's artist object from :func:`songs.selectors.artist_records`'s artist."""
    return {
        **artist_ref(artist["id"], artist["name"], links),
        "followers": {"href": None, "total": artist["followers"] or 0},
        "genres": artist["genres"],
        "images": [],
        "popularity": artist["popularity"] or 0,
    }


def _release(song: SongRecord) -> tuple[str | None, str | None]:
    if song["release_date"]:
        return song["release_date"], "day"
    if song["release_year"]:
        return str(song["release_year"]), "year"
    return None, None


def track_object(song: SongRecord, links: Links) -> dict:
    """Spotify's track object from a :class:`SongRecord` (the catalog has no
    album ids, images, ISRCs or previews: those are empty or null)."""
    external_id = song["id"]
    artists = [artist_ref(song["artist_id"], song["artist"], links)]
    release_date, precision = _release(song)
    return {
        "album": {
            "album_type": "album",
            "artists": artists,
            "external_urls": {},
            "href": None,
            "id": None,
            "images": [],
            "name": song["album"] or "",
            "release_date": release_date,
            "release_date_precision": precision,
            "type": "album",
            "uri": None,
        },
        "artists": artists,
        "duration_ms": int(song["duration_ms"]),
        "explicit": bool(song["explicit"]),
        "external_ids": {},
        "external_urls": _external_urls("track", external_id),
        "href": links.href("tracks", external_id),
        "id": external_id,
        "is_local": False,
        "is_playable": True,
        "name": song["name"],
        "popularity": song["popularity"] or 0,
        "preview_url": None,
        "type": "track",
        "uri": f"musiccluster:track:{external_id}",
    }


def audio_features_object(song: SongRecord, links: Links) -> dict:
    """Spotify's audio-features object (key -1 when the catalog has none, as Spotify's)."""
    external_id = song["id"]
    features: dict[str, Any] = {name: song[name] for name in FEATURE_NAMES}
    features["duration_ms"] = int(song["duration_ms"])
    return {
        **features,
        "analysis_url": None,
        "id": external_id,
        "key": -1 if song["key"] is None else song["key"],
        "mode": song["mode"],
        "time_signature": song["time_signature"],
        "track_href": links.href("tracks", external_id),
        "type": "audio_features",
        "uri": f"musiccluster:track:{external_id}",
    }


# The shapes, for the schema (the objects above are built as plain dicts).
class ArtistRefSerializer(serializers.Serializer):
    external_urls = serializers.DictField(child=serializers.CharField())
    href = serializers.URLField()
    id = serializers.CharField(help_text="The artist's external id.")
    name = serializers.CharField()
    type = serializers.CharField(help_text='"artist"')
    uri = serializers.CharField(help_text="musiccluster:artist:ID")


class ArtistObjectSerializer(ArtistRefSerializer):
    followers = serializers.DictField(help_text="{href: null, total}")
    genres = serializers.ListField(child=serializers.CharField())
    images = serializers.ListField(child=serializers.DictField(), help_text="Always empty.")
    popularity = serializers.IntegerField(help_text="0-100; 0 when the catalog has none.")


class AlbumSerializer(serializers.Serializer):
    album_type = serializers.CharField()
    artists = ArtistRefSerializer(many=True)
    external_urls = serializers.DictField(child=serializers.CharField())
    href = serializers.CharField(allow_null=True)
    id = serializers.CharField(allow_null=True, help_text="Null: the catalog has no album ids.")
    images = serializers.ListField(child=serializers.DictField())
    name = serializers.CharField(help_text="The album's title; empty when the catalog has none.")
    release_date = serializers.CharField(allow_null=True)
    release_date_precision = serializers.CharField(allow_null=True, help_text="year or day; null with no date.")
    type = serializers.CharField(help_text='"album"')
    uri = serializers.CharField(allow_null=True)


class TrackObjectSerializer(serializers.Serializer):
    album = AlbumSerializer()
    artists = ArtistRefSerializer(many=True)
    duration_ms = serializers.IntegerField()
    explicit = serializers.BooleanField(help_text="False when the catalog does not say.")
    external_ids = serializers.DictField(child=serializers.CharField())
    external_urls = serializers.DictField(
        child=serializers.CharField(), help_text="{spotify: URL} when the id is a Spotify id."
    )
    href = serializers.URLField()
    id = serializers.CharField(help_text="The track's external id (the source's track id).")
    is_local = serializers.BooleanField()
    is_playable = serializers.BooleanField()
    name = serializers.CharField()
    popularity = serializers.IntegerField(help_text="0-100; 0 when the catalog has none.")
    preview_url = serializers.CharField(allow_null=True)
    type = serializers.CharField(help_text='"track"')
    uri = serializers.CharField(help_text="musiccluster:track:ID")


class AudioFeaturesSerializer(serializers.Serializer):
    def get_fields(self):
        fields = {name: serializers.FloatField() for name in FEATURE_NAMES}
        fields.update(
            duration_ms=serializers.IntegerField(),
            analysis_url=serializers.CharField(allow_null=True),
            id=serializers.CharField(),
            key=serializers.IntegerField(help_text="Pitch class 0-11; -1 when unknown."),
            mode=serializers.IntegerField(allow_null=True),
            time_signature=serializers.IntegerField(allow_null=True),
            track_href=serializers.URLField(),
            type=serializers.CharField(help_text='"audio_features"'),
            uri=serializers.CharField(),
        )
        return fields


# --- recommendations ----------------------------------------------------------------


class SpotifyRecommendationsQuerySerializer(RecommendationsQuerySerializer):
    """/api/recommendations/'s parameters under Spotify's names."""

    SONG_SEEDS = "seed_tracks"
    market = serializers.CharField(required=False, help_text="Accepted and ignored (the catalog has no markets).")

    def get_fields(self):
        fields = super().get_fields()
        fields["seed_tracks"].help_text = "Comma-separated track ids (external ids, or URIs of either form)."
        fields["seed_artists"].help_text = "Comma-separated artist ids (or URIs, or exact names)."
        return fields

    def validate(self, data):
        data = super().validate(data)
        for name, kind in (("seed_tracks", "track"), ("seed_artists", "artist")):
            data[name] = [bare_id(value, kind, name) for value in data[name]]
        return data


class SeedSerializer(serializers.Serializer):
    afterFilteringSize = serializers.IntegerField()
    afterRelinkingSize = serializers.IntegerField()
    href = serializers.URLField(allow_null=True)
    id = serializers.CharField()
    initialPoolSize = serializers.IntegerField()
    type = serializers.CharField(help_text="TRACK, ARTIST or GENRE.")


class RecommendationsSerializer(serializers.Serializer):
    seeds = SeedSerializer(many=True)
    tracks = TrackObjectSerializer(many=True)


_SEED_TYPES = {"SONG": ("TRACK", "tracks"), "ARTIST": ("ARTIST", "artists"), "GENRE": ("GENRE", None)}


def _seed_object(seed: dict, links: Links) -> dict:
    kind, collection = _SEED_TYPES[seed["type"]]
    return {
        "afterFilteringSize": seed["afterFilteringSize"],
        "afterRelinkingSize": seed["afterFilteringSize"],
        "href": links.href(collection, seed["id"]) if collection else None,
        "id": seed["id"],
        "initialPoolSize": seed["initialPoolSize"],
        "type": kind,
    }


class RecommendationsView(SpotifyView):
    """Spotify's GET /recommendations, answered by /api/recommendations/'s service."""

    throttle_scope = "recommendations"  # the same rate as /api/recommendations/

    @extend_schema(
        tags=TAGS,
        parameters=[SpotifyRecommendationsQuerySerializer],
        responses={200: RecommendationsSerializer, **_errors(400, 429, 503)},
    )
    def get(self, request):
        query = SpotifyRecommendationsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        result = query.recommendations()
        links = Links(request)
        return Response(
            {
                "seeds": [_seed_object(seed, links) for seed in result["seeds"]],
                "tracks": [track_object(song, links) for song in result["tracks"]],
            }
        )


class GenreSeedsView(SpotifyView):
    """Spotify's GET /recommendations/available-genre-seeds: the genres usable as seed_genres."""

    @extend_schema(
        tags=TAGS,
        responses={
            200: inline_serializer(
                "SpotifyGenreSeeds", {"genres": serializers.ListField(child=serializers.CharField())}
            ),
            **_errors(503),
        },
    )
    def get(self, request):
        return Response({"genres": list(model_call(similarity.genre_seeds))})


# --- tracks and audio features ------------------------------------------------------


class IdsQuerySerializer(serializers.Serializer):
    MAX = MAX_TRACK_IDS
    ids = serializers.CharField(
        help_text="Comma-separated track ids (external ids, or musiccluster:track: / spotify:track: URIs)."
    )
    market = serializers.CharField(required=False, help_text="Accepted and ignored.")

    def validate(self, data):
        ids = [bare_id(value, "track", "ids") for value in id_list(data["ids"], "ids")]
        if len(ids) > self.MAX:
            raise ValidationError({"ids": f"At most {self.MAX} ids; got {len(ids)}."})
        return {**data, "ids": ids}


class AudioFeatureIdsQuerySerializer(IdsQuerySerializer):
    MAX = MAX_AUDIO_FEATURE_IDS


def _songs_in_order(ids: list[str]) -> list[SongRecord | None]:
    found = song_records(external_ids=ids)
    return [found.get(external_id) for external_id in ids]


def _track_or_404(external_id: str) -> SongRecord:
    song = song_records(external_ids=[external_id]).get(external_id)
    if song is None:
        raise NotFound(f"No track with id {external_id!r}.")
    return song


class TrackView(SpotifyView):
    """Spotify's GET /tracks/{id}."""

    @extend_schema(
        tags=TAGS,
        operation_id="spotify_v1_track",
        parameters=[OpenApiParameter("market", str, description="Accepted and ignored.")],
        responses={200: TrackObjectSerializer, **_errors(400, 404)},
    )
    def get(self, request, external_id: str):
        return Response(track_object(_track_or_404(bare_id(external_id, "track", "id")), Links(request)))


class TracksView(SpotifyView):
    """Spotify's GET /tracks?ids= (up to 50): unknown ids are null in place."""

    @extend_schema(
        tags=TAGS,
        parameters=[IdsQuerySerializer],
        responses={
            200: _nullable_list("tracks", "TrackObject"),
            **_errors(400),
        },
    )
    def get(self, request):
        query = IdsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        links = Links(request)
        songs = _songs_in_order(query.validated_data["ids"])
        return Response({"tracks": [None if song is None else track_object(song, links) for song in songs]})


class AudioFeaturesView(SpotifyView):
    """Spotify's GET /audio-features/{id}."""

    @extend_schema(
        tags=TAGS,
        operation_id="spotify_v1_audio_features_one",
        responses={200: AudioFeaturesSerializer, **_errors(400, 404)},
    )
    def get(self, request, external_id: str):
        return Response(audio_features_object(_track_or_404(bare_id(external_id, "track", "id")), Links(request)))


class AudioFeaturesListView(SpotifyView):
    """Spotify's GET /audio-features?ids= (up to 100): unknown ids are null in place."""

    @extend_schema(
        tags=TAGS,
        parameters=[AudioFeatureIdsQuerySerializer],
        responses={
            200: _nullable_list("audio_features", "AudioFeatures"),
            **_errors(400),
        },
    )
    def get(self, request):
        query = AudioFeatureIdsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        links = Links(request)
        songs = _songs_in_order(query.validated_data["ids"])
        return Response(
            {"audio_features": [None if song is None else audio_features_object(song, links) for song in songs]}
        )


# --- artists -----------------------------------------------------------------------


class ArtistView(SpotifyView):
    """Spotify's GET /artists/{id}."""

    @extend_schema(tags=TAGS, responses={200: ArtistObjectSerializer, **_errors(400, 404)})
    def get(self, request, external_id: str):
        external_id = bare_id(external_id, "artist", "id")
        artist = artist_records(external_ids=[external_id]).get(external_id)
        if artist is None:
            raise NotFound(f"No artist with id {external_id!r}.")
        return Response(artist_object(artist, Links(request)))


class RelatedArtistsView(SpotifyView):
    """Spotify's GET /artists/{id}/related-artists: the 20 artists nearest by
    the mean vector of their songs in the active model's similarity index."""

    @extend_schema(
        tags=TAGS,
        responses={
            200: inline_serializer("SpotifyRelatedArtists", {"artists": ArtistObjectSerializer(many=True)}),
            **_errors(400, 404, 503),
        },
    )
    def get(self, request, external_id: str):
        external_id = bare_id(external_id, "artist", "id")
        result = model_call(similarity.artists_related, external_id=external_id, limit=RELATED_ARTISTS)
        if result is None:
            raise NotFound(f"No artist with id {external_id!r}.")
        links = Links(request)
        return Response({"artists": [artist_object(artist, links) for artist in result["related"]]})


# --- search ------------------------------------------------------------------------


class SearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(help_text="Text in the title or the artist's name (a substring, any case).")
    type = serializers.CharField(help_text="Comma-separated: track, artist.")
    limit = serializers.IntegerField(default=20, min_value=0, max_value=50, help_text="Items per type (0-50).")
    offset = serializers.IntegerField(
        default=0, min_value=0, max_value=SEARCH_MAX_OFFSET, help_text=f"First item (0-{SEARCH_MAX_OFFSET:,})."
    )
    market = serializers.CharField(required=False, help_text="Accepted and ignored.")
    include_external = serializers.CharField(required=False, help_text="Accepted and ignored.")

    def validate_type(self, value):
        kinds = [kind.strip() for kind in value.split(",")]
        unknown = [kind for kind in kinds if kind not in SEARCH_TYPES]
        if unknown:
            raise ValidationError(
                f"{', '.join(map(repr, unknown))} cannot be searched here; type is a list of {' and '.join(SEARCH_TYPES)}."
            )
        return list(dict.fromkeys(kinds))


class PagingSerializer(serializers.Serializer):
    href = serializers.URLField()
    limit = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    offset = serializers.IntegerField()
    previous = serializers.URLField(allow_null=True)
    total = serializers.IntegerField(help_text=f"Matches, counted up to {SEARCH_MAX_DEPTH:,}.")


class TrackPagingSerializer(PagingSerializer):
    items = TrackObjectSerializer(many=True)


class ArtistPagingSerializer(PagingSerializer):
    items = ArtistObjectSerializer(many=True)


class SearchResponseSerializer(serializers.Serializer):
    tracks = TrackPagingSerializer(required=False)
    artists = ArtistPagingSerializer(required=False)


_SEARCHES = {"track": (song_search_slice, track_object), "artist": (artist_search_slice, artist_object)}


class SearchView(SpotifyView):
    """Spotify's GET /search for tracks and artists: the catalog's search
    (title or artist name contains q), a paging object per type."""

    @extend_schema(
        tags=TAGS, parameters=[SearchQuerySerializer], responses={200: SearchResponseSerializer, **_errors(400)}
    )
    def get(self, request):
        query = SearchQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        q, limit, offset = data["q"], data["limit"], data["offset"]
        links = Links(request)
        body = {}
        for kind in data["type"]:
            search, shape = _SEARCHES[kind]
            items, total = search(search=q, offset=offset, limit=limit)

            def page(at: int, kind: str = kind) -> str:
                return f"{links.base}search?{urlencode({'q': q, 'type': kind, 'offset': at, 'limit': limit})}"

            after = offset + limit
            body[f"{kind}s"] = {
                "href": page(offset),
                "items": [shape(item, links) for item in items],
                "limit": limit,
                "next": page(after) if limit and after < total and after <= SEARCH_MAX_OFFSET else None,
                "offset": offset,
                "previous": page(max(0, offset - limit)) if offset > 0 else None,
                "total": total,
            }
        return Response(body)
