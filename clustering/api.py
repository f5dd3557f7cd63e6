"""REST API of the clustering engine: clusters, training runs, prediction,
similar songs, recommendations, song paths and generated playlists."""

import secrets

import numpy as np
from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound, Throttled, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from songs.api import ApiErrorSerializer, SongCursorPagination, SongSerializer, songs_page_response
from songs.features import ATTRIBUTES, FEATURES
from songs.selectors import SongRecord, song_record_get, songs_for_export

from . import selectors, services, similarity
from .errors import ArtifactError, BlocklistError, SimilarityError, TrainingError
from .limits import expensive_slot
from .ml.spec import spec_params
from .ml.variety import SEED_MAX
from .models import Cluster, TrainingRun
from .playlists import FILE_FORMATS, playlist_download

# A generated playlist as the API's JSON, or as one of the playlist files.
EXPORT_FORMATS = ("json", *[fmt for fmt in FILE_FORMATS if fmt != "json"])


class ModelUnavailable(APIException):
    status_code = 503
    default_detail = "The active model is not available."
    default_code = "model_unavailable"


def id_list(value: str, name: str, *, what: str = "ids") -> list[str]:
    items = [item.strip() for item in value.split(",")] if value else []
    if any(not item for item in items):
        raise ValidationError({name: f"{name} has an empty item; give comma-separated {what}."})
    return items


MAX_FILTER_ITEMS = 100
_FILTER_HELP = {
    "genres": "Only songs carrying at least one of these genres (comma-separated, "
    "see /api/recommendations/genres/); an unknown genre is an error.",
    "exclude_genres": "Leave out songs carrying any of these genres (comma-separated).",
    "exclude_artists": "Leave out songs of these artists (comma-separated artist ids or exact names).",
    "exclude_songs": "Leave out these songs and their other versions (comma-separated song ids).",
}


class DiscoveryFiltersMixin(serializers.Serializer):
    """genres / exclude_genres / exclude_artists / exclude_songs: filters applied
    before the top-k cut, so a filtered list is as long as an unfiltered one
    when the catalog has the songs. Excluding something unknown excludes nothing."""

    def get_fields(self):
        fields = super().get_fields()
        # With request data, only the filters it holds (validate() reads an
        # absent one as empty); without, all of them (the schema).
        given = getattr(self, "initial_data", None)
        for name, text in _FILTER_HELP.items():
            if given is not None and name not in given:
                continue
            fields[name] = serializers.CharField(
                required=False, default="", allow_blank=True, help_text=f"{text} At most {MAX_FILTER_ITEMS} items."
            )
        return fields

    def validate(self, data):
        data = super().validate(data)
        for name in _FILTER_HELP:
            data[name] = id_list(data.get(name, ""), name, what="names" if name.endswith("genres") else "ids")
            if len(data[name]) > MAX_FILTER_ITEMS:
                raise ValidationError({name: f"At most {MAX_FILTER_ITEMS} items in {name}; got {len(data[name])}."})
        return data

    def filters(self, request=None) -> dict[str, list[str]]:
        """The filters as keyword arguments of the discovery services; with a
        ``request``, the signed-in user's blocklist joins the exclude_* ones
        (:func:`excludes_for`)."""
        given = {name: self.validated_data[name] for name in _FILTER_HELP}
        if request is None:
            return given
        excludes = excludes_for(request, **{name: given[name] for name in given if name.startswith("exclude_")})
        return {**given, **{name: sorted(values) for name, values in excludes.items()}}


class GeneratedPlaylistQuerySerializer(DiscoveryFiltersMixin):
    limit = serializers.IntegerField(
        default=50, min_value=1, max_value=500, help_text="Songs (1-500; default 50, radio 25)."
    )
    max_per_artist = serializers.IntegerField(
        default=2,
        min_value=1,
        max_value=100,
        help_text="At most this many songs per artist (default 2; radio 1, the seed counting for its artist).",
    )
    fmt = serializers.ChoiceField(
        choices=EXPORT_FORMATS, default="json", help_text="json (API response), or a file: m3u, csv, xspf."
    )


def model_call(fn, *args, **kwargs):
    """Run a service; a missing model or a broken artifact becomes a 503 with
    the reason, a request the index cannot answer a 400."""
    try:
        return fn(*args, **kwargs)
    except TrainingError as exc:
        raise ModelUnavailable(str(exc)) from None
    except ArtifactError as exc:
        raise ModelUnavailable(f"The active model cannot be loaded: {exc}") from None
    except SimilarityError as exc:
        raise ValidationError({"detail": str(exc)}) from None


