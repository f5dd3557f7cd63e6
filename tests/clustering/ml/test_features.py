import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import StandardScaler

from clustering.ml import FEATURES, FeaturePreparer

from .synth import catalog, four_centers


@pytest.fixture
def X():
    return catalog(four_centers(), n_per=50)[0]


def test_standard_scaler_gives_zscores(X):
    Z = FeaturePreparer().fit_transform(X)
    assert Z.shape == (200, 10)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(Z.std(axis=0), 1, atol=1e-9)


def test_scaler_choice_changes_output(X):
    out = {s: FeaturePreparer(scaler=s).fit_transform(X) for s in ("standard", "robust", "quantile")}
    assert not np.allclose(out["standard"], out["robust"])
    assert not np.allclose(out["standard"], out["quantile"])
    assert not np.allclose(out["robust"], out["quantile"])


def test_fit_transform_equals_fit_then_transform(X):
    prep = FeaturePreparer(scaler="quantile")
    np.testing.assert_allclose(prep.fit_transform(X), prep.transform(X))


def test_subset_selection(X):
    prep = FeaturePreparer(features=["tempo", "energy"])
    Z = prep.fit_transform(X)
    assert Z.shape == (200, 2)
    assert prep.features_ == ["tempo", "energy"]
    cols = [FEATURES.index("tempo"), FEATURES.index("energy")]
    np.testing.assert_allclose(Z, StandardScaler().fit_transform(X[:, cols]))
    np.testing.assert_allclose(prep.feature_mean_, X[:, cols].mean(axis=0))
    np.testing.assert_allclose(prep.feature_std_, X[:, cols].std(axis=0))
    assert list(prep.get_feature_names_out()) == ["tempo", "energy"]


def test_real_unit_round_trip_and_zscores(X):
    prep = FeaturePreparer(features=["loudness", "duration_ms"])
    Z = prep.fit_transform(X)
    raw = X[:, [2, 9]]
    np.testing.assert_allclose(prep.inverse_transform(Z), raw)
    np.testing.assert_allclose(prep.transform_selected(raw), Z)
    np.testing.assert_allclose(prep.zscores(raw), Z)  # standard scaler: z-scores in real units


def test_unknown_feature_is_named(X):
    with pytest.raises(ValueError, match=r"unknown feature.*bpm.*mood"):
        FeaturePreparer(features=["energy", "bpm", "mood"]).fit(X)


def test_duplicate_feature_rejected(X):
    with pytest.raises(ValueError, match=r"twice.*energy"):
        FeaturePreparer(features=["energy", "energy"]).fit(X)


def test_unknown_scaler_rejected(X):
    with pytest.raises(ValueError, match="scaler"):
        FeaturePreparer(scaler="minmax").fit(X)


def test_nan_and_inf_are_rejected_with_column_names(X):
    X = X.copy()
    X[3, 2] = np.nan
    X[5, 9] = np.inf
    with pytest.raises(ValueError, match=r"NaN or infinite.*loudness \(1 rows\).*duration_ms \(1 rows\)"):
        FeaturePreparer().fit(X)
    good = catalog(four_centers(), n_per=5)[0]
    prep = FeaturePreparer().fit(good)
    with pytest.raises(ValueError, match="loudness"):
        prep.transform(X)


def test_wrong_shape_rejected(X):
    with pytest.raises(ValueError, match="9 columns, expected 10"):
        FeaturePreparer().fit(X[:, :9])
    with pytest.raises(ValueError, match="2-D"):
        FeaturePreparer().fit(X[0])


def test_transform_before_fit():
    with pytest.raises(NotFittedError):
        FeaturePreparer().transform(np.zeros((1, 10)))


@pytest.mark.parametrize("n, block", [(1, 4), (999, 7), (200_003, 65_536)])
def test_column_sums_by_blocks_are_numpys_sums_bit_for_bit(n, block):
    """The embedding's and the profiles' statistics are summed by blocks of
    rows to spare a copy of every row; the sums must not move by one bit."""
    from clustering.ml.features import column_sums

    rng = np.random.default_rng(n)
    A = rng.standard_normal((n, 12)) * np.logspace(-3, 6, 12) + rng.random(12) * 100
    A[rng.random(A.shape) < 0.02] = np.nan

    def known(rows):
        return np.where(np.isfinite(rows), rows, 0)

    assert np.array_equal(column_sums(A, known, block=block), known(A).sum(axis=0))
    B = known(A)
    mean = B.mean(axis=0)
    assert np.array_equal(np.sqrt(column_sums(B, lambda r: np.square(r - mean), block=block) / n), B.std(axis=0))
    # Another layout is summed at once, as NumPy would.
    F = np.asfortranarray(B)
    assert np.array_equal(column_sums(F, block=block), F.sum(axis=0))


@pytest.mark.parametrize(
    "values",
    [
        np.array([], dtype=np.int64),
        np.array([7]),
        np.array([3, -2, 3, 0, -2, 9], dtype=np.int32),  # negative, repeated: a table of the range
        np.array([2**40, -(2**40), 5, 5, 2**40]),  # a range far wider than the count: sorted
        np.random.default_rng(0).integers(-1, 8, 50_000),  # cluster labels with noise
        np.random.default_rng(1).integers(0, 1_000, 20_000).astype(np.int32),  # artist ids
        np.sort(np.random.default_rng(2).choice(10**7, 5_000, replace=False)).astype(np.int32),  # genre rows
        np.random.default_rng(3).integers(0, 255, (40, 30)).astype(np.uint8),  # 2-D: flattened
        np.array([True, False, True]),
        np.array([2**64 - 1, 2**64 - 3, 2**64 - 1], dtype=np.uint64),  # a narrow range past int64
        np.array([-(2**63), -(2**63) + 2, -(2**63)], dtype=np.int64),  # and at its bottom
    ],
)
def test_unique_ints_is_numpys_unique(values):
    """The values and the inverse are np.unique's, dtype included, by both
    of its ways (a table of a narrow range, a sort of a wide one)."""
    from clustering.ml.features import unique_ints

    expected, inverse = np.unique(values.ravel(), return_inverse=True)
    got = unique_ints(values)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)
    got, got_inverse = unique_ints(values, return_inverse=True)
    assert np.array_equal(got, expected) and np.array_equal(got_inverse, inverse.ravel())
    assert np.array_equal(got[got_inverse], values.ravel())


def test_unique_ints_refuses_floats():
    from clustering.ml.features import unique_ints

    with pytest.raises(TypeError, match="integers"):
        unique_ints(np.array([1.0, np.nan]))
