"""The article's threshold from clean photos: block maxima and the Gumbel fit on known answers."""
import math

import numpy as np
import pytest

from models.article_threshold import BLOCK, block_maxima, clean_threshold


def test_block_maxima_take_each_tile_partial_ones_included():
    scores = np.arange(5 * 3, dtype=float).reshape(5, 3)
    assert block_maxima(scores, block=2).tolist() == [4, 5, 10, 11, 13, 14]


def test_the_threshold_is_the_gumbel_quantile_a_clean_photo_stays_below():
    """Block maxima drawn from a Gumbel(10, 2): the threshold is the fitted quantile for a photo of 16 blocks."""
    rng = np.random.default_rng(0)
    maps = [np.zeros((4 * BLOCK, 4 * BLOCK)) for _ in range(400)]
    for scores in maps:
        for top in range(0, 4 * BLOCK, BLOCK):
            for left in range(0, 4 * BLOCK, BLOCK):
                scores[top, left] = rng.gumbel(10.0, 2.0)
    rate = 0.05
    expected = 10.0 - 2.0 * math.log(-math.log((1 - rate) ** (1 / 16)))
    threshold = clean_threshold(maps, rate, margin=0.0)  # the fit alone: 6,400 draws' own highest is far above it
    assert threshold == pytest.approx(expected, rel=0.02)
    # a photo of 16 such blocks exceeds it in about `rate` of new draws
    exceeded = np.mean(rng.gumbel(10.0, 2.0, size=(20_000, 16)).max(axis=1) > threshold)
    assert exceeded == pytest.approx(rate, abs=0.01)


def test_the_threshold_is_never_below_the_margin_over_the_highest_held_out_score():
    flat = [np.full((BLOCK, BLOCK), 3.0), np.full((BLOCK, BLOCK), 3.0)]
    assert clean_threshold(flat, 0.01, margin=1.2) == pytest.approx(3.6)
    spiky = [np.full((2 * BLOCK, 2 * BLOCK), 3.0)]
    spiky[0][0, 0] = 50.0
    assert clean_threshold(spiky, 0.4, margin=1.0) >= 50.0