def excludes_for(request, **given) -> dict[str, set[str]]:
    """The discovery services' exclude_artists / exclude_songs / exclude_genres:
    those ``given`` (per request) joined with the signed-in user's blocklist,
    so what a listener blocked stays out of everything they are shown (one
    set of parameters: the services resolve both with
    :func:`clustering.similarity.filters_resolve`)."""
    out = selectors.blocklist_excludes(user=getattr(request, "user", None))
    for name, values in given.items():
        out[name] = out.get(name, set()) | set(values or ())
    return out


MAX_PREDICT = 10_000


class ClusterSerializer(serializers.ModelSerializer):
    run = serializers.IntegerField(source="run_id", read_only=True)

    class Meta:
        model = Cluster
        fields = ["id", "run", "label", "name", "description", "size", "profile", "lineage"]


class RunClusterSerializer(serializers.ModelSerializer):
    class Meta:
        model = Cluster
        fields = ["id", "label", "name", "size", "description"]


class TrainingRunSerializer(serializers.ModelSerializer):
    """A run as the API and `manage.py train --wait` show it."""

    clusters = RunClusterSerializer(many=True, read_only=True)

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "status",
            "stage",
            "progress",
            "is_active",
            "algorithm",
            "scaler",
            "features",
            "params",
            "n_songs",
            "n_clusters",
            "metrics",
            "k_scan",
            "timings",
            "sklearn_version",
            "artifact_sha256",
            "index_sha256",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "clusters",
        ]
        read_only_fields = fields


def _spec_field(default, meta: dict) -> serializers.Field:
    """The API field of a training parameter (clustering.ml.spec); the spec validates the values."""
    kind, text = meta["kind"], meta["help"]
    if kind == "choice":
        return serializers.ChoiceField(choices=meta["choices"], default=default, help_text=text)
    if kind == "k":
        return serializers.CharField(default=str(default), help_text=text)
    if kind == "int":
        return serializers.IntegerField(default=default, help_text=text)
    if kind == "bool":
        return serializers.BooleanField(default=default, help_text=text)
    if kind == "features":
        return serializers.ListField(
            child=serializers.ChoiceField(choices=meta["choices"]), required=False, help_text=text
        )
    if kind == "k_range":
        return serializers.ListField(
            child=serializers.IntegerField(), min_length=2, max_length=2, required=False, help_text=text
        )
    return serializers.DictField(required=False, help_text=text)


# One field per parameter of clustering.ml.spec.TrainingSpec.
class TrainingRunCreateSerializer(serializers.Serializer):
    """The parameters of a new training run; each is optional and has a default."""

    def get_fields(self):
        return {name: _spec_field(default, meta) for name, default, meta in spec_params()}


class ClusterViewSet(viewsets.ReadOnlyModelViewSet):
    """Clusters of the active run (`?run=` for another run)."""

    serializer_class = ClusterSerializer

    def get_queryset(self):
        qs = Cluster.objects.order_by("run_id", "label")
        run = self.request.query_params.get("run")
        if run is not None:
            if not (run.isascii() and run.isdigit() and 0 < int(run) < 2**63):
                raise ValidationError({"run": "run must be the id of a training run (a positive whole number)."})
            return qs.filter(run_id=int(run))
        return qs.filter(run__is_active=True) if self.action == "list" else qs

    @extend_schema(responses=SongSerializer(many=True))
    @action(detail=True, pagination_class=SongCursorPagination)
    def songs(self, request, pk=None):
        """The cluster's songs in catalog order, a cursor page at a time (as `/api/songs/`)."""
        cluster = self.get_object()
        return songs_page_response(self, selectors.cluster_songs(cluster))

    @extend_schema(
        parameters=[GeneratedPlaylistQuerySerializer],
        responses={
            200: inline_serializer(
                "ClusterPlaylist", {"title": serializers.CharField(), "songs": SongSerializer(many=True)}
            )
        },
    )
    @action(detail=True)
    def playlist(self, request, pk=None):
        """Representative songs of the cluster (nearest its centre), as JSON or a playlist file; a signed-in
        user's blocked artists, songs and genres are left out."""
        cluster = self.get_object()
        query = GeneratedPlaylistQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        songs = model_call(
            similarity.cluster_playlist,
            cluster=cluster,
            limit=data["limit"],
            max_per_artist=data["max_per_artist"],
            **query.filters(request),
        )
        title = f"{cluster.name} (run #{cluster.run_id})"
        if data["fmt"] != "json":
            return _playlist_response(request, title=title, songs=songs, fmt=data["fmt"])
        return Response({"title": title, "songs": songs})


class IsStaffOrReadOnly(permissions.BasePermission):
    def has_permission(self, request, view):
        return request.method in permissions.SAFE_METHODS or bool(request.user and request.user.is_staff)


