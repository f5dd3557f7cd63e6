"""REST API of the catalog: songs, searchable and filterable."""
import django_filters
from django.db.models import Q
from rest_framework import serializers, viewsets
from rest_framework.pagination import PageNumberPagination

from .features import FEATURES
from .models import Song


class SongSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="external_id", read_only=True)
    artist = serializers.CharField(source="artist.name", read_only=True)
    artist_id = serializers.CharField(source="artist.external_id", read_only=True)
    cluster = serializers.SerializerMethodField()

    class Meta:
        model = Song
        fields = [
            "id", "name", "artist", "artist_id", "album", "genres", "popularity", "explicit", "release_date",
            "release_year", *Song.FEATURES, "key", "mode", "time_signature", "cluster", "map_x", "map_y",
        ]

    def get_cluster(self, song) -> dict | None:
        if song.cluster_id is None:
            return None
        return {"id": song.cluster_id, "name": song.cluster.name}


class SongFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(method="filter_search", help_text="Substring of the title or the artist name.")
    cluster = django_filters.NumberFilter(field_name="cluster_id", help_text="Id of a cluster of the active run.")

    class Meta:
        model = Song
        fields = {name: ["gte", "lte"] for name in [f.name for f in FEATURES]}

    def filter_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(artist__name__icontains=value))


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
    lookup_value_regex = "[^/]+"
    queryset = Song.objects.select_related("artist", "cluster").order_by("id")
