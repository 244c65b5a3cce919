"""The greedy k-centre coreset, on points whose picks are known."""
import numpy as np
import pytest

from models.coreset import PROJECTION, greedy_coreset


def _covering_radius(points: np.ndarray, chosen: np.ndarray) -> float:
    """The largest distance from any point to its nearest chosen point."""
    gaps = np.linalg.norm(points[:, None, :] - points[chosen][None, :, :], axis=2)
    return float(gaps.min(axis=1).max())


def test_each_pick_is_the_point_farthest_from_all_chosen_so_far():
    points = np.array([
        [0.0, 0.0],   # 0: start
        [1.0, 0.0],   # 1: close to the start
        [10.0, 0.0],  # 2: farthest from the start (10)
        [5.0, 6.0],   # 3: 7.8 from the start, 7.8 from 2: farthest from both
        [9.0, 1.0],   # 4: 9.05 from the start, but 1.4 from 2
        [2.0, 2.0],   # 5
    ])
    chosen = greedy_coreset(points, 3)
    assert chosen.tolist() == [0, 2, 3]


def test_the_start_is_the_first_pick_and_the_rest_follow_from_it():
    points = np.array([[0.0], [1.0], [10.0], [4.0]])
    # From 10: 0 is farthest (10), then 4 (4 from 0, 6 from 10) beats 1 (1 from 0).
    assert greedy_coreset(points, 3, start=2).tolist() == [2, 0, 3]


@pytest.mark.parametrize("size", [5, 6, 100])
def test_a_size_of_all_points_or_more_keeps_them_all(size):
    points = np.random.default_rng(0).standard_normal((5, 3))
    assert greedy_coreset(points, size).tolist() == [0, 1, 2, 3, 4]


def test_greedy_picks_cover_a_cloud_tighter_than_random_subsets_of_the_same_size():
    rng = np.random.default_rng(1)
    # A dense blob and a sparse scattering: random samples mostly land in the blob.
    points = np.concatenate([0.3 * rng.standard_normal((900, 2)), rng.uniform(-10, 10, (100, 2))])
    size = 30
    greedy = _covering_radius(points, greedy_coreset(points, size))
    randoms = [_covering_radius(points, rng.choice(len(points), size, replace=False)) for _ in range(20)]
    assert greedy <= min(randoms)
    # Greedy k-centre is within twice the best radius, so well below a random subset's: seen 2.9 vs 5.1 and up.
    assert greedy < 0.8 * min(randoms)


def test_the_covering_radius_never_grows_as_picks_are_added():
    points = np.random.default_rng(2).uniform(0, 1, (400, 2))
    order = greedy_coreset(points, 50)
    radii = [_covering_radius(points, order[:k]) for k in (5, 10, 20, 50)]
    assert radii == sorted(radii, reverse=True)
    # The greedy order is a prefix order: the first k of 50 picks are the k-pick coreset.
    assert greedy_coreset(points, 10).tolist() == order[:10].tolist()


@pytest.mark.parametrize("size", [0, -1])
def test_a_size_below_one_is_refused(size):
    with pytest.raises(ValueError, match="size of at least one"):
        greedy_coreset(np.ones((4, 2)), size)


def test_no_points_are_refused():
    with pytest.raises(ValueError, match="at least one point"):
        greedy_coreset(np.zeros((0, 2)), 3)


def test_the_random_projection_of_wide_points_still_picks_one_point_per_far_cluster():
    rng = np.random.default_rng(3)
    width = 300
    assert width > PROJECTION
    centres = 50.0 * rng.standard_normal((4, width))
    points = np.concatenate([centre + rng.standard_normal((40, width)) for centre in centres])
    cluster = np.repeat(np.arange(4), 40)
    order = rng.permutation(len(points))
    points, cluster = points[order], cluster[order]

    for seed in (0, 1, 2):
        chosen = greedy_coreset(points, 6, seed=seed)
        assert sorted(cluster[chosen[:4]].tolist()) == [0, 1, 2, 3], seed
    # The projection is seeded: the same seed picks the same points.
    assert greedy_coreset(points, 6, seed=5).tolist() == greedy_coreset(points, 6, seed=5).tolist()
