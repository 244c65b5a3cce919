"""The article model on synthetic hides whose defects are known: fitted on clean photos, exported, served in process.

One article: a 960 px brown hide (seed 0) cut into nine 320 px photos, three of
them the clean references. The same hide rendered with a cut (the same
stream, so every pixel outside the cut's window is the same) gives the
defective photo; the same hide recoloured gives another article's leather.
The model is fitted and exported once, and loaded back as TF Serving would:
about 25 s, so the tests on it are `slow`; the refusals fit on their own.
"""
import dataclasses
import functools
import io
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

from ingest.synth import JPEG_QUALITY, image_rng
from ingest.synth_hide import HideSpec, render_hide
from inspection.article_client import ArticleMap
from models import article, patch_features
from models.article import ArticleFitError, fit_article
from models.article_export import (
    ANOMALY_MAP_OUTPUT,
    ANOMALY_MAP_SIGNATURE,
    ANOMALY_SCORE_OUTPUT,
    ArticleModel,
    export_article,
)
from models.serving_contract import IMAGE_BYTES_INPUT, LABEL_OUTPUT, PREDICT_IMAGE_SIGNATURE, PROBABILITY_OUTPUT
from models.spec import ArticleConfig

SEED = 0
TILE, TILES = 320, 3
"""Photos are TILE px squares of a TILES x TILES hide."""
BANK = 2000
NEAR_DEFECT = 16
"""Pixels within which the map's highest cell counts as on the defect."""
CONFIG = ArticleConfig(scale=1.0, bank_size=BANK)
KEYS = [(row, column) for row in range(TILES) for column in range(TILES)]


@functools.lru_cache(maxsize=None)
def _render(colour: str = "brown", defects: tuple[str, ...] = ()):
    side = TILE * TILES
    return render_hide(image_rng(SEED, 0), HideSpec(side, side, colour, 1.0, defects))


def _tile(array: np.ndarray, key: tuple[int, int]) -> np.ndarray:
    row, column = key
    return array[row * TILE : (row + 1) * TILE, column * TILE : (column + 1) * TILE]


def _jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _name(key: tuple[int, int]) -> str:
    return f"tile_{key[0]}{key[1]}.jpg"


def _defect_key() -> tuple[int, int]:
    """The photo the cut lies in; every other photo of the cut hide is pixel for pixel the clean one."""
    cut_hide = _render(defects=("cut",))
    holding = [key for key in KEYS if _tile(cut_hide.mask, key).any()]
    assert len(holding) == 1, f"the cut lies in photos {holding}"
    return holding[0]


def _references() -> list[tuple[str, bytes]]:
    """The first three clean photos in reading order that hold no cut in the cut hide."""
    keys = [key for key in KEYS if key != _defect_key()][:3]
    return [(_name(key), _jpeg(_tile(_render().pixels, key))) for key in keys]


@dataclasses.dataclass
class Article:
    fitted: article.FittedArticle
    export_dir: str
    served: object
    """The SavedModel as tf.saved_model.load gives it."""
    references: list[tuple[str, bytes]]
    clean: dict[str, bytes]
    """Clean photos of the article that are not references, by name."""
    defective: bytes
    defect_mask: np.ndarray
    """[TILE, TILE] bool: the cut's pixels in `defective`."""
    defective_name: str
    other_colours: dict[str, bytes]
    """The first clean test photo's tile of the same hide in other colours."""

    def map_of(self, photo: bytes) -> ArticleMap:
        outputs = self.served.signatures[ANOMALY_MAP_SIGNATURE](**{IMAGE_BYTES_INPUT: tf.constant(photo)})
        return ArticleMap.of({key: value.numpy() for key, value in outputs.items()})


@pytest.fixture(scope="module")
def fitted_article(tmp_path_factory) -> Article:
    clean_hide, cut_hide, defect_key = _render(), _render(defects=("cut",)), _defect_key()
    references = _references()
    clean = {_name(key): _jpeg(_tile(clean_hide.pixels, key)) for key in KEYS if _name(key) not in dict(references)}
    first_clean = next(key for key in KEYS if _name(key) in clean)
    other_colours = {colour: _jpeg(_tile(_render(colour).pixels, first_clean)) for colour in ("tan", "black")}

    fitted = fit_article(references, CONFIG)
    export_dir = str(tmp_path_factory.mktemp("article") / "1")
    export_article(fitted, export_dir)  # 15 of the fixture's 23 s: tracing the three signatures
    return Article(
        fitted=fitted,
        export_dir=export_dir,
        served=tf.saved_model.load(export_dir),
        references=references,
        clean=clean,
        defective=_jpeg(_tile(cut_hide.pixels, defect_key)),
        defect_mask=_tile(cut_hide.mask, defect_key),
        defective_name=_name(defect_key),
        other_colours=other_colours,
    )


