"""The checks every pipeline graph puts between ExampleGen and training: statistics, the curated schema, the gate.

The classifier's graph and the reference task's differ in what they train but
not in how they refuse data: StatisticsGen, ImportSchemaGen with a curated
schema, ExampleValidator, and the DataGate that turns anomalies, a too rare
class or an undecodable photo into a stopped run.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from tfx import v1 as tfx
from tfx.dsl.components.base.base_node import BaseNode

from components.data_gate import DataGate

TRAIN_SPLIT = "train"


class DataChecks(NamedTuple):
    statistics_gen: BaseNode
    schema_gen: BaseNode
    example_validator: BaseNode
    data_gate: BaseNode


def data_checks(example_gen: BaseNode, schema_file: str, min_minority_share: Any, max_image_pixels: int) -> DataChecks:
    """The four nodes over `example_gen`'s examples; `min_minority_share` may be a RuntimeParameter."""
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_file)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    data_gate = DataGate(
        examples=example_gen.outputs["examples"],
        statistics=statistics_gen.outputs["statistics"],
        anomalies=example_validator.outputs["anomalies"],
        min_minority_share=min_minority_share,
        split=TRAIN_SPLIT,
        max_image_pixels=max_image_pixels,
    )
    return DataChecks(statistics_gen, schema_gen, example_validator, data_gate)
