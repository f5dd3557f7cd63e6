import numpy as np
import pytest

from clustering.ml.credits import credit_members, credit_pairs
from clustering.ml.similarity import SongEmbedding


@pytest.mark.parametrize(
    "credit, members",
    [
        ("Lady Gaga, Bruno Mars", ["lady gaga", "bruno mars"]),
        ("Adam Port, Stryv, Keinemusik", ["adam port", "stryv", "keinemusik"]),
        ("Drake feat. Future", ["drake", "future"]),
        ("Calvin Harris (feat. Rihanna)", ["calvin harris", "rihanna"]),
        ("Marshmello x Anne-Marie", ["marshmello", "anne-marie"]),
        ("Simon & Garfunkel", ["simon", "garfunkel"]),
        ("AC/DC", ["ac/dc"]),
        ("Malcolm X", ["malcolm x"]),
        ("  Billie   Eilish ", ["billie eilish"]),
        ("BEYONCÉ; Beyoncé", ["beyoncé"]),
        ("", []),
    ],
)
def test_credit_members(credit, members):
    assert credit_members(credit) == members


def test_credit_pairs_share_codes_across_credits():
    artists, codes = credit_pairs([10, 11, 12], ["Bruno Mars", "Lady Gaga, Bruno Mars", ""])
    assert artists.tolist() == [10, 11, 11, 12]
    assert codes[0] == codes[2] and codes[1] != codes[0]
    assert codes[3] not in codes[:3]  # no name: the artist stands for itself


def _songs(rng, n):
    X = np.column_stack(
        [rng.uniform(0, 1, (n, 2)), rng.uniform(-20, 0, n), rng.uniform(0, 1, (n, 5)), rng.uniform(60, 180, n),
         rng.uniform(1e5, 3e5, n)]
    )  # fmt: skip
    return X, np.full(n, 2020.0), np.full(n, 50.0)


def test_a_joint_credit_profile_is_the_mean_of_its_artists_profiles():
    rng = np.random.default_rng(0)
    X, year, pop = _songs(rng, 9)
    # Artist 1: songs 0-3; artist 2: songs 4-7; artist 3 ("1, 2" jointly): song 8.
    artist = np.array([1, 1, 1, 1, 2, 2, 2, 2, 3])
    pairs = credit_pairs([1, 2, 3], ["Ann", "Bob", "Ann, Bob"])
    emb = SongEmbedding().fit(X, year, pop, artist, members=pairs)
    base = emb.base(X, year, pop)
    ann = base[[0, 1, 2, 3, 8]].mean(axis=0)  # every song naming Ann, the joint one included
    bob = base[[4, 5, 6, 7, 8]].mean(axis=0)
    means = dict(zip(emb.artist_ids_.tolist(), emb.artist_means_, strict=True))
    np.testing.assert_allclose(means[1], ann, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(means[3], (ann + bob) / 2, rtol=1e-5, atol=1e-6)
    # Without members, the joint credit's profile is its one song.
    plain = SongEmbedding().fit(X, year, pop, artist)
    np.testing.assert_allclose(dict(zip(plain.artist_ids_.tolist(), plain.artist_means_, strict=True))[3], base[8],
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    # The joint song now sits between Ann's and Bob's songs in the embedding.
    V = emb.transform(X, year, pop, artist)
    tail = V[8, base.shape[1] :]
    np.testing.assert_allclose(tail, emb.artist_weight * (ann + bob) / 2, rtol=1e-4, atol=1e-5)


def _pairs_name_by_name(artist_ids, credits):
    """credit_pairs as it was written first, one credit at a time: the reference."""
    codes: dict[str, int] = {}
    artists, members = [], []
    for artist, credit in zip(artist_ids, credits, strict=True):
        for name in credit_members(credit or "") or [f"#{artist}"]:
            artists.append(artist)
            members.append(codes.setdefault(name, len(codes)))
    return artists, members


def test_credit_pairs_in_bulk_equal_the_name_by_name_reading():
    import pyarrow as pa

    credits = [
        "Bruno Mars", "  Billie   Eilish ", "bruno mars", "Lady Gaga, Bruno Mars", "Drake feat. Future",
        "Drake FT Future", "Calvin Harris (feat. Rihanna)", "Marshmello x Anne-Marie", "Malcolm X", "X Ambassadors",
        "Simon & Garfunkel", "AC/DC", "BEYONCÉ; Beyoncé", "Beyoncé", "Straße", "Tab\tSeparated", "", "   ", None,
        "Sigur Rós", "Featuring", "Earth, Wind & Fire", "The xx", "Ñ", "Future",
    ]  # fmt: skip
    ids = list(range(100, 100 + len(credits)))
    expected = _pairs_name_by_name(ids, credits)
    for given in (credits, pa.array(credits, pa.string())):
        artists, codes = credit_pairs(np.array(ids), given)
        assert (artists.tolist(), codes.tolist()) == expected
    with pytest.raises(ValueError, match="2 artist ids for 1 credits"):
        credit_pairs([1, 2], ["one"])