@pytest.mark.slow
def test_the_fit_keeps_a_coreset_bank_and_a_threshold_above_every_held_out_reference(fitted_article):
    fitted = fitted_article.fitted
    assert fitted.bank.shape == (BANK, patch_features.WIDTH)
    assert fitted.patches == 3 * (TILE // patch_features.CELL) ** 2
    assert fitted.photo_size == (TILE, TILE)
    assert sorted(fitted.held_out_maxima) == sorted(name for name, _ in fitted_article.references)
    assert fitted.threshold >= CONFIG.threshold_margin * max(fitted.held_out_maxima.values())


@pytest.mark.slow
def test_a_planted_cut_is_where_the_map_peaks_and_scores_above_every_clean_photo(fitted_article):
    answer = fitted_article.map_of(fitted_article.defective)
    heat = answer.heat()
    assert heat.shape == (TILE, TILE)
    peak_y, peak_x = np.unravel_index(np.argmax(heat), heat.shape)
    defect_y, defect_x = np.nonzero(fitted_article.defect_mask)
    gap = np.hypot(defect_y - peak_y, defect_x - peak_x).min()
    clean_scores = {name: fitted_article.map_of(photo).score for name, photo in fitted_article.clean.items()}

    assert gap <= NEAR_DEFECT, f"peak at ({peak_x}, {peak_y}) is {gap:.0f} px from the cut"
    # Seen: the cut 43.0, the highest clean photo 27.3.
    assert answer.score > max(clean_scores.values()), (answer.score, clean_scores)
    assert answer.score >= answer.threshold


@pytest.mark.slow
def test_a_clean_photo_of_the_article_that_was_no_reference_raises_no_pixel_to_the_threshold(fitted_article):
    threshold = fitted_article.fitted.threshold
    highest = {name: float(fitted_article.map_of(photo).heat().max()) for name, photo in fitted_article.clean.items()}
    # Seen on seed 0: threshold 30.9, clean photos 24.1 to 27.3 (seeds 3 and 5 of the same scene: 29.1 vs 27.7
    # and 40.5 vs 25.8, i.e. a false alarm; see the report that came with this test).
    assert max(highest.values()) < threshold, (threshold, highest)


@pytest.mark.parametrize("colour", ["tan", "black"])
@pytest.mark.slow
def test_the_same_leather_in_another_colour_scores_above_every_clean_photo_of_the_article(fitted_article, colour):
    other = fitted_article.map_of(fitted_article.other_colours[colour]).score
    clean = max(fitted_article.map_of(photo).score for photo in fitted_article.clean.values())
    # Seen: tan 31.7, black 32.8, clean at most 27.3.
    assert other > clean, (colour, other, clean)


@pytest.mark.slow
def test_the_saved_signature_gives_the_map_in_memory_and_the_brute_force_nearest_bank_distance(fitted_article):
    photo = next(iter(fitted_article.clean.values()))
    served = fitted_article.map_of(photo)
    in_memory = ArticleModel(fitted_article.fitted).photo_map(tf.constant(photo))
    np.testing.assert_allclose(in_memory[ANOMALY_MAP_OUTPUT].numpy(), served.anomaly_map, rtol=1e-4, atol=1e-4)

    grid, size = article.feature_function(CONFIG)(tf.constant(photo))[:2]
    queries = grid.numpy().reshape(-1, patch_features.WIDTH).astype(np.float64)
    bank = fitted_article.fitted.bank.astype(np.float64)
    squared = (queries**2).sum(1)[:, None] - 2 * queries @ bank.T + (bank**2).sum(1)[None]
    brute_force = np.sqrt(np.maximum(squared.min(axis=1), 0)).reshape(grid.shape[:2])

    assert served.anomaly_map.shape == (TILE // patch_features.CELL,) * 2
    assert tuple(size.numpy()) == served.image_size == served.processing_size == (TILE, TILE)
    np.testing.assert_allclose(served.anomaly_map, brute_force, rtol=1e-3)
    assert served.score == pytest.approx(brute_force.max(), rel=1e-3)


@pytest.mark.slow
def test_the_batch_signature_scores_each_photo_as_its_map_does(fitted_article):
    photos = [fitted_article.defective, next(iter(fitted_article.clean.values()))]
    outputs = fitted_article.served.signatures[PREDICT_IMAGE_SIGNATURE](**{IMAGE_BYTES_INPUT: tf.constant(photos)})
    scores = outputs[ANOMALY_SCORE_OUTPUT].numpy()
    threshold = fitted_article.fitted.threshold
    np.testing.assert_allclose(scores, [fitted_article.map_of(p).score for p in photos], rtol=1e-5)
    np.testing.assert_allclose(outputs[PROBABILITY_OUTPUT].numpy(), scores / (scores + threshold), rtol=1e-5)
    assert outputs[LABEL_OUTPUT].numpy().tolist() == [1, 0]


@pytest.mark.slow
def test_the_saved_model_holds_only_registered_kernels_and_the_bank_in_its_checkpoint(fitted_article):
    with tf.io.gfile.GFile(os.path.join(fitted_article.export_dir, "saved_model.pb"), "rb") as file:
        graph = saved_model_pb2.SavedModel.FromString(file.read()).meta_graphs[0].graph_def
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops |= {node.op for node in function.node_def}
    assert ops, "no op read from the graph"
    assert not [op for op in ops if op.startswith(("PyFunc", "EagerPyFunc"))]
    assert not [op for op in sorted(ops) if op_def_registry.get(op) is None]

    checkpoint = tf.train.load_checkpoint(os.path.join(fitted_article.export_dir, "variables", "variables"))
    shapes = checkpoint.get_variable_to_shape_map()
    banks = [name for name, shape in shapes.items() if shape == [BANK, patch_features.WIDTH]]
    assert len(banks) == 1, shapes
    np.testing.assert_array_equal(checkpoint.get_tensor(banks[0]), fitted_article.fitted.bank)
    # The bank is not also a constant in the graph: no Const node holds BANK x WIDTH floats.
    consts = [node for node in graph.node if node.op == "Const"]
    for function in graph.library.function:
        consts += [node for node in function.node_def if node.op == "Const"]
    assert not [
        node.name for node in consts
        if [d.size for d in node.attr["value"].tensor.tensor_shape.dim] == [BANK, patch_features.WIDTH]
    ]


def test_no_photo_is_refused():
    with pytest.raises(ArticleFitError, match="no clean photo"):
        fit_article([], CONFIG)


@pytest.mark.parametrize("colour", [
    pytest.param((128, 128, 128), id="gray"),
    pytest.param((110, 72, 44), id="brown"),
])
def test_a_flat_one_colour_photo_is_refused_by_name(colour):
    flat = _jpeg(np.full((TILE, TILE, 3), colour, np.uint8))
    with pytest.raises(ArticleFitError, match=r"^flat\.jpg: the photo is one flat colour"):
        fit_article([_references()[0], ("flat.jpg", flat)], CONFIG)


def test_photos_of_two_sizes_are_refused_naming_both_sizes():
    name, photo = _references()[0]
    pixels = np.asarray(Image.open(io.BytesIO(photo)))
    with pytest.raises(ArticleFitError) as raised:
        fit_article([(name, photo), ("short.jpg", _jpeg(pixels[:256]))], CONFIG)
    message = str(raised.value)
    assert message.startswith("short.jpg: 320x256 px")
    assert f"{name} is 320x320 px" in message


def _hole(pixels: np.ndarray) -> np.ndarray:
    """A dark round hole 48 px across in the middle of the photo: a defect nobody could call leather."""
    rows, columns = np.ogrid[: pixels.shape[0], : pixels.shape[1]]
    holed = pixels.copy()
    holed[(rows - pixels.shape[0] // 2) ** 2 + (columns - pixels.shape[1] // 2) ** 2 <= 24**2] = (12, 10, 9)
    return holed


def test_a_reference_with_a_strong_planted_defect_is_refused_by_name():
    references = _references()
    spare = next(key for key in KEYS if _name(key) not in dict(references))
    holed = _hole(_tile(_render().pixels, spare))
    with pytest.raises(ArticleFitError, match=r"^holed\.jpg: its most unusual patch") as raised:
        fit_article([*references, ("holed.jpg", _jpeg(holed))], CONFIG)
    assert "may show a defect" in str(raised.value)


def test_a_reference_with_a_generated_cut_is_refused_by_name():
    cut = _jpeg(_tile(_render(defects=("cut",)).pixels, _defect_key()))
    with pytest.raises(ArticleFitError, match=r"^cut\.jpg: its most unusual patch"):
        fit_article([*_references(), ("cut.jpg", cut)], CONFIG)
