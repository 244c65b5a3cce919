"""What a reference-task run decided: the article's figures on the validation photos, its gates, the push."""
from __future__ import annotations

import dataclasses
import json
import os

import ml_metadata as mlmd
import tensorflow as tf
from ml_metadata.proto import metadata_store_pb2

from components.article_evaluator import EVALUATION_FILE
from pipeline.evaluation.run_record import PUSHER_NODE, already_pushed, newest_outputs
from pipeline.evaluation.summary import push_line

ARTICLE_EVALUATOR_NODE = "ArticleEvaluator"
FIGURE_NAMES = {
    "image_roc_auc": "image ROC-AUC",
    "pixel_roc_auc": "pixel ROC-AUC",
    "defects_located": "defects located",
    "false_alarms_per_clean_photo": "false-alarm regions per clean photo",
    "seconds_per_photo": "seconds per photo",
}


@dataclasses.dataclass(frozen=True)
class ArticleRunSummary:
    evaluation: dict
    """components/article_evaluator.py's record."""
    pushed_destination: str | None
    already_pushed: bool

    @classmethod
    def load(cls, pipeline_name: str, connection_config: metadata_store_pb2.ConnectionConfig) -> ArticleRunSummary:
        store = mlmd.MetadataStore(connection_config)
        evaluator = newest_outputs(store, pipeline_name, ARTICLE_EVALUATOR_NODE)
        with tf.io.gfile.GFile(os.path.join(evaluator["evaluation"].uri, EVALUATION_FILE)) as f:
            evaluation = json.load(f)
        pushed = newest_outputs(store, pipeline_name, PUSHER_NODE)["pushed_model"]
        was_pushed = bool(pushed.custom_properties["pushed"].int_value)
        return cls(
            evaluation=evaluation,
            pushed_destination=pushed.custom_properties["pushed_destination"].string_value if was_pushed else None,
            already_pushed=was_pushed and already_pushed(store, pipeline_name, pushed),
        )

    def lines(self) -> list[str]:
        evaluation = self.evaluation
        if not evaluation["evaluated"]:
            lines = ["not evaluated: no validation photos (give --validation to score and gate the article)"]
        else:
            figures = evaluation["figures"]
            lines = [f"evaluation on {figures['photos']} validation photos ({figures['clean_photos']} clean, "
                     f"{figures['defects']} defects):"]
            lines += [
                f"  {label:<38} {'n/a (needs clean and defect photos)' if figures[key] is None else figures[key]}"
                for key, label in FIGURE_NAMES.items()
            ]
            lines += [f"  gate failed: {failure}" for failure in evaluation["failed_gates"]]
        lines.append("model blessed: " + ("yes" if evaluation["blessed"] else "no"))
        lines.append(push_line(self.pushed_destination, self.already_pushed))
        return lines
