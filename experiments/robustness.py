"""Does a model see the defect or the dye? Each model scored on colour-shifted copies of the same test photos.

Every model is trained once on the same content-hash split of the photos
(6:1:3 train, validation, test by `experiments.folds`), with the pipeline's own
Transform code and `fit_model`, each in a fresh process. It is then scored on
every colour variant of the test photos (`models.colour_variants.VARIANTS`,
the copies the pipeline's ColourVariants component writes, PNG-encoded) at the
decision threshold it calibrated on the validation photos: ROC-AUC, recall of
defects and recall of clean leather, and the worst variant. `leather experiment
robustness` and `benchmarks/robustness_bench.py` run it.
"""
import pathlib
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from experiments.dataset import Examples, transform
from experiments.folds import fold_of
from experiments.isolation import call_in_fresh_process
from models.colour_variants import ORIGINAL, VARIANT_NAMES, shift_and_encode_graph
from models import features
from models.registry import model_entry
from models.spec import PreprocessingConfig, TrainingConfig, model_input_key, with_model_defaults

FOLDS, TEST_FOLDS, VALIDATION_FOLD = 10, (0, 1, 2), 3
CONTENDERS: dict[str, dict[str, Any]] = {
    "mlp": {"model": "mlp"},
    "alexnet": {"model": "alexnet", "augment": False, "epochs": 8},
    "alexnet-augmented": {"model": "alexnet", "augment": True, "epochs": 8},
    "texture": {"model": "texture"},
    "backbone": {"model": "backbone"},
}
"""The reference's MLP and AlexNet (as the pipeline ran them before), AlexNet with augmentation, the texture model,
the frozen-backbone model (the default)."""


def _variant_examples(examples: Examples, test: np.ndarray) -> Examples:
    """The test photos once per colour variant, variant after variant, PNG-encoded, each id suffixed with it.

    One Examples for all variants, so one Transform computes their features:
    each Transform is a Beam pipeline of its own, whose start costs more than
    the features of a few hundred photos.
    """
    shift_and_encode = shift_and_encode_graph(VARIANT_NAMES)
    chosen = np.flatnonzero(test)
    encoded = [shift_and_encode(examples.images[i]).numpy() for i in chosen]
    return Examples(
        images=[pngs[v] for v in range(len(VARIANT_NAMES)) for pngs in encoded],
        labels=np.tile(examples.labels[test], len(VARIANT_NAMES)),
        image_ids=[f"{examples.image_ids[i]}@{name}" for name in VARIANT_NAMES for i in chosen],
        defect_types=[examples.defect_types[i] for _ in VARIANT_NAMES for i in chosen],
    )


def input_name(training: TrainingConfig) -> str:
    """Which prepared input a contender reads: its transformed feature, and for a CNN image its side and channels."""
    preprocessing = with_model_defaults(PreprocessingConfig(), training)
    key = model_input_key(preprocessing, training)
    if key != features.CNN_IMAGE_KEY:
        return key
    return f"{key}-{preprocessing.cnn_resolution}px-{preprocessing.cnn_channels}c"


def prepare_inputs(
    examples: Examples, work: pathlib.Path, models: Sequence[str], log: Callable[[str], None]
) -> dict[str, Any]:
    """Model inputs as .npy files under `work`: train and validation originals, and the test photos per variant.

    One Transform (of the originals, and one of the variants) per CNN image
    form that `models` (keys of CONTENDERS) read; each also gives the block
    counts beside it.
    """
    work.mkdir(parents=True, exist_ok=True)
    folds = fold_of(examples.image_ids, examples.labels, FOLDS)
    test = np.isin(folds, TEST_FOLDS)
    splits = {"train": ~test & (folds != VALIDATION_FOLD), "validation": folds == VALIDATION_FOLD}
    paths: dict[str, Any] = {"labels": {split: examples.labels[chosen].tolist() for split, chosen in splits.items()}, "inputs": {}}
    paths["labels"]["test"] = examples.labels[test].tolist()
    variants = _variant_examples(examples, test)
    count = int(test.sum())
    trainings = [TrainingConfig(**CONTENDERS[name]) for name in models]
    forms = {input_name(t): t for t in trainings if model_entry(t.model).reads_image} or {input_name(trainings[0]): trainings[0]}
    for form, training in forms.items():
        preprocessing = with_model_defaults(PreprocessingConfig(), training)
        wanted = {form: model_input_key(preprocessing, training), features.BLOCK_COUNTS_KEY: features.BLOCK_COUNTS_KEY}
        originals = transform(examples, preprocessing, training, work / "features")
        for split, chosen in splits.items():
            for name, key in wanted.items():
                paths["inputs"][f"{split}/{name}"] = _save(work / f"{split}-{name}.npy", originals[key][chosen])
        log(f"{form}: features of the test photos in {len(VARIANT_NAMES)} colour variants")
        shifted = transform(variants, preprocessing, training, work / "features")
        for v, variant in enumerate(VARIANT_NAMES):
            for name, key in wanted.items():
                paths["inputs"][f"test-{variant}/{name}"] = _save(
                    work / f"test-{variant}-{name}.npy", shifted[key][v * count : (v + 1) * count]
                )
        del originals, shifted
    return paths