class TrainingRunViewSet(viewsets.ModelViewSet):
    """Training runs; POST queues one (staff only)."""

    queryset = TrainingRun.objects.order_by("-created_at").prefetch_related("clusters")
    serializer_class = TrainingRunSerializer
    permission_classes = [IsStaffOrReadOnly]
    http_method_names = ["get", "post", "head", "options"]

    @extend_schema(request=TrainingRunCreateSerializer, responses={202: TrainingRunSerializer})
    def create(self, request, *args, **kwargs):
        params = TrainingRunCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        try:
            run = services.training_run_create(user=request.user, **data)
        except TrainingError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class FeatureVectorSerializer(serializers.Serializer):
    """The ten features, in their documented units and ranges."""

    def get_fields(self):
        return {
            f.name: serializers.FloatField(
                min_value=f.low, max_value=f.high, help_text=f"{f.help} Range {f.low:g} to {f.high:g} {f.unit}".strip()
            )
            for f in FEATURES
        }


MAX_NEAREST_VECTORS = 1_000
_NUMBER_TYPES = (int, float)


def feature_matrix(payload) -> tuple[np.ndarray, bool]:
    """(X, many) from one feature object or a list of them, validated in bulk
    (DRF's per-field validation takes ~1 s for 10,000 vectors); errors name
    the item and the field, e.g. ``[12].energy``."""
    many = isinstance(payload, list)
    if many and not payload:
        raise ValidationError({"detail": "Send one feature object or a non-empty list of them."})
    if many and len(payload) > MAX_PREDICT:
        raise ValidationError({"detail": f"At most {MAX_PREDICT:,} vectors per request ({len(payload):,} sent)."})
    if not many and not isinstance(payload, dict):
        raise ValidationError({"detail": "Send a JSON object of features or a list of them."})
    items = payload if many else [payload]
    names = [f.name for f in FEATURES]
    errors: dict[str, list[str]] = {}

    def where(i: int, name: str | None = None) -> str:
        prefix = f"[{i}]" if many else ""
        return f"{prefix}.{name}" if name and prefix else (name or prefix or "detail")

    rows = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors[where(i)] = [f"Expected a JSON object of features, got {type(item).__name__}."]
        else:
            row = []
            for name in names:
                value = item.get(name)
                if value is None:
                    errors[where(i, name)] = ["This field is required."]
                elif type(value) not in _NUMBER_TYPES:  # bool is an int subclass: refused too
                    errors[where(i, name)] = [f"A number is required, got {type(value).__name__}."]
                row.append(value if type(value) in _NUMBER_TYPES else 0.0)
            rows.append(row)
        if len(errors) >= 10:
            break
    if errors:
        raise ValidationError(errors)
    try:
        X = np.array(rows, dtype=np.float64)
    except OverflowError:  # an integer literal beyond any float
        raise ValidationError({"detail": "A feature value is too large to be a number."}) from None
    for j, f in enumerate(FEATURES):
        col = X[:, j]
        bad = ~np.isfinite(col) | (col > f.high) | ((col < f.low) if f.low_inclusive else (col <= f.low))
        for i in np.flatnonzero(bad)[:10].tolist():
            bound = "greater than or equal to" if f.low_inclusive else "greater than"
            errors[where(i, f.name)] = [
                f"Ensure this value is {bound} {f.low:g} and less than or equal to {f.high:g} {f.unit}".strip() + "."
            ]
    if errors:
        raise ValidationError(errors)
    return X, many


