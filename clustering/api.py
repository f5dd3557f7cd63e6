"""REST API of the clustering engine: clusters, training runs, prediction."""
import numpy as np
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from songs.api import SongSerializer
from songs.features import FEATURES

from . import services
from .models import Cluster, TrainingRun

MAX_PREDICT = 10_000


class ClusterSerializer(serializers.ModelSerializer):
    run = serializers.IntegerField(source="run_id", read_only=True)

    class Meta:
        model = Cluster
        fields = ["id", "run", "label", "name", "description", "size", "profile", "lineage"]


class TrainingRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingRun
        fields = [
            "id", "status", "stage", "progress", "is_active", "algorithm", "scaler", "features", "params",
            "n_songs", "n_clusters", "metrics", "k_scan", "timings", "sklearn_version", "artifact_sha256",
            "error", "created_at", "started_at", "finished_at",
        ]
        read_only_fields = fields


class TrainingRunCreateSerializer(serializers.Serializer):
    algorithm = serializers.CharField(default="kmeans")
    k = serializers.CharField(default="8", help_text="A number of clusters, or 'auto'.")
    scaler = serializers.CharField(default="standard")
    features = serializers.ListField(child=serializers.CharField(), required=False)
    scan_sample_size = serializers.IntegerField(default=10_000)
    activate = serializers.BooleanField(default=True)


class ClusterViewSet(viewsets.ReadOnlyModelViewSet):
    """Clusters of the active run (`?run=` for another run)."""

    serializer_class = ClusterSerializer

    def get_queryset(self):
        qs = Cluster.objects.order_by("run_id", "label")
        run = self.request.query_params.get("run")
        if run and run.isdigit():
            return qs.filter(run_id=int(run))
        return qs.filter(run__is_active=True) if self.action == "list" else qs

    @extend_schema(responses=SongSerializer(many=True))
    @action(detail=True)
    def songs(self, request, pk=None):
        cluster = self.get_object()
        page = self.paginate_queryset(cluster.songs.select_related("artist", "cluster").order_by("id"))
        return self.get_paginated_response(SongSerializer(page, many=True).data)


class IsStaffOrReadOnly(permissions.BasePermission):
    def has_permission(self, request, view):
        return request.method in permissions.SAFE_METHODS or bool(request.user and request.user.is_staff)


class TrainingRunViewSet(viewsets.ModelViewSet):
    """Training runs; POST queues one (staff only)."""

    queryset = TrainingRun.objects.order_by("-created_at")
    serializer_class = TrainingRunSerializer
    permission_classes = [IsStaffOrReadOnly]
    http_method_names = ["get", "post", "head", "options"]

    @extend_schema(request=TrainingRunCreateSerializer, responses={202: TrainingRunSerializer})
    def create(self, request, *args, **kwargs):
        params = TrainingRunCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        try:
            run = services.training_run_create(
                user=request.user, algorithm=data["algorithm"], k=data["k"], scaler=data["scaler"],
                features=data.get("features"), scan_sample_size=data["scan_sample_size"], activate=data["activate"],
            )
        except services.TrainingError as exc:
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


class PredictView(APIView):
    """Cluster, distances to every centroid (or probabilities) and map position
    of one feature object or a list of up to 10,000."""

    permission_classes = [permissions.AllowAny]  # a POST that reads: open like the other reads

    @extend_schema(request=FeatureVectorSerializer(many=True), responses={200: dict})
    def post(self, request):
        payload = request.data
        many = isinstance(payload, list)
        if many and not payload:
            return Response({"detail": "Send one feature object or a non-empty list of them."}, status=400)
        if many and len(payload) > MAX_PREDICT:
            return Response({"detail": f"At most {MAX_PREDICT:,} vectors per request ({len(payload):,} sent)."}, status=400)
        if not many and not isinstance(payload, dict):
            return Response({"detail": "Send a JSON object of features or a list of them."}, status=400)
        serializer = FeatureVectorSerializer(data=payload, many=many)
        serializer.is_valid(raise_exception=True)
        rows = serializer.validated_data if many else [serializer.validated_data]
        X = np.array([[row[f.name] for f in FEATURES] for row in rows], dtype=np.float64)
        try:
            results = services.cluster_predict(X=X)
        except services.TrainingError as exc:
            return Response({"detail": str(exc)}, status=503)
        except services.ArtifactError as exc:
            return Response({"detail": f"The active model cannot be loaded: {exc}"}, status=503)
        return Response({"results": results} if many else results[0])


