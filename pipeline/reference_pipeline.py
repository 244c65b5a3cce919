"""The reference task's graph: clean photos of one leather article in, a pushed article model out.

The same TFX pipeline as the classifier's (pipeline/pipeline.py), minus what
has no meaning without defect labels to learn from: ImportExampleGen reads the
clean photos as the train split and any validation photos (with their masks)
as a second split, statistics and the curated article schema and the data gate
check both, the Trainer fits the article (models/article_trainer.py), the
ArticleEvaluator scores and gates image and pixel ROC-AUC on the validation
photos, and the Pusher pushes a blessed model. There is no Transform: an
article's only preprocessing is the backbone graph inside the SavedModel,
which must be the graph that serves, and a pass-through Transform cost a
minute of Beam for nothing. No span window, no colour variants (colour is
part of an article), no baseline comparison (each article stands alone).
"""
import posixpath

import tensorflow as tf
from tfx import v1 as tfx
from tfx.dsl.components.base.base_node import BaseNode

from components.pusher import no_repush_pusher
from components.article_evaluator import ArticleEvaluator
from ingest.article_photos import CLEAN_SPLIT, SHARD_NAME, VALIDATION_SPLIT
from models.article_trainer import trainer_custom_config
from pipeline.config import ARTICLE_SCHEMA, PipelineConfig
from pipeline.data_checks import TRAIN_SPLIT, data_checks

ARTICLE_RUN_FN = "models.article_trainer.run_fn"


def has_validation_photos(data_dir: str) -> bool:
    """Whether the imported article holds validation photos. A data folder this process cannot see (an object
    store at compile time) is taken to hold them: `leather data import-article --validation` writes them there."""
    try:
        return tf.io.gfile.exists(posixpath.join(data_dir, VALIDATION_SPLIT, SHARD_NAME))
    except tf.errors.OpError:
        return True


def create_reference_components(config: PipelineConfig) -> list[BaseNode]:
    splits = [tfx.proto.Input.Split(name=TRAIN_SPLIT, pattern=f"{CLEAN_SPLIT}/{SHARD_NAME}")]
    if has_validation_photos(config.data_dir):
        splits.append(tfx.proto.Input.Split(name=VALIDATION_SPLIT, pattern=f"{VALIDATION_SPLIT}/{SHARD_NAME}"))
    example_gen = tfx.components.ImportExampleGen(input_base=config.data_dir, input_config=tfx.proto.Input(splits=splits))
    checks = data_checks(example_gen, str(ARTICLE_SCHEMA), 0.0, config.gates.max_image_pixels)
    trainer = tfx.components.Trainer(
        run_fn=ARTICLE_RUN_FN,
        examples=example_gen.outputs["examples"],
        train_args=tfx.proto.TrainArgs(splits=[TRAIN_SPLIT]),
        eval_args=tfx.proto.EvalArgs(splits=[TRAIN_SPLIT]),
        custom_config=trainer_custom_config(config.article),
    )
    trainer.add_upstream_node(checks.data_gate)
    evaluator = ArticleEvaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        split=VALIDATION_SPLIT,
        min_image_auc=config.gates.min_image_auc,
        min_pixel_auc=config.gates.min_pixel_auc,
    )
    pusher = no_repush_pusher(trainer.outputs["model"], evaluator.outputs["blessing"], config.push_destination)
    return [example_gen, *checks, trainer, evaluator, pusher]