class PredictView(APIView):
    """Cluster, distances to every centroid (or probabilities), map position
    and optionally the nearest songs of one feature object or a list of up to
    10,000."""

    permission_classes = [permissions.AllowAny]  # a POST that reads: open like the other reads

    @property
    def throttle_scope(self):
        """Nearest songs are the expensive part: only such requests count
        against the `predict_nearest` rate (ScopedRateThrottle)."""
        nearest = self.request.query_params.get("nearest", "0")
        return "predict_nearest" if nearest not in ("", "0") else None

    @extend_schema(
        request=FeatureVectorSerializer(many=True),
        parameters=[
            OpenApiParameter(
                "nearest",
                int,
                description=f"Also return this many nearest songs per vector (0-20; "
                f"at most {MAX_NEAREST_VECTORS:,} vectors). Such requests run a few at a time on each "
                "server (`API_EXPENSIVE_CONCURRENCY`); one that finds them all busy is refused at once "
                "(429, `Retry-After`).",
            )
        ],
        responses={200: dict},
    )
    def post(self, request):
        nearest = request.query_params.get("nearest", "0")
        if not (nearest.isascii() and nearest.isdigit()) or not 0 <= int(nearest) <= 20:
            raise ValidationError({"nearest": "nearest must be a whole number from 0 to 20."})
        nearest = int(nearest)
        if not nearest:
            return self._predict(request, nearest)
        with expensive_slot("predict-nearest") as got:
            if not got:
                raise Throttled(
                    wait=1,
                    detail="Too many nearest-song predictions are running on this server; try again in a second.",
                )
            return self._predict(request, nearest)

    def _predict(self, request, nearest: int) -> Response:
        X, many = feature_matrix(request.data)
        if nearest and len(X) > MAX_NEAREST_VECTORS:
            raise ValidationError(
                {"nearest": f"nearest works on at most {MAX_NEAREST_VECTORS:,} vectors ({len(X):,} sent)."}
            )
        lookups, cap = len(X) * nearest, settings.PREDICT_MAX_NEIGHBOUR_LOOKUPS
        if lookups > cap:
            raise ValidationError(
                {
                    "nearest": f"{len(X):,} vectors × nearest={nearest} is {lookups:,} neighbour lookups; "
                    f"at most {cap:,} per request: send fewer vectors or ask for fewer neighbours."
                }
            )
        results = model_call(services.cluster_predict, X=X)
        if nearest:
            neighbours = model_call(similarity.songs_nearest_features, X=X, k=nearest)
            for item, songs in zip(results, neighbours):
                item["nearest"] = [
                    {
                        "id": song["id"],
                        "name": song["name"],
                        "artist": song["artist"],
                        "distance": dist,
                        "similarity": sim,
                    }
                    for song, dist, sim in songs
                ]
        return Response({"results": results} if many else results[0])


# --- similar songs, recommendations, paths, generated playlists ------------------


def _number(value: float) -> int | float:
    """1.0 as 1 (the schema states whole bounds as integers)."""
    return int(value) if float(value).is_integer() else value


def _attribute_help(name: str, kind: str) -> str:
    low, high = ATTRIBUTES[name].low, ATTRIBUTES[name].high
    what = {"min": "Hard floor", "max": "Hard ceiling", "target": "Preferred value"}[kind]
    return f"{what} for {name} ({low:g} to {high:g})."


class _BoundsMixin(serializers.Serializer):
    """min_<attribute> / max_<attribute> (and target_ when TARGETS) query parameters."""

    TARGETS = False

    def get_fields(self):
        fields = super().get_fields()
        kinds = ("min", "max", "target") if self.TARGETS else ("min", "max")
        # With request data, only the parameters it holds (42 field objects
        # per request are measurable on the similar-songs path); without,
        # all of them (the schema).
        given = getattr(self, "initial_data", None)
        for name, attribute in ATTRIBUTES.items():
            low, high = _number(attribute.low), _number(attribute.high)
            for kind in kinds:
                if given is not None and f"{kind}_{name}" not in given:
                    continue
                fields[f"{kind}_{name}"] = serializers.FloatField(
                    required=False, min_value=low, max_value=high, help_text=_attribute_help(name, kind)
                )
        return fields

    def validate(self, data):
        problems = {}
        for name in ATTRIBUTES:
            low, high = data.get(f"min_{name}"), data.get(f"max_{name}")
            if low is not None and high is not None and low > high:
                problems[f"min_{name}"] = f"min_{name} ({low:g}) is greater than max_{name} ({high:g})."
        if problems:
            raise ValidationError(problems)
        return data

    def bounds(self) -> dict:
        data = self.validated_data
        return {
            name: (data.get(f"min_{name}"), data.get(f"max_{name}"))
            for name in ATTRIBUTES
            if data.get(f"min_{name}") is not None or data.get(f"max_{name}") is not None
        }

    def targets(self) -> dict:
        data = self.validated_data
        return {name: data[f"target_{name}"] for name in ATTRIBUTES if f"target_{name}" in data}


class SimilarQuerySerializer(DiscoveryFiltersMixin, _BoundsMixin):
    limit = serializers.IntegerField(default=10, min_value=1, max_value=100, help_text="Songs to return (1-100).")
    same_cluster = serializers.BooleanField(default=False, help_text="Only songs of the seed's cluster.")
    max_per_artist = serializers.IntegerField(
        default=similarity.SIMILAR_MAX_PER_ARTIST,
        min_value=1,
        max_value=100,
        help_text=f"At most this many songs of one artist, the seed's included (default "
        f"{similarity.SIMILAR_MAX_PER_ARTIST}; 100 for no cap). Versions of one recording (live, "
        "remastered, radio edit, feat. …) count as one song and only the nearest is shown.",
    )
    exclude_artist = serializers.BooleanField(default=False, help_text="Leave out the seed's artist.")


