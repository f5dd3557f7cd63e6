"""The similarity core: embedding, IVF search against exact search, filters, exclusions."""

from pathlib import Path

import numpy as np
import pytest

from clustering.ml.similarity import SimilarityIndex, SongEmbedding

from .synth import catalog, four_centers


def _data(n_per=10_000, seed=0):
    X, y = catalog(four_centers(), n_per=n_per, noise=0.08, seed=seed)
    rng = np.random.default_rng(seed)
    n = len(X)
    X[:, [3, 4, 5, 6]] = np.clip(X[:, [3, 4, 5, 6]], 0, 1)
    artist = rng.integers(0, n // 10, n)
    year = np.where(rng.random(n) < 0.1, np.nan, rng.integers(1960, 2024, n))
    popularity = rng.integers(0, 100, n).astype(float)
    extra = np.column_stack([rng.integers(0, 12, n), rng.integers(0, 2, n), popularity, np.full(n, 4.0)])
    dup = rng.integers(0, 2**62, n)
    return {
        "ids": np.arange(1, n + 1) * 3,
        "X": X,
        "year": year,
        "popularity": popularity,
        "artist": artist,
        "dup_keys": dup,
        "extra": extra,
        "labels": y,
    }


@pytest.fixture(scope="module")
def built():
    data = _data()
    return data, SimilarityIndex(random_state=0).fit(**data)


def test_cells_search_agrees_with_exact_search(built):
    _, index = built
    assert index.n_cells_ > 100  # 40,000 songs: an inverted file, not one cell
    rng = np.random.default_rng(1)
    recall = []
    for row in rng.choice(len(index.ids_), 50, replace=False):
        q = index.vector(row)
        approx, d_approx = index.search(q, k=10)
        exact, _d_exact = index._exact(q, None, 10)
        recall.append(len(set(approx) & set(exact)) / 10)
        assert approx[0] == row and d_approx[0] == pytest.approx(0, abs=0.01)  # float32 rounding
        assert np.all(np.diff(d_approx) >= -1e-6)
    assert np.mean(recall) >= 0.95


def test_filtered_search_returns_only_selected_rows_and_widens(built):
    _, index = built
    q = index.vector(5)
    mask = index.attribute_mask({"energy": (0.7, None), "key": (None, 2)})
    rows, _ = index.search(q, k=50, mask=mask)
    assert len(rows) == 50 and mask[rows].all()
    tiny = np.zeros(len(index.ids_), dtype=bool)
    tiny[[7, 70, 700]] = True
    rows, _ = index.search(q, k=10, mask=tiny)
    assert sorted(rows.tolist()) == [7, 70, 700]  # fewer than k: every selected row, no padding


def test_bounds_are_inclusive_and_an_unknown_or_infinite_value_fails_them():
    """A bound keeps values within [low, high] (a float32 rounding of 1e-6
    either side), and never NaN or an infinity, on either layout; no bound
    at all is no mask."""
    from clustering.ml.similarity import ATTRIBUTES, bounds_mask

    rng = np.random.default_rng(3)
    values = rng.uniform(0, 200, (2_000, len(ATTRIBUTES))).astype(np.float32)
    j = ATTRIBUTES.index("tempo")
    values[:6, j] = [np.nan, np.inf, -np.inf, 100.0, 120.0, np.float32(100) - np.float32(5e-7)]
    for layout in (values, np.asfortranarray(values)):
        col = layout[:, j]
        for low, high in ((100.0, None), (None, 120.0), (100.0, 120.0), (None, None)):
            expected = np.isfinite(col)
            if low is not None:
                expected &= col >= np.float32(low) - np.float32(1e-6)
            if high is not None:
                expected &= col <= np.float32(high) + np.float32(1e-6)
            got = bounds_mask(layout, {"tempo": (low, high)})
            assert np.array_equal(got, expected), (low, high)
            assert not got[:3].any()  # NaN, +inf, -inf
        assert bounds_mask(layout, {"tempo": (100.0, 120.0)})[3:6].all()  # both ends, and just under low
        both = bounds_mask(layout, {"tempo": (100.0, None), "energy": (None, 50.0)})
        assert np.array_equal(
            both, (col >= np.float32(100) - np.float32(1e-6)) & (layout[:, ATTRIBUTES.index("energy")] <= 50.0 + 1e-6)
        )
    assert bounds_mask(values, {}) is None and bounds_mask(values, None) is None


def test_query_drops_duplicates_excluded_rows_and_caps_artists(built):
    _, index = built
    index.dup_keys_[[11, 12]] = index.dup_keys_[10]  # exact duplicates of row 10
    rows, _ = index.query(
        index.vector(10), k=30, exclude_rows=[10], exclude_keys=[index.dup_keys_[10]], max_per_artist=1
    )
    assert len(rows) == 30 and not {10, 11, 12} & set(rows.tolist())
    artists = index.artists_[rows]
    assert len(set(artists.tolist())) == 30


def test_a_few_excluded_rows_are_dropped_after_the_search_with_the_selector_s_results(built, monkeypatch):
    """The seed and its versions are searched for and dropped afterwards
    (no selector: faiss tests every scanned vector against one); the rows and
    distances are those of the search with the selector."""
    import clustering.ml.similarity as similarity

    _, index = built
    rng = np.random.default_rng(3)
    small_artist = int(np.bincount(index.artists_).argmin())  # an artist of few songs (maybe none)
    calls = []
    search = index.search

    def recording(*args, **kwargs):
        calls.append(kwargs.get("exclude_rows"))
        return search(*args, **kwargs)

    for row in rng.choice(len(index.ids_), 60, replace=False).tolist():
        other = int(rng.integers(len(index.ids_)))
        kwargs = {
            "exclude_rows": [row],
            "exclude_keys": [int(index.dup_keys_[row]), int(index.dup_keys_[other])],
            "exclude_artists": [small_artist],
            "max_per_artist": 2,
        }
        results = {}
        for limit in (0, similarity.DROP_AFTER_ROWS):
            monkeypatch.setattr(similarity, "DROP_AFTER_ROWS", limit)
            monkeypatch.setattr(index, "search", recording)
            calls.clear()
            results[limit] = index.query(index.vector(row), k=15, **kwargs)
            monkeypatch.undo()
            assert (calls[0] is None) == (limit > 0)  # the selector only when the rows are not dropped after
        (rows, dist), (rows_after, dist_after) = results.values()
        assert rows_after.tolist() == rows.tolist() and np.allclose(dist_after, dist)
        assert len(rows) == 15 and not {row, other} & set(rows.tolist())
        assert small_artist not in index.artists_[rows].tolist()


def test_arrays_round_trip_answers_the_same(built):
    _, index = built
    copy = SimilarityIndex.from_arrays(index.to_arrays())
    for row in (0, 123, 4567):
        a, da = index.search(index.vector(row), k=10)
        b, db = copy.search(copy.vector(row), k=10)
        assert a.tolist() == b.tolist() and np.allclose(da, db)
    assert copy.rows_of(index.ids_[[3, 9]]).tolist() == [3, 9]
    assert copy.rows_of([-1]).tolist() == [-1]


def test_embedding_mixes_the_artist_profile():
    data = _data(n_per=50)
    emb = SongEmbedding(artist_weight=3).fit(data["X"], data["year"], data["popularity"], data["artist"])
    V = emb.transform(data["X"], data["year"], data["popularity"], data["artist"])
    assert V.shape == (len(data["X"]), 24) and np.isfinite(V).all()
    same = np.flatnonzero(data["artist"] == data["artist"][0])
    assert np.allclose(V[same, 12:], V[same[0], 12:])  # one artist, one profile
    unknown = emb.transform(data["X"][:1], data["year"][:1], data["popularity"][:1], [10**9])
    assert np.allclose(unknown[0, 12:], 3 * unknown[0, :12])  # no profile: the song's own base


def test_empty_catalog_is_refused():
    with pytest.raises(ValueError, match="empty catalog"):
        SimilarityIndex().fit(
            ids=[], X=np.empty((0, 10)), year=[], popularity=[], artist=[], dup_keys=[], extra=np.empty((0, 4))
        )


def test_filters_are_selectors_inside_the_cells_search(built, monkeypatch):
    """With the exact path for small selections turned off, a filter runs as a
    faiss selector: only selected rows come back, and a selection the probed
    cells barely hold widens the probes instead of returning too few."""
    import clustering.ml.similarity as similarity

    _, index = built
    monkeypatch.setattr(similarity, "EXACT_SELECTION", 0)
    q = index.vector(5)
    tiny = np.zeros(len(index.ids_), dtype=bool)
    tiny[[7, 70, 700, 7000, 30000]] = True
    rows, dist = index.search(q, k=10, mask=tiny)
    assert sorted(rows.tolist()) == [7, 70, 700, 7000, 30000]
    assert np.all(np.diff(dist) >= 0)
    mask = index.attribute_mask({"energy": (0.7, None)})
    assert 0.1 < mask.mean() < 0.5
    recall = []
    for row in np.flatnonzero(mask)[::400][:40]:  # seeds inside the selection
        rows, _ = index.search(index.vector(row), k=20, mask=mask)
        exact, _ = index._exact(index.vector(row), np.flatnonzero(mask), 20)
        assert mask[rows].all() and len(rows) == 20
        recall.append(len(set(rows.tolist()) & set(exact.tolist())) / 20)
    assert np.mean(recall) >= 0.99
    # A seed far from every selected row still gets k of them, nearest first.
    assert not mask[5]
    rows, dist = index.search(q, k=20, mask=mask)
    assert len(rows) == 20 and mask[rows].all() and np.all(np.diff(dist) >= 0)


def test_excluded_artists_and_songs_never_cost_results(built):
    """Excluding the artists of the 50 nearest songs still fills k: the
    exclusion is a selector inside the search, not a filter after it."""
    _, index = built
    q = index.vector(321)
    near, _ = index.search(q, k=50)
    artists = np.unique(index.artists_[near]).tolist()
    rows, _ = index.query(q, k=30, exclude_artists=artists, exclude_keys=[int(index.dup_keys_[9])])
    assert len(rows) == 30
    assert not set(index.artists_[rows].tolist()) & set(artists)
    assert 9 not in rows.tolist()
    assert index.rows_of_artists(artists[:2]).tolist() == np.flatnonzero(np.isin(index.artists_, artists[:2])).tolist()
    assert index.rows_of_keys([int(index.dup_keys_[9])]).tolist() == [9]


def test_recall_against_exact_search_with_the_default_probes(built):
    _, index = built
    rng = np.random.default_rng(7)
    recall = []
    for row in rng.choice(len(index.ids_), 100, replace=False):
        q = index.vector(row) + rng.normal(0, 0.05, index.vector(row).shape).astype(np.float32)
        approx, _ = index.search(q, k=10)
        exact, _ = index._exact(q, None, 10)
        recall.append(len(set(approx.tolist()) & set(exact.tolist())) / 10)
    assert np.mean(recall) >= 0.99


def test_saved_files_are_memory_mapped_and_answer_the_same(built, tmp_path):
    _, index = built
    names = index.save(tmp_path)
    assert {"faiss.index", "vectors.npy", "attributes.npy", "meta.json"} <= set(names)
    loaded = SimilarityIndex.load(tmp_path, mmap=True)
    maps = Path("/proc/self/maps").read_text()
    # The faiss codes and the arrays stay in the files, mapped shared and read-only.
    for name in ("faiss.index", "vectors.npy", "attributes.npy", "ids.npy"):
        lines = [line for line in maps.splitlines() if line.endswith(str(tmp_path / name))]
        assert lines and all(line.split()[1].startswith("r") for line in lines), name
    for row in (0, 123, 4567):
        a, da = index.search(index.vector(row), k=10)
        b, db = loaded.search(loaded.vector(row), k=10)
        assert a.tolist() == b.tolist() and np.allclose(da, db)
    mask = index.attribute_mask({"energy": (0.7, None)})
    assert np.array_equal(loaded.attribute_mask({"energy": (0.7, None)}), mask)
    # The attributes are stored column-major and mapped so: a bound reads one column in one piece.
    assert index.attributes_.flags.f_contiguous and loaded.attributes_.flags.f_contiguous
    assert isinstance(loaded.attributes_, np.memmap) or isinstance(loaded.attributes_.base, np.memmap)
    np.testing.assert_array_equal(np.asarray(loaded.attributes_), index.attributes_)
    a, _ = loaded.query(index.vector(3), k=5, max_per_artist=1)
    assert a.tolist() == index.query(index.vector(3), k=5, max_per_artist=1)[0].tolist()


def test_an_index_saved_before_faiss_still_answers(built):
    """The arrays of the earlier inverted file (cells and their row ranges,
    no faiss) get a faiss index rebuilt from them that answers the same."""
    _, index = built
    arrays = index.to_arrays()
    for key in ("faiss_index", "artist_rows", "dup_rows"):
        arrays.pop(key)
    quantizer = index.faiss_.quantizer
    arrays["cells"] = quantizer.reconstruct_n(0, index.n_cells_)
    sizes = np.array([index.faiss_.invlists.list_size(c) for c in range(index.n_cells_)])
    arrays["cell_starts"] = np.concatenate([[0], np.cumsum(sizes)])
    old = SimilarityIndex.from_arrays(arrays)
    assert old.n_cells_ == index.n_cells_
    for row in (0, 123, 4567):
        a, _ = index.search(index.vector(row), k=10)
        b, _ = old.search(old.vector(row), k=10)
        assert a.tolist() == b.tolist()
    assert (
        old.rows_of_artists([int(index.artists_[5])]).tolist()
        == index.rows_of_artists([int(index.artists_[5])]).tolist()
    )


def test_genres_given_as_codes_build_what_names_build():
    """Genre pairs given as codes of distinct names (a run's catalog read)
    build the same genre members and vectors as one name per pair."""
    data = _data(n_per=500, seed=3)
    n = len(data["ids"])
    rng = np.random.default_rng(4)
    rows = np.sort(rng.integers(0, n, 3 * n))
    distinct = np.array(["rock", "ambient", "pop", "unused", "jazz"], dtype=object)
    codes = rng.choice([0, 1, 2, 4], size=len(rows))
    by_names = SimilarityIndex(random_state=0).fit(**data, genre_rows=rows, genre_names=distinct[codes])
    by_codes = SimilarityIndex(random_state=0).fit(**data, genre_rows=rows, genre_names=distinct, genre_codes=codes)
    assert by_codes.genres_.tolist() == by_names.genres_.tolist() == ["ambient", "jazz", "pop", "rock"]
    np.testing.assert_array_equal(by_codes.genre_members_, by_names.genre_members_)
    np.testing.assert_array_equal(by_codes.genre_starts_, by_names.genre_starts_)
    np.testing.assert_array_equal(by_codes.genre_sizes_, by_names.genre_sizes_)
    np.testing.assert_array_equal(by_codes.genre_vectors_, by_names.genre_vectors_)


def test_the_embedding_is_the_same_by_blocks_of_rows_as_at_once(monkeypatch):
    """Fit and transform stream over blocks of rows (a 10M-song run holds no
    matrix of every song's columns); block edges must not move a bit."""
    import clustering.ml.similarity as similarity

    data = _data(n_per=500)
    args = (data["X"], data["year"], data["popularity"], data["artist"])
    whole = SongEmbedding().fit(*args)
    at_once = whole.transform(*args, dtype=np.float16)
    monkeypatch.setattr(similarity, "EMBED_BLOCK", 97)  # 21 blocks, the last one short
    blocks = SongEmbedding()
    by_blocks = blocks.fit_transform(*args, dtype=np.float16)
    for name in ("mean_", "std_", "artist_ids_", "artist_means_"):
        assert np.array_equal(getattr(whole, name), getattr(blocks, name)), name
    assert by_blocks.dtype == np.float16 and np.array_equal(by_blocks, at_once)
    # float16 is the float32 embedding rounded once more, as the index always stored it
    assert np.array_equal(by_blocks, whole.transform(*args).astype(np.float16))


def test_a_clusters_centre_is_its_members_mean_kept_until_the_labels_change():
    """A cluster playlist's centre: the mean of the members' vectors, the
    same array for every later request, recomputed when the index is labelled again."""
    data = _data(n_per=500, seed=4)
    index = SimilarityIndex(random_state=0).fit(**data)
    label = int(index.labels_[0])
    centre = index.cluster_centre(label)
    members = index.vectors_[index.labels_ == label].astype(np.float64)
    np.testing.assert_allclose(centre, members.mean(axis=0), rtol=1e-5, atol=1e-6)
    assert index.cluster_centre(label) is centre
    assert index.cluster_centre(99) is None
    relabelled = np.where(np.asarray(data["labels"]) == label, 99, data["labels"])
    index.labels_set(data["ids"], relabelled)
    assert index.cluster_centre(label) is None
    np.testing.assert_allclose(index.cluster_centre(99), centre, rtol=1e-6)
