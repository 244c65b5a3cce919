"""Fitting an article model: one leather learnt from its clean photos, no defect photo needed.

A classifier trained on one set of leathers does not know the next one
(docs/models.md); a handful of clean photos of the new leather does. Every
patch of those photos (models/patch_features.py) goes into a pool, a greedy
coreset of it becomes the memory bank (models/coreset.py), and a served photo's
patch is as anomalous as it is far from its nearest bank patch.

The decision threshold comes from the clean photos themselves: each photo is
scored against the bank without its own patches (with one photo, without the
patches of its own neighbourhood), and the threshold is where a clean photo
would score above it with probability `false_alarm_rate`, by an extreme-value
fit of those held-out scores (models/article_threshold.py).
The same held-out scores name a reference that differs from the others (a
defect among the references) before it teaches the bank that the defect is
leather.

Without clean photos a hide is its own reference (`self_referenced_scores`):
the same held-out distance, each patch against the rest of its own hide
outside its neighbourhood, on features computed here (`photo_features`) or
answered by a served model's `patch_features` signature (models/patch_signature.py).
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from models import patch_features
from models.article_map import photo_resolution_map
from models.article_threshold import clean_threshold
from models.coreset import greedy_coreset
from models.image_header import stated_dpi
from models.spec import ArticleConfig

NEIGHBOURHOOD_EXCLUSION = 12
"""With a single reference, a patch's own neighbours within this many patches (96 processing px) are not its
reference: their features overlap its own receptive field and would hide a defect from itself."""
FLAT_PHOTO_SPREAD = 1.0
"""Largest per-channel pixel standard deviation (0-255 scale) under which a photo is one flat colour, not leather."""
_SCORE_ROWS = 1024
"""Patches whose distances to the bank are computed at once when fitting."""

Photo = tuple[str, bytes]
"""(name for messages, encoded JPEG or PNG bytes)."""


class ArticleFitError(ValueError):
    """The clean photos cannot make an article model; the message names the photo."""


@dataclasses.dataclass(frozen=True)
class FittedArticle:
    bank: np.ndarray
    """[bank patches, patch_features.WIDTH] float32."""
    threshold: float
    config: ArticleConfig
    photo_size: tuple[int, int]
    """(width, height) of every reference photo."""
    dpi: float | None
    """The resolution the reference photos' files state (the first that states one), None when none does."""
    held_out_maxima: dict[str, float]
    """Each reference's highest patch score against the bank without its own patches."""
    patches: int
    """Patches of all references, before the coreset."""
    seconds: float


@dataclasses.dataclass(frozen=True)
class _PhotoPatches:
    name: str
    size: tuple[int, int]
    features: np.ndarray
    """[rows, columns, WIDTH]."""


def feature_function(config: ArticleConfig) -> Callable[[tf.Tensor], tuple[tf.Tensor, ...]]:
    """Encoded photo -> (patch features [rows, columns, WIDTH], photo (width, height), processing (width, height),
    pixel spread), traced once."""
    extractor = patch_features.mid_level_extractor()

    @tf.function(autograph=False, input_signature=[tf.TensorSpec([], tf.string)])
    def features(image_bytes: tf.Tensor) -> tuple[tf.Tensor, ...]:
        pixels, size = patch_features.photo_pixels(image_bytes, config.scale, config.colour_blind)
        processing = tf.reverse(tf.shape(pixels)[:2], [0])
        spread = tf.reduce_max(tf.math.reduce_std(pixels, axis=[0, 1]))  # per channel: flat brown is not leather
        return patch_features.patch_features(extractor, pixels), size, processing, spread

    return features


def _extract(photos: Sequence[Photo], config: ArticleConfig, progress: Callable[[str], None]) -> list[_PhotoPatches]:
    features = feature_function(config)
    extracted = []
    for number, (name, data) in enumerate(photos, 1):
        try:
            grid, size, _, spread = (value.numpy() for value in features(tf.constant(data)))
        except tf.errors.InvalidArgumentError as error:
            raise ArticleFitError(f"{name}: not a photo the model can read ({error.message.splitlines()[0]})") from None
        if spread < FLAT_PHOTO_SPREAD:
            raise ArticleFitError(f"{name}: the photo is one flat colour (pixel spread {spread:.2f} of 255), not leather")
        size = (int(size[0]), int(size[1]))
        if extracted and size != extracted[0].size:
            first = extracted[0]
            raise ArticleFitError(
                f"{name}: {size[0]}x{size[1]} px, but {first.name} is {first.size[0]}x{first.size[1]} px; an article's "
                "clean photos must share one size (and scale): crop or resize them alike"
            )
        extracted.append(_PhotoPatches(name, size, grid))
        progress(f"features of clean photo {number}/{len(photos)}: {name}")
    return extracted


