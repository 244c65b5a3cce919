"""The reference task's Trainer: fit an article model on the clean photos ExampleGen wrote, export it for serving.

No gradient step: the "training" of an article is its memory bank and its
threshold (models/article.py), so the Trainer reads every clean photo of its
split and hands them to the same `fit_article` that `leather inspect-eval` uses.
"""
from __future__ import annotations

import dataclasses
import sys
from typing import TYPE_CHECKING, Any

import tensorflow as tf

from models import features
from models.article import fit_article
from models.article_export import export_article
from models.spec import ArticleConfig

if TYPE_CHECKING:
    from tfx.components.trainer.fn_args_utils import FnArgs

ARTICLE_CONFIG_KEY = "article"


def trainer_custom_config(article: ArticleConfig) -> dict[str, Any]:
    return {ARTICLE_CONFIG_KEY: dataclasses.asdict(article)}


def read_photos(file_patterns: list[str]) -> list[tuple[str, bytes]]:
    """(file name, photo bytes) of every example in ExampleGen's (GZIP) TFRecords, in file order."""
    files = sorted(path for pattern in file_patterns for path in tf.io.gfile.glob(pattern))
    spec = {key: tf.io.FixedLenFeature([], tf.string) for key in (features.PHOTO_NAME_KEY, features.IMAGE_KEY)}
    photos = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        example = tf.io.parse_single_example(record, spec)
        photos.append((example[features.PHOTO_NAME_KEY].numpy().decode(), example[features.IMAGE_KEY].numpy()))
    return photos


def run_fn(fn_args: FnArgs) -> None:
    """Fit the article on the train split's clean photos and export it to the serving model dir."""
    config = ArticleConfig(**fn_args.custom_config[ARTICLE_CONFIG_KEY])
    photos = read_photos(fn_args.train_files)

    def progress(line: str) -> None:
        print(f"  Trainer: {line}", file=sys.stdout, flush=True)

    fitted = fit_article(photos, config, progress)
    progress(
        f"article fitted on {len(photos)} clean photo(s) in {fitted.seconds:.1f} s: {len(fitted.bank):,} bank patches "
        f"of {fitted.patches:,}, threshold {fitted.threshold:.2f}"
    )
    export_article(fitted, fn_args.serving_model_dir)
