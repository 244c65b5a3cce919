"""The synthetic leather generator: the demo and fast-test data set must be reproducible,
correctly labelled, free of a colour shortcut, and show defects that the pipeline can see.
"""
import colorsys
import io
import pathlib
import re

import numpy as np
import pytest
from PIL import Image

from cli.main import main
from ingest import synth
from models.features import BRIGHT_PIXEL_LEVEL, BRIGHT_PIXEL_SHARE, DEFAULT_CLEAN_CLASS, FEATURE_SIZE

COUNT = 42
SEED = 7


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[pathlib.Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("synth")
    return out, synth.generate_dataset(out, COUNT, SEED)


def _files(root: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.jpg"))}


def _gray(pixels: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(pixels).convert("L"), dtype=np.float64)


def _is_bright(gray: np.ndarray) -> bool:
    return (gray > BRIGHT_PIXEL_LEVEL).mean() > BRIGHT_PIXEL_SHARE


def test_same_arguments_give_identical_files_and_another_seed_does_not(dataset, tmp_path):
    out, _ = dataset
    synth.generate_dataset(tmp_path / "again", COUNT, SEED)
    synth.generate_dataset(tmp_path / "other", COUNT, SEED + 1)
    first, again, other = _files(out), _files(tmp_path / "again"), _files(tmp_path / "other")
    assert len(first) == COUNT
    assert again == first
    assert set(other.values()).isdisjoint(first.values())


def test_each_image_depends_only_on_seed_and_index(dataset):
    out, _ = dataset
    path = sorted(out.rglob("synth_000005.jpg"))[0]
    defect = None if path.parent.name == DEFAULT_CLEAN_CLASS else path.parent.name
    buffer = io.BytesIO()
    Image.fromarray(synth.render_patch(synth.image_rng(SEED, 5), defect)).save(
        buffer, format="JPEG", quality=synth.JPEG_QUALITY
    )
    assert buffer.getvalue() == path.read_bytes()


def test_folders_hold_the_requested_classes_as_decodable_jpegs(dataset):
    out, written = dataset
    on_disk = {d.name: len(list(d.glob("*.jpg"))) for d in out.iterdir() if d.is_dir()}
    assert on_disk == written
    assert set(written) == set(synth.CLASSES)
    assert written[DEFAULT_CLEAN_CLASS] == round(COUNT * 0.5)
    defect_counts = [written[name] for name in synth.DEFECT_TYPES]
    assert sum(defect_counts) == COUNT - written[DEFAULT_CLEAN_CLASS]
    assert max(defect_counts) - min(defect_counts) <= 1
    indices = sorted(int(re.fullmatch(r"synth_(\d{6})\.jpg", p.name).group(1)) for p in out.rglob("*.jpg"))
    assert indices == list(range(COUNT))
    for path in out.rglob("*.jpg"):
        with Image.open(path) as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (227, 227))


@pytest.mark.parametrize(
    ("count", "share", "clean"), [(10, 0.3, 7), (7, 0.0, 7), (7, 1.0, 0), (13, 0.5, 6), (1, 0.5, 0)]
)
def test_class_assignment_follows_the_defect_share(count, share, clean):
    labels = list(synth.assign_classes(count, SEED, share))
    assert len(labels) == count
    assert labels.count(DEFAULT_CLEAN_CLASS) == clean == round(count * (1 - share))
    per_type = [labels.count(name) for name in synth.DEFECT_TYPES]
    assert max(per_type) - min(per_type) <= 1
    assert labels == list(synth.assign_classes(count, SEED, share))


def test_progress_reports_up_to_the_total(tmp_path):
    calls = []
    synth.generate_dataset(
        tmp_path, 3, SEED, size=synth.MIN_SIZE, progress=lambda done, total: calls.append((done, total))
    )
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_bright_and_dark_hides_occur_in_both_classes(dataset):
    out, _ = dataset
    shares = {}
    for clean in (True, False):
        folders = [d for d in out.iterdir() if d.is_dir() and (d.name == DEFAULT_CLEAN_CLASS) == clean]
        bright = [_is_bright(_gray(np.asarray(Image.open(p)))) for d in folders for p in d.glob("*.jpg")]
        assert 0 < sum(bright) < len(bright)
        shares[clean] = np.mean(bright)
    assert abs(shares[True] - shares[False]) < 0.3
    assert 0.15 < np.mean(list(shares.values())) < 0.65


@pytest.mark.parametrize("defect", synth.DEFECT_TYPES)
def test_defect_changes_a_local_region_visibly_at_feature_size(defect):
    for seed in range(5):
        clean = synth.render_patch(np.random.default_rng(seed), None)
        marked = synth.render_patch(np.random.default_rng(seed), defect)
        diff = np.abs(_gray(marked) - _gray(clean))
        assert 0.0005 < (diff > 3).mean() < 0.45, "a defect is a local mark on an unchanged hide"
        small_clean, small_marked = (
            np.asarray(Image.fromarray(p).convert("L").resize((FEATURE_SIZE, FEATURE_SIZE), Image.BILINEAR), float)
            for p in (clean, marked)
        )
        assert np.abs(small_marked - small_clean).max() > 0.1 * small_clean.mean()


def _knn_accuracy(features: np.ndarray, labels: np.ndarray, k: int = 7) -> float:
    """Leave-one-out k-nearest-neighbour accuracy on standardised features."""
    scaled = (features - features.mean(0)) / features.std(0)
    dist = np.linalg.norm(scaled[:, None] - scaled[None], axis=2)
    np.fill_diagonal(dist, np.inf)
    votes = labels[np.argsort(dist, axis=1)[:, :k]].mean(1)
    return float(((votes > 0.5) == labels).mean())


def test_mean_colour_does_not_reveal_the_class(tmp_path):
    synth.generate_dataset(tmp_path, 300, SEED, size=synth.MIN_SIZE)
    paths = sorted(tmp_path.rglob("*.jpg"))
    colour = np.array([np.asarray(Image.open(p), float).reshape(-1, 3).mean(0) for p in paths])
    defective = np.array([p.parent.name != DEFAULT_CLEAN_CLASS for p in paths])
    assert _knn_accuracy(colour, defective) < 0.62
    # The check has teeth: a shortcut like the Kaggle set's, defective hides shifted by
    # half a standard deviation of colour, is found.
    assert _knn_accuracy(colour + defective[:, None] * 0.5 * colour.std(0), defective) > 0.68
    luma = colour @ np.array([0.299, 0.587, 0.114])
    standard_error = np.hypot(
        luma[defective].std() / defective.sum() ** 0.5, luma[~defective].std() / (~defective).sum() ** 0.5
    )
    assert abs(luma[defective].mean() - luma[~defective].mean()) < 3 * standard_error


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": 0}, "count"),
        ({"count": -5}, "count"),
        ({"defect_share": -0.1}, "defect_share"),
        ({"defect_share": 1.5}, "defect_share"),
        ({"defect_share": float("nan")}, "defect_share"),
        ({"size": synth.MIN_SIZE - 1}, "size"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments_raise_before_writing(tmp_path, kwargs, message):
    arguments = {"out_dir": tmp_path / "out", "count": 4, "seed": SEED, **kwargs}
    with pytest.raises(ValueError, match=message):
        synth.generate_dataset(**arguments)
    assert not (tmp_path / "out").exists()


def test_unknown_defect_type_is_rejected():
    with pytest.raises(ValueError, match="unknown defect type"):
        synth.render_patch(np.random.default_rng(0), "scratch")


# The colour trap (`--colour-confound`): the classes differ in hue as well as in defects.

CLEAN_HUES, DEFECTIVE_HUES = (15.0, 50.0), (195.0, 230.0)


@pytest.fixture(scope="module")
def confounded(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("confound") / "images"
    synth.generate_dataset(out, 120, SEED, size=synth.MIN_SIZE, colour_confound=True)
    return out


def _mean_colour(path: pathlib.Path) -> np.ndarray:
    return np.asarray(Image.open(path), float).reshape(-1, 3).mean(0)


def test_colour_confound_puts_each_class_in_its_own_hue_band(confounded):
    paths = sorted(confounded.rglob("*.jpg"))
    assert len(paths) == 120
    for path in paths:
        hue = 360 * colorsys.rgb_to_hsv(*(_mean_colour(path) / 255))[0]
        low, high = CLEAN_HUES if path.parent.name == DEFAULT_CLEAN_CLASS else DEFECTIVE_HUES
        assert low <= hue <= high, (path, hue)
    colour = np.array([_mean_colour(p) for p in paths])
    defective = np.array([p.parent.name != DEFAULT_CLEAN_CLASS for p in paths])
    assert _knn_accuracy(colour, defective) > 0.95


def test_colour_confound_changes_the_hue_not_the_brightness_or_the_defects(confounded, tmp_path):
    synth.generate_dataset(tmp_path / "plain", 120, SEED, size=synth.MIN_SIZE)
    differences = []
    for path in sorted(confounded.rglob("*.jpg")):
        plain = tmp_path / "plain" / path.relative_to(confounded)
        differences.append(np.abs(_gray(np.asarray(Image.open(path))) - _gray(np.asarray(Image.open(plain)))).mean())
    assert np.median(differences) < 2.0 and max(differences) < 6.0


def test_colour_confound_is_deterministic_and_unlike_the_plain_set(confounded, tmp_path):
    synth.generate_dataset(tmp_path / "again", 120, SEED, size=synth.MIN_SIZE, colour_confound=True)
    synth.generate_dataset(tmp_path / "plain", 120, SEED, size=synth.MIN_SIZE)
    assert _files(tmp_path / "again") == _files(confounded)
    assert set(_files(tmp_path / "plain").values()).isdisjoint(_files(confounded).values())


def test_colour_confound_is_documented_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["data", "synth", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--colour-confound" in help_text and "hue" in help_text


def test_colour_confound_cli_writes_the_trap(tmp_path):
    assert main(["data", "synth", str(tmp_path / "out"), "--count", "6", "--colour-confound"]) == 0
    hues = {p.parent.name == DEFAULT_CLEAN_CLASS: 360 * colorsys.rgb_to_hsv(*(_mean_colour(p) / 255))[0]
            for p in (tmp_path / "out").rglob("*.jpg")}
    assert CLEAN_HUES[0] <= hues[True] <= CLEAN_HUES[1] and DEFECTIVE_HUES[0] <= hues[False] <= DEFECTIVE_HUES[1]
