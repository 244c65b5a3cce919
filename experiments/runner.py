"""Run a grid of experiments fold by fold, resumably, with the pipeline's own features and trainer.

Each finished (experiment, fold) is appended to `results.jsonl` at once, so an
interrupted grid resumes where it stopped; features are cached per
preprocessing setting. Each fold trains in a fresh process (experiments.isolation)
that reads the experiment's inputs from a memory-mapped file. Folds, validation
folds and subsets are chosen by image content hash (experiments.folds), so
duplicates never straddle train and test.
"""
import dataclasses
import json
import pathlib
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from experiments.dataset import Examples, transform
from experiments.folds import brightness_subset, fold_of, ratio_subset
from experiments.grids import Experiment
from experiments.isolation import call_in_fresh_process
from models import features
from models.calibration import binary_scores
from models.spec import model_input_key
from models.trainer import fit_model

RESULTS_FILE = "results.jsonl"


def load_results(out: pathlib.Path) -> list[dict]:
    path = out / RESULTS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _params(experiment: Experiment) -> dict:
    return {
        **dataclasses.asdict(experiment.preprocessing),
        **dataclasses.asdict(experiment.training),
        "ratio": experiment.ratio,
        "brightness": experiment.brightness,
    }


def _dataset(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int | None) -> tf.data.Dataset:
    data = tf.data.Dataset.from_tensor_slices((x.astype(np.float32), y.astype(np.int64)))
    if seed is not None:
        data = data.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    return data.batch(batch_size)


def run_fold(
    experiment: Experiment, inputs_path: str, labels: np.ndarray, folds: np.ndarray, fold: int, k: int, work: pathlib.Path
) -> dict:
    """Train on all folds but two, stop early on the next fold, score on this one.

    The inputs are the experiment's `.npy`, memory-mapped. The best-epoch
    checkpoint lives only as long as the fold: an AlexNet one is hundreds of MB,
    and a grid's worth filled 9 GB before they were dropped.
    """
    inputs = np.load(inputs_path, mmap_mode="r")
    test = folds == fold
    validation = folds == (fold + 1) % k
    train = ~(test | validation)
    training = experiment.training
    tf.keras.utils.set_random_seed(training.seed + fold)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"{experiment.name}-fold{fold}-", dir=work) as run_dir:
        fitted = fit_model(
            training,
            input_shape=inputs.shape[1:],
            train=_dataset(inputs[train], labels[train], training.batch_size, training.seed + fold),
            validation=_dataset(inputs[validation], labels[validation], training.batch_size, None),
            train_labels=labels[train],
            run_dir=run_dir,
            verbose=0,
        )
    probabilities = fitted.model.predict(_dataset(inputs[test], labels[test], 256, None), verbose=0).reshape(-1)
    scores = binary_scores(labels[test], probabilities, fitted.decision_threshold)
    return {
        "experiment": experiment.name,
        "fold": fold,
        "params": _params(experiment),
        "examples": {"train": int(train.sum()), "validation": int(validation.sum()), "test": int(test.sum())},
        "best_epoch": fitted.best_epoch,
        "threshold": fitted.decision_threshold,
        "scores": {**dataclasses.asdict(scores), "confusion_matrix": scores.confusion_matrix},
        "seconds": time.perf_counter() - start,
    }


def _subset(experiment: Experiment, examples: Examples, brightness: np.ndarray) -> np.ndarray:
    chosen = brightness_subset(brightness, experiment.brightness)
    if experiment.ratio is None:
        return chosen
    within = ratio_subset([examples.image_ids[i] for i in chosen], examples.labels[chosen], experiment.ratio)
    return chosen[within]


def run_grid(
    experiments: list[Experiment],
    examples: Examples,
    out: pathlib.Path,
    k: int,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
    quiet: bool = True,
) -> tuple[list[dict], dict[str, str]]:
    """Run every (experiment, fold) not yet in results.jsonl.

    Returns all results, old and new, and the experiments whose subset this data
    cannot supply (say, a 1:3 ratio among the few bright photos) with the reason.
    `quiet` hides the fold processes' TensorFlow C++ log lines.
    """
    if k < 3:
        raise ValueError(f"each fold needs a test fold, a validation fold and training folds: k must be >= 3, got {k}")
    out.mkdir(parents=True, exist_ok=True)
    results = load_results(out)
    done = {(r["experiment"], r["fold"]) for r in results}
    todo = [(e, f) for e in experiments for f in range(k) if (e.name, f) not in done]
    if done:
        log(f"resuming: {len(done)} fold(s) already done, {len(todo)} to run")
    started, finished, skipped = time.perf_counter(), 0, {}
    with (out / RESULTS_FILE).open("a") as sink:
        for experiment in experiments:
            if not any(e is experiment for e, _ in todo):
                continue
            transformed = transform(examples, experiment.preprocessing, experiment.training, out / "features")
            try:
                subset = _subset(experiment, examples, transformed[features.BRIGHTNESS_KEY])
                folds = fold_of([examples.image_ids[i] for i in subset], examples.labels[subset], k)
            except ValueError as error:
                skipped[experiment.name] = str(error)
                log(f"skipping {experiment.name}: {error}")
                todo = [(e, f) for e, f in todo if e is not experiment]  # the progress count and estimate leave it out
                continue
            labels = examples.labels[subset]
            (out / "runs").mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=f"{experiment.name}-inputs-", dir=out / "runs") as scratch:
                inputs_path = pathlib.Path(scratch) / "inputs.npy"
                np.save(inputs_path, transformed[model_input_key(experiment.preprocessing, experiment.training)][subset])
                for fold in range(k):
                    if (experiment.name, fold) in done:
                        continue
                    elapsed = time.perf_counter() - started
                    eta = f", about {elapsed / finished * (len(todo) - finished) / 60:.1f} min left" if finished else ""
                    log(f"[{finished + 1}/{len(todo)}] {experiment.name} fold {fold + 1}/{k} ({len(subset)} images){eta}")
                    record = call_in_fresh_process(
                        run_fold, experiment, str(inputs_path), labels, folds, fold, k, out / "runs", quiet=quiet
                    )
                    sink.write(json.dumps(record) + "\n")
                    sink.flush()
                    results.append(record)
                    finished += 1
    return results, skipped