class ExplanationSerializer(serializers.Serializer):
    """Why a result is near the seed, in a listener's words."""

    shared = serializers.ListField(
        child=serializers.CharField(),
        help_text="Levels both songs reach, in the words of Spotify's documented scales: acoustic "
        "(acousticness ≥ 0.6), electric (< 0.05), energetic (energy ≥ 0.7), calm (< 0.4), loud "
        "(≥ −6 dB), quiet (< −12 dB), fast (≥ 130 BPM), slow (< 90 BPM), danceable (≥ 0.7), cheerful "
        "(valence ≥ 0.7), sombre (< 0.3), rap-like (speechiness 0.33–0.66), spoken (> 0.66), "
        "instrumental (instrumentalness > 0.5), live (liveness > 0.8), short (< 2:30), long (≥ 6:00).",
    )
    closest = serializers.ListField(
        child=serializers.CharField(),
        help_text="Features on which the two songs are close and few catalog songs lie between them "
        "(a value both songs share with much of the catalog, such as no instrumental sound at all, is "
        "never listed).",
    )
    furthest = serializers.ListField(
        child=serializers.CharField(), help_text="The feature furthest from the seed's, in catalog standard deviations."
    )
    contrast = serializers.CharField(
        allow_null=True,
        help_text='How this song differs most, as heard ("livelier", "slower", "more acoustic"); '
        "null when no difference is large.",
    )
    text = serializers.CharField(
        help_text='One sentence: "Both acoustic, slow and quiet; close in mood and length; this one is livelier."'
    )


class SimilarSongSerializer(serializers.Serializer):
    song = SongSerializer()
    similarity = serializers.FloatField(
        help_text="How close this result is, against the catalog's own neighbourhoods: the share of the "
        "catalog's songs whose 10th-nearest neighbour is farther away (sampled when the index is built). "
        "0.9 = closer than the 10th neighbour of 90 % of songs; a typical 10th neighbour reads about "
        "0.5, the first neighbours of most songs 0.9 or more. Shown on the pages as a percentage."
    )
    distance = serializers.FloatField(help_text="Euclidean distance in the similarity space.")
    explanation = ExplanationSerializer()


class SimilarResponseSerializer(serializers.Serializer):
    seed = SongSerializer()
    run = serializers.IntegerField(help_text="The active training run that answered.")
    results = SimilarSongSerializer(many=True)


def _song_or_404(external_id: str) -> SongRecord:
    record = song_record_get(external_id=external_id)
    if record is None:
        raise NotFound(f"No song with id {external_id!r}.")
    return record