def held_out_scores(photos: Sequence[_PhotoPatches], bank: np.ndarray, source: np.ndarray) -> list[np.ndarray]:
    """Per photo, [rows * columns] each patch's distance to its nearest bank patch taken from elsewhere.

    `source` [bank, 3] says where each bank patch came from: (photo, row, column).
    With several photos, elsewhere is another photo; with one, farther than
    NEIGHBOURHOOD_EXCLUSION patches from the patch scored.
    """
    bank = np.asarray(bank, np.float32)
    bank_norms = np.einsum("ij,ij->i", bank, bank)
    scores = []
    for index, photo in enumerate(photos):
        rows, columns, width = photo.features.shape
        queries = photo.features.reshape(-1, width)
        where = np.stack(np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij"), -1).reshape(-1, 2)
        where, places = where.astype(np.int32), source[:, 1:].astype(np.int32)
        own = source[:, 0] == index
        distances = np.empty(len(queries), np.float32)
        for start in range(0, len(queries), _SCORE_ROWS):
            block = queries[start : start + _SCORE_ROWS]
            squared = np.einsum("ij,ij->i", block, block)[:, None] - 2.0 * block @ bank.T + bank_norms[None, :]
            if len(photos) > 1:
                squared[:, own] = np.inf
            else:
                near = np.abs(where[start : start + _SCORE_ROWS, None, :] - places[None]).max(axis=2)
                squared[near <= NEIGHBOURHOOD_EXCLUSION] = np.inf
            distances[start : start + len(block)] = np.sqrt(np.maximum(squared.min(axis=1), 0.0))
        scores.append(distances)
    return scores


def _refuse_outliers(photos: Sequence[_PhotoPatches], maxima: np.ndarray, config: ArticleConfig) -> None:
    """ArticleFitError naming a reference whose highest held-out score passes max_reference_outlier x the median's."""
    typical = float(np.median(maxima))
    worst = int(np.argmax(maxima))
    if len(photos) > 1 and maxima[worst] > config.max_reference_outlier * typical:
        raise ArticleFitError(
            f"{photos[worst].name}: its most unusual patch scores {maxima[worst]:.2f} against the other clean photos, "
            f"{maxima[worst] / typical:.1f} times the typical {typical:.2f}; it may show a defect. Leave it out, or "
            "raise --max-reference-outlier if it is sound leather"
        )


def fit_article(
    photos: Sequence[Photo], config: ArticleConfig = ArticleConfig(), progress: Callable[[str], None] = lambda _: None
) -> FittedArticle:
    """The article model's bank and threshold from clean photos of one leather; ArticleFitError naming a bad photo."""
    if not photos:
        raise ArticleFitError("no clean photo to fit the article on: give at least one")
    start = time.perf_counter()
    extracted = _extract(photos, config, progress)
    pool = np.concatenate([photo.features.reshape(-1, patch_features.WIDTH) for photo in extracted])
    source = np.concatenate([
        np.column_stack([np.full(rows * columns, index), *np.divmod(np.arange(rows * columns), columns)])
        for index, (rows, columns, _) in enumerate(photo.features.shape for photo in extracted)
    ])
    progress(f"coreset: {min(config.bank_size, len(pool)):,} of {len(pool):,} patches")
    chosen = greedy_coreset(pool, config.bank_size)
    bank, bank_source = pool[chosen], source[chosen]
    held_out = [
        scores.reshape(photo.features.shape[:2])
        for photo, scores in zip(extracted, held_out_scores(extracted, bank, bank_source), strict=True)
    ]
    maxima = np.array([scores.max() for scores in held_out])
    _refuse_outliers(extracted, maxima, config)
    return FittedArticle(
        bank=bank,
        threshold=clean_threshold(held_out, config.false_alarm_rate, config.threshold_margin),
        config=config,
        photo_size=extracted[0].size,
        dpi=next((dpi for _, data in photos if (dpi := stated_dpi(data)) is not None), None),
        held_out_maxima={photo.name: float(value) for photo, value in zip(extracted, maxima, strict=True)},
        patches=len(pool),
        seconds=time.perf_counter() - start,
    )


def photo_features(
    photo: bytes, config: ArticleConfig = ArticleConfig(), features: Callable | None = None
) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
    """In-process, what the served `patch_features` signature answers: ([rows, columns, WIDTH] patch features,
    photo (width, height), processing (width, height)). `features`: a `feature_function(config)` to reuse."""
    grid, size, processing, _ = (value.numpy() for value in (features or feature_function(config))(tf.constant(photo)))
    return grid, (int(size[0]), int(size[1])), (int(processing[0]), int(processing[1]))


def self_referenced_scores(grid: np.ndarray, bank_size: int = ArticleConfig().bank_size) -> np.ndarray:
    """[rows, columns] each patch's distance to the nearest patch of the same hide outside its neighbourhood.

    Most of any hide is sound, so a patch is far from all the rest of its hide
    (beyond NEIGHBOURHOOD_EXCLUSION patches; a greedy coreset of at most
    `bank_size` of them) only where the hide differs from itself. The features
    may come from anywhere: `photo_features` in-process or the served
    `patch_features` signature. ValueError when the photo is too small for a
    patch to have any reference outside its neighbourhood.
    """
    grid = np.asarray(grid, np.float32)
    rows, columns, width = grid.shape
    pool = grid.reshape(-1, width)
    source = np.column_stack([np.zeros(len(pool), np.int64), *np.divmod(np.arange(len(pool)), columns)])
    chosen = greedy_coreset(pool, bank_size)
    (scores,) = held_out_scores([_PhotoPatches("photo", (columns, rows), grid)], pool[chosen], source[chosen])
    if not np.isfinite(scores).all():
        side = (NEIGHBOURHOOD_EXCLUSION + 1) * patch_features.CELL
        raise ValueError(
            f"the photo is {columns}x{rows} patches of {patch_features.CELL} px, too small to be its own reference: "
            f"some patch has no other patch farther than {side - patch_features.CELL} px; send a larger photo"
        )
    return scores.reshape(rows, columns)


def self_referenced_map(photo: bytes, config: ArticleConfig = ArticleConfig()) -> tuple[np.ndarray, float]:
    """A hide scored against itself, for a leather nobody fitted: ([height, width] map on the photo, seconds).

    `self_referenced_scores` on the photo's features computed in-process, laid
    on the photo's pixels. The scores are distances as an article's are, but
    with no clean photo there is no threshold: they rank (inspection/dense_inspection.py
    turns them into the hide's own spreads above its median).
    """
    start = time.perf_counter()
    grid, size, processing = photo_features(photo, config)
    heat = photo_resolution_map(self_referenced_scores(grid, config.bank_size), size, processing)
    return heat, time.perf_counter() - start