def _save(path: pathlib.Path, array: np.ndarray) -> str:
    np.save(path, array)
    return str(path)


def train_and_score(name: str, contender: dict[str, Any], paths: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """Fit one model on the originals and score it on every variant at its own calibrated threshold (fresh process)."""
    import tensorflow as tf

    from models.calibration import binary_scores
    from models.trainer import fit_model

    training = TrainingConfig(**contender)
    key = input_name(training)
    labels = {split: np.asarray(values, np.int64) for split, values in paths["labels"].items()}

    def dataset(split: str, shuffle: bool) -> tf.data.Dataset:
        inputs = np.load(paths["inputs"][f"{split}/{key}"], mmap_mode="r")
        data = tf.data.Dataset.from_tensor_slices((np.asarray(inputs, np.float32), labels[split.split("-")[0]]))
        return (data.shuffle(len(inputs), seed=training.seed) if shuffle else data).batch(training.batch_size)

    tf.keras.utils.set_random_seed(training.seed)
    start = time.perf_counter()
    fitted = fit_model(training, np.load(paths["inputs"][f"train/{key}"], mmap_mode="r").shape[1:],
                       dataset("train", True), dataset("validation", False), labels["train"], run_dir, verbose=0)
    seconds = time.perf_counter() - start
    variants = {}
    for variant in VARIANT_NAMES:
        probability = fitted.model.predict(dataset(f"test-{variant}", False), verbose=0).reshape(-1)
        scores = binary_scores(labels["test"], probability, fitted.decision_threshold)
        clean_recall = scores.true_negatives / max(scores.true_negatives + scores.false_positives, 1)
        variants[variant] = {"auc": scores.auc, "defect_recall": scores.recall, "clean_recall": clean_recall}
    return {
        "model": name,
        "training": {**contender, "epochs_run": len(fitted.history["val_loss"]), "best_epoch": fitted.best_epoch + 1},
        "threshold": fitted.decision_threshold,
        "train_seconds": round(seconds, 1),
        "variants": variants,
        "worst_auc": min(v["auc"] for v in variants.values()),
        "worst_variant": min(variants, key=lambda v: variants[v]["auc"]),
    }


def table(results: list[dict[str, Any]]) -> str:
    """Markdown: one row a model, ROC-AUC per variant, then the recalls as is."""
    head = ["model", *VARIANT_NAMES, "worst", f"defect recall ({ORIGINAL})", f"clean recall ({ORIGINAL})", "train s"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        aucs = [f"{r['variants'][v]['auc']:.3f}" for v in VARIANT_NAMES]
        original = r["variants"][ORIGINAL]
        rows.append("| " + " | ".join([r["model"], *aucs, f"{r['worst_auc']:.3f} ({r['worst_variant']})",
                                       f"{original['defect_recall']:.3f}", f"{original['clean_recall']:.3f}",
                                       f"{r['train_seconds']:.0f}"]) + " |")
    return "\n".join(rows)


def run_robustness(
    examples: Examples,
    work: pathlib.Path,
    models: Sequence[str],
    epochs: int | None = None,
    log: Callable[[str], None] = print,
    each: Callable[[list[dict[str, Any]], dict[str, Any]], None] = lambda results, paths: None,
) -> list[dict[str, Any]]:
    """Train and score each of `models` (keys of CONTENDERS); `epochs` overrides every model's, for a quick look.

    `each(results_so_far, inputs)` runs after every model, so a long run that
    is stopped keeps what it measured.
    """
    paths = prepare_inputs(examples, work, models, log)
    results: list[dict[str, Any]] = []
    for name in models:
        log(f"training and scoring {name}")
        contender = {**CONTENDERS[name], **({"epochs": epochs} if epochs else {})}
        with tempfile.TemporaryDirectory(prefix=f"{name}-", dir=work) as run_dir:
            results.append(call_in_fresh_process(train_and_score, name, contender, paths, run_dir))
        log(table(results[-1:]))
        each(results, paths)
    return results