class SimilarSongsView(APIView):
    """Nearest songs to one song in the active model's similarity index (a
    signed-in user's blocked artists, songs and genres left out)."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        parameters=[SimilarQuerySerializer],
        responses={200: SimilarResponseSerializer},
    )
    def get(self, request, external_id: str):
        query = SimilarQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        result = model_call(
            similarity.song_similar,
            external_id=external_id,
            limit=data["limit"],
            same_cluster=data["same_cluster"],
            max_per_artist=data["max_per_artist"],
            exclude_artist=data["exclude_artist"],
            bounds=query.bounds(),
            **query.filters(request),
        )
        if result is None:
            raise NotFound(f"No song with id {external_id!r}.")
        # Records are already in the documented shape (SimilarResponseSerializer).
        return Response(result)


class RecommendationsQuerySerializer(DiscoveryFiltersMixin, _BoundsMixin):
    """The parameters of recommendations; the Spotify-compatible surface
    names the song seeds ``seed_tracks`` (SONG_SEEDS) and validates the rest alike."""

    TARGETS = True
    SONG_SEEDS = "seed_songs"
    limit = serializers.IntegerField(default=20, min_value=1, max_value=100, help_text="Tracks to return (1-100).")
    max_per_artist = serializers.IntegerField(
        default=similarity.RECOMMENDATIONS_MAX_PER_ARTIST,
        min_value=1,
        max_value=100,
        help_text=f"At most this many tracks of one artist (default {similarity.RECOMMENDATIONS_MAX_PER_ARTIST}; "
        "100 for no cap). Versions of one recording count as one track.",
    )

    def get_fields(self):
        seeds = {
            self.SONG_SEEDS: serializers.CharField(
                required=False, default="", allow_blank=True, help_text="Comma-separated song ids (external ids)."
            ),
            "seed_artists": serializers.CharField(
                required=False, default="", allow_blank=True, help_text="Comma-separated artist ids (or exact names)."
            ),
            "seed_genres": serializers.CharField(
                required=False,
                default="",
                allow_blank=True,
                help_text="Comma-separated genres (see /api/recommendations/genres/). A genre seed "
                "recommends songs that carry the genre, near the genre's sound: only them when "
                "at least `limit` pass the filters, else first.",
            ),
        }
        return {**seeds, **super().get_fields()}

    def validate(self, data):
        data = super().validate(data)
        names = (self.SONG_SEEDS, "seed_artists", "seed_genres")
        for name in names:
            data[name] = id_list(data.get(name, ""), name)
        total = sum(len(data[name]) for name in names)
        if total == 0:
            raise ValidationError(
                {self.SONG_SEEDS: f"Give at least one seed in {self.SONG_SEEDS}, seed_artists or seed_genres."}
            )
        if total > similarity.MAX_SEEDS:
            raise ValidationError({self.SONG_SEEDS: f"At most {similarity.MAX_SEEDS} seeds in all; got {total}."})
        return data

    def recommendations(self, request=None) -> dict:
        """The validated query answered by :func:`clustering.similarity.recommendations_get`
        (with a ``request``, the signed-in user's blocklist joins the filters)."""
        data = self.validated_data
        return model_call(
            similarity.recommendations_get,
            seed_songs=data[self.SONG_SEEDS],
            seed_artists=data["seed_artists"],
            seed_genres=data["seed_genres"],
            limit=data["limit"],
            bounds=self.bounds(),
            targets=self.targets(),
            max_per_artist=data["max_per_artist"],
            **self.filters(request),
        )


class RecommendationSeedSerializer(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.CharField(help_text="SONG, ARTIST or GENRE.")
    href = serializers.CharField(allow_null=True)
    initialPoolSize = serializers.IntegerField(help_text="Songs near this seed considered before the filters.")
    afterFilteringSize = serializers.IntegerField(help_text="Of those, how many pass every min/max filter.")


class RecommendationsResponseSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    seeds = RecommendationSeedSerializer(many=True)
    tracks = SongSerializer(many=True)


class RecommendationsView(APIView):
    """Spotify-style recommendations: up to 5 seeds in all, hard min/max
    filters and preferred targets for the audio attributes; a signed-in
    user's blocked artists, songs and genres are left out."""

    permission_classes = [permissions.AllowAny]
    throttle_scope = "recommendations"  # expensive: its own rate (settings, "Abuse limits")

    @extend_schema(
        parameters=[RecommendationsQuerySerializer],
        responses={200: RecommendationsResponseSerializer},
    )
    def get(self, request):
        query = RecommendationsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(query.recommendations(request))


class GenreSeedsView(APIView):
    """Genres usable as seed_genres, with their song counts, from the active model's index."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        responses={
            200: inline_serializer("GenreSeeds", {"genres": serializers.DictField(child=serializers.IntegerField())})
        }
    )
    def get(self, request):
        return Response({"genres": model_call(similarity.genre_seeds)})


class PathQuerySerializer(DiscoveryFiltersMixin):
    length = serializers.IntegerField(
        default=10,
        min_value=similarity.PATH_LENGTH[0],
        max_value=similarity.PATH_LENGTH[1],
        help_text="Songs in the path, both ends included.",
    )

    def get_fields(self):
        fields = super().get_fields()
        # "from" is a Python keyword: declared here rather than as an attribute.
        fields["from"] = serializers.CharField(help_text="Id of the first song.")
        fields["to"] = serializers.CharField(help_text="Id of the last song.")
        return fields


class PathResponseSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    songs = SongSerializer(many=True)
    steps = serializers.ListField(
        child=serializers.FloatField(), help_text="Distance of each step, in typical neighbour distances."
    )


class SongPathView(APIView):
    """A sequence of songs moving smoothly from one song to another.

    The path is chosen in sound (the ten audio features, each in catalog
    standard deviations): songs near evenly spaced points on the line from
    the first song to the last, chosen together by a beam search that keeps
    consecutive songs close, never steps back along the line where the
    catalog offers a forward step, penalises moving a feature against its
    start-to-end direction and crosses the clusters between the two ends in
    one direction. No song or exact duplicate twice; each artist at most
    once counting the two ends (the first and last songs' artists never
    appear in between). A catalog too small for these rules gives a shorter
    path. Method and measurements: docs/PATHS.md. A signed-in user's blocked
    artists, songs and genres are left out in between, like exclude_*."""

    permission_classes = [permissions.AllowAny]
    throttle_scope = "path"  # expensive: its own rate (settings, "Abuse limits")

    @extend_schema(
        parameters=[PathQuerySerializer],
        responses={200: PathResponseSerializer},
    )
    def get(self, request):
        query = PathQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        source, target = _song_or_404(data["from"]), _song_or_404(data["to"])
        result = model_call(
            similarity.song_path, source=source, target=target, length=data["length"], **query.filters(request)
        )
        return Response(result)


def _playlist_response(request, *, title: str, songs: list, fmt: str):
    return playlist_download(request=request, title=title, songs=songs_for_export([song.pk for song in songs]), fmt=fmt)


class RadioQuerySerializer(GeneratedPlaylistQuerySerializer):
    limit = serializers.IntegerField(
        default=25, min_value=1, max_value=500, help_text="Songs, the seed included (1-500; default 25)."
    )
    max_per_artist = serializers.IntegerField(
        default=similarity.RADIO_MAX_PER_ARTIST,
        min_value=1,
        max_value=100,
        help_text=f"At most this many songs per artist, the seed counting for its artist "
        f"(default {similarity.RADIO_MAX_PER_ARTIST}).",
    )
    variety = serializers.FloatField(
        default=0.0,
        min_value=0.0,
        max_value=1.0,
        help_text="How far the radio reaches beyond the nearest songs (0-1; default 0). At 0 the nearest songs in "
        "order; above it the songs are drawn from the nearest limit × (1 + 3 × variety), weighed towards the nearer "
        "ones, and listed nearest first. The same song, variety and seed give the same radio on the same model.",
    )
    seed = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=SEED_MAX,
        help_text=f"Seed of the draw (0-{SEED_MAX}). Left out with a variety above 0, one is picked at random and "
        "returned: send it back to hear the same radio again.",
    )


class SongRadioView(APIView):
    """Radio from a seed song: the seed, then similar songs, one per artist by
    default (the seed's artist does not come back), versions of one recording
    once, none a signed-in user blocked; `variety` reaches further, seeded."""

    permission_classes = [permissions.AllowAny]
    throttle_scope = "radio"  # expensive: its own rate (settings, "Abuse limits")

    @extend_schema(
        parameters=[RadioQuerySerializer],
        responses={
            200: inline_serializer(
                "Radio",
                {
                    "title": serializers.CharField(),
                    "variety": serializers.FloatField(help_text="The variety used."),
                    "seed": serializers.IntegerField(
                        allow_null=True, help_text="The seed used (null at variety 0, where none is needed)."
                    ),
                    "songs": SongSerializer(many=True),
                },
            )
        },
    )
    def get(self, request, external_id: str):
        query = RadioQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        data = query.validated_data
        song = _song_or_404(external_id)
        variety = data["variety"]
        seed = data.get("seed")
        if seed is None and variety > 0:
            seed = secrets.randbelow(SEED_MAX + 1)
        songs = model_call(
            similarity.song_radio,
            song=song,
            limit=data["limit"],
            max_per_artist=data["max_per_artist"],
            variety=variety,
            seed=seed,
            **query.filters(request),
        )
        title = f"Radio: {song['name']} — {song['artist']}"
        if data["fmt"] != "json":
            return _playlist_response(request, title=title, songs=songs, fmt=data["fmt"])
        return Response({"title": title, "variety": variety, "seed": seed, "songs": songs})


# --- similar artists ----------------------------------------------------------------


class SimilarArtistsQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(default=10, min_value=1, max_value=50, help_text="Artists to return (1-50).")


class ArtistSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The artist's external id.")
    name = serializers.CharField()
    genres = serializers.ListField(child=serializers.CharField())
    followers = serializers.IntegerField(allow_null=True)
    popularity = serializers.IntegerField(allow_null=True)


class SimilarArtistSerializer(ArtistSerializer):
    similarity = serializers.FloatField(
        help_text="1 for the same sound, 0.5 at a typical 10th-neighbour distance of songs."
    )


class SimilarArtistsResponseSerializer(serializers.Serializer):
    artist = ArtistSerializer()
    run = serializers.IntegerField(help_text="The active training run that answered.")
    related = SimilarArtistSerializer(many=True)


def _artist_out(artist: dict) -> dict:
    return {key: value for key, value in artist.items() if key != "pk"}


class SimilarArtistsView(APIView):
    """Artists that sound like one artist: nearest by the mean vector of their
    songs in the active model's similarity index (the same answer as the
    Spotify-compatible related-artists). A signed-in user's blocked artists,
    and artists of a blocked genre, are left out."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        parameters=[SimilarArtistsQuerySerializer],
        responses={
            200: SimilarArtistsResponseSerializer,
            404: OpenApiResponse(ApiErrorSerializer, description="No artist with this id."),
            503: OpenApiResponse(ApiErrorSerializer, description="No active model, or it cannot be loaded."),
        },
    )
    def get(self, request, external_id: str):
        query = SimilarArtistsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        excludes = excludes_for(request)
        result = model_call(
            similarity.artists_related,
            external_id=external_id,
            limit=query.validated_data["limit"],
            exclude_artists=excludes["exclude_artists"],
            exclude_genres=excludes["exclude_genres"],
        )
        if result is None:
            raise NotFound(f"No artist with id {external_id!r}.")
        return Response(
            {
                "artist": _artist_out(result["artist"]),
                "run": result["run"],
                "related": [_artist_out(a) for a in result["related"]],
            }
        )


# --- a listener's blocklist -----------------------------------------------------------

BLOCK_TYPES = ("artist", "song", "genre")


class BlockedItemSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=BLOCK_TYPES, source="kind", help_text="artist, song or genre.")
    id = serializers.CharField(
        source="value", help_text="The artist's or song's external id, or the genre (lower case)."
    )
    label = serializers.CharField(help_text="How pages show it: the artist's name, 'title — artist', or the genre.")
    created_at = serializers.DateTimeField()


