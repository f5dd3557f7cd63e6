"""The API's JSON is written by orjson and reads as DRF's own JSON."""

import datetime
import decimal
import json
import uuid

import numpy as np
import pytest
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer as DRFJSONRenderer

from musiccluster.renderers import JSONRenderer

# What the API's responses hold: numbers of every size, text in any script
# (U+2028 and U+2029 must come out escaped), dates and times (DRF writes
# UTC as Z and trims to milliseconds), and values orjson leaves to DRF's
# encoder (numpy, lazy translations, decimals, UUIDs, tuples, int keys).
VALUES = [
    0.1,
    -0.0,
    0.30000000000000004,
    123456789.123,
    1e15,
    1e16,
    1.7976931348623157e308,
    5e-324,
    2**63 - 1,
    -(2**63),
    'é ü 日本 \u2028 \u2029 \x00 \x1f "q" \\ / 🎵',
    datetime.datetime(2026, 12, 7, 10, 1, 2, 345678, tzinfo=datetime.UTC),
    datetime.datetime(2026, 12, 7, 10, 1, 2, 345678, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
    datetime.datetime(2026, 12, 7, 10, 1, 2),
    datetime.date(2026, 1, 2),
    datetime.time(1, 2, 3, 456789),
    decimal.Decimal("1.10"),
    uuid.UUID(int=5),
    np.float32(0.1),
    np.float64(0.2),
    np.int64(7),
    np.arange(3),
    np.bool_(True),
    gettext_lazy("Songs"),
    (1, 2),
    {1: "a", None: 2},
    [],
    {},
    None,
    True,
]


@pytest.mark.parametrize("value", VALUES, ids=[repr(v)[:30] for v in VALUES])
def test_the_same_bytes_as_drf(value):
    data = {"value": value, "list": [value, {"nested": value}]}
    assert JSONRenderer().render(data) == DRFJSONRenderer().render(data)


def test_small_floats_are_the_same_numbers_spelled_otherwise():
    data = {"tiny": [1e-05, 1e-07, 2.5e-300]}
    ours, drf = JSONRenderer().render(data), DRFJSONRenderer().render(data)
    assert json.loads(ours) == json.loads(drf) == data


def test_an_indent_or_what_orjson_refuses_is_drfs_own_output():
    data = {"a": [1, 2], "big": 2**70}  # beyond 64 bits: orjson refuses it
    assert JSONRenderer().render(data) == DRFJSONRenderer().render(data)
    pretty = {"a": [1, 2]}
    for accepted, context in (("application/json; indent=4", {}), ("application/json", {"indent": 2})):
        ours = JSONRenderer().render(pretty, accepted, context)
        assert ours == DRFJSONRenderer().render(pretty, accepted, context) and b"\n" in ours
    assert JSONRenderer().render(None) == b""


def test_an_unknown_type_is_refused_as_drf_refuses_it():
    with pytest.raises(TypeError):
        JSONRenderer().render({"x": object()})


def test_a_float_that_is_not_finite_is_null():
    assert json.loads(JSONRenderer().render({"x": float("nan"), "y": float("inf")})) == {"x": None, "y": None}


def test_api_responses_are_written_by_it(api, trained_demo):
    """A similar-songs response goes through the renderer in settings and
    parses to what DRF's renderer writes of the same data."""
    from songs.models import Song

    song = Song.objects.order_by("id").first()
    response = api.get(f"/api/songs/{song.external_id}/similar/?limit=5")
    assert response.status_code == 200
    assert isinstance(response.accepted_renderer, JSONRenderer)
    assert response.content == JSONRenderer().render(response.data)
    assert json.loads(response.content) == json.loads(DRFJSONRenderer().render(response.data))
    assert len(response.json()["results"]) == 5
