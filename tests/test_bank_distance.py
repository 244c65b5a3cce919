"""The in-graph nearest-bank distance, against a NumPy brute force."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import pytest
import tensorflow as tf

from models.bank_distance import QUERY_CHUNK, nearest_distances


def _brute_force(queries: np.ndarray, bank: np.ndarray) -> np.ndarray:
    queries, bank = queries.astype(np.float64), bank.astype(np.float64)
    return np.sqrt(((queries[:, None, :] - bank[None, :, :]) ** 2).sum(axis=2)).min(axis=1)


@pytest.mark.parametrize("count, chunk", [(1000, 64), (77, 10), (5, 1), (300, QUERY_CHUNK)])
def test_chunked_distances_equal_the_brute_force_whatever_the_chunk(count, chunk):
    rng = np.random.default_rng(count)
    queries = rng.standard_normal((count, 152)).astype(np.float32)
    bank = rng.standard_normal((257, 152)).astype(np.float32)

    found = nearest_distances(tf.constant(queries), tf.constant(bank), chunk=chunk).numpy()

    assert found.shape == (count,)
    np.testing.assert_allclose(found, _brute_force(queries, bank), rtol=1e-3)


def test_the_distances_of_features_shaped_like_patch_features():
    """Non-negative, offset, correlated features (as the backbone's are), where |q|^2 - 2 q.b + |b|^2 cancels most."""
    rng = np.random.default_rng(7)
    bank = (3.0 + np.abs(rng.standard_normal((500, 152)))).astype(np.float32)
    queries = (bank[rng.integers(0, 500, 333)] + 0.5 * rng.standard_normal((333, 152))).astype(np.float32)
    found = nearest_distances(queries, bank, chunk=100).numpy()
    np.testing.assert_allclose(found, _brute_force(queries, bank), rtol=1e-3)


def test_a_query_that_is_a_bank_row_is_at_distance_zero():
    rng = np.random.default_rng(1)
    bank = rng.integers(-8, 9, (50, 16)).astype(np.float32)  # small integers: every product and sum is exact
    queries = np.concatenate([bank[[3, 17, 49]], bank[[3]] + 1.0])
    found = nearest_distances(queries, bank, chunk=2).numpy()
    assert found[:3].tolist() == [0.0, 0.0, 0.0]
    assert found[3] == pytest.approx(_brute_force(queries[3:], bank)[0])


def test_a_bank_row_of_real_valued_features_is_found_at_distance_near_zero():
    """Float rounding of the expanded square leaves a residue; it must stay far below a patch-to-patch distance."""
    rng = np.random.default_rng(2)
    bank = (3.0 + np.abs(rng.standard_normal((400, 152)))).astype(np.float32)
    found = nearest_distances(bank[:100], bank, chunk=32).numpy()
    nearest_other = np.sort(np.linalg.norm(bank[:100, None] - bank[None], axis=2), axis=1)[:, 1]
    assert found.max() < 0.01 * nearest_other.min()