class BlocklistSerializer(serializers.Serializer):
    artists = BlockedItemSerializer(many=True)
    songs = BlockedItemSerializer(many=True)
    genres = BlockedItemSerializer(many=True)


class BlockRequestSerializer(serializers.Serializer):
    type = serializers.ChoiceField(
        choices=BLOCK_TYPES,
        help_text="What to block: artist, song or genre.",
        error_messages={"invalid_choice": '"{input}" is not a type; choose one of artist, song, genre.'},
    )
    id = serializers.CharField(
        max_length=512,
        help_text="A song's external id; an artist's external id or exact name; or a genre name (any case).",
    )


def _blocklist_body(user) -> dict:
    items = selectors.blocklist_of(user=user)
    data = {"artists": [], "songs": [], "genres": []}
    for item in items:
        data[f"{item.kind}s"].append(BlockedItemSerializer(item).data)
    return data


BLOCK_TYPE_PARAMETER = OpenApiParameter(
    "kind", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(BLOCK_TYPES), description="artist, song or genre."
)
BLOCK_ID_PARAMETER = OpenApiParameter(
    "value",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The blocked artist's external id (or exact name), song's external id, or genre (any case).",
)
BLOCK_ERRORS = {
    400: OpenApiResponse(ApiErrorSerializer, description="Unknown type, or no such song or artist."),
    401: OpenApiResponse(ApiErrorSerializer, description="Not signed in (session or token)."),
    403: OpenApiResponse(ApiErrorSerializer, description="Not signed in (session without a CSRF token)."),
}


class BlocklistView(APIView):
    """Your blocklist: artists, songs and genres you never want to see. Every
    discovery answer you get signed in (similar songs and artists, radio,
    recommendations, paths, cluster playlists, and the cluster pages' song
    lists) leaves them out; a song you asked for by id (a seed, a path's ends)
    is still answered."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        summary="Your blocked artists, songs and genres", responses={200: BlocklistSerializer, **BLOCK_ERRORS}
    )
    def get(self, request):
        return Response(_blocklist_body(request.user))

    @extend_schema(
        summary="Block an artist, a song or a genre",
        request=BlockRequestSerializer,
        responses={
            201: OpenApiResponse(BlockedItemSerializer, description="Blocked."),
            200: OpenApiResponse(BlockedItemSerializer, description="Already blocked: nothing changed."),
            **BLOCK_ERRORS,
        },
    )
    def post(self, request):
        body = BlockRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            item, created = services.blocklist_add(
                user=request.user, kind=body.validated_data["type"], value=body.validated_data["id"]
            )
        except BlocklistError as exc:
            raise ValidationError({"type" if exc.field == "type" else "id": [str(exc)]}) from None
        return Response(
            BlockedItemSerializer(item).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class BlockedItemView(APIView):
    """One item of your blocklist."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        summary="Unblock an artist, a song or a genre",
        parameters=[BLOCK_TYPE_PARAMETER, BLOCK_ID_PARAMETER],
        responses={
            204: OpenApiResponse(description="Unblocked."),
            404: OpenApiResponse(ApiErrorSerializer, description="Not on your blocklist."),
            **BLOCK_ERRORS,
        },
    )
    def delete(self, request, kind: str, value: str):
        try:
            removed = services.blocklist_remove(user=request.user, kind=kind, value=value)
        except BlocklistError as exc:
            raise ValidationError({"type": [str(exc)]}) from None
        if not removed:
            raise NotFound(f"No {kind} {value!r} on your blocklist.")
        return Response(status=status.HTTP_204_NO_CONTENT)
