"""The robustness gate (ROC-AUC on every colour variant above a floor) and the colour-variant table.

Decisions come from TFMA's own validator fed with known metric values
(tests/evaluation_support.py); the table from known confusion matrices. The
gate on a trained model: tests/test_robustness_gate_e2e.py.
"""
import argparse
import dataclasses

import pytest
import tensorflow_model_analysis as tfma

from cli.config_args import add_config_arguments, config_from_args
from evaluation_support import ORIGINAL, evaluate_slices
from pipeline.config import GateConfig, PipelineConfig
from pipeline.evaluation.page import render_html
from pipeline.evaluation.report import EvaluationReport
from pipeline.evaluation.results import ConfusionMatrix
from pipeline.evaluation.run_record import RunResults
from pipeline.evaluation.spec import eval_config, variant_slicing
from pipeline.evaluation.summary import RunSummary
from pipeline.evaluation.variants import VariantScores, VariantTable

GRAY, HUE60, HUE120 = (("variant", "gray"),), (("variant", "hue+60"),), (("variant", "hue+120"),)


def _config(**gates) -> PipelineConfig:
    return PipelineConfig(data_dir="unused", workdir="unused", gates=GateConfig(**gates))


def _auc_thresholds(config: PipelineConfig) -> list[tfma.PerSliceMetricThreshold]:
    return [
        threshold
        for spec in eval_config(config).metrics_specs
        for metric in spec.metrics
        if metric.class_name == "AUC"
        for threshold in metric.per_slice_thresholds
    ]


def test_the_robustness_gate_is_an_auc_floor_on_every_variant_without_a_change_threshold():
    overall, robustness = _auc_thresholds(_config(min_auc=0.75, min_shifted_auc=0.65))
    assert list(overall.slicing_specs) == [tfma.SlicingSpec(feature_values={"variant": "original"})]
    assert overall.threshold.HasField("change_threshold")
    assert list(robustness.slicing_specs) == [tfma.SlicingSpec(feature_keys=["variant"])]
    assert robustness.threshold.value_threshold.lower_bound.value == 0.65
    assert not robustness.threshold.HasField("change_threshold")


def test_off_drops_the_gate_but_keeps_the_variant_slices():
    config = _config(min_shifted_auc=None)
    [overall] = _auc_thresholds(config)
    assert list(overall.slicing_specs) == [tfma.SlicingSpec(feature_values={"variant": "original"})]
    assert variant_slicing() in eval_config(config).slicing_specs


@pytest.mark.parametrize("flag, bound", [([], 0.6), (["--min-shifted-auc", "0.8"], 0.8), (["--min-shifted-auc", "off"], None)])
def test_the_flag_sets_the_floor_or_switches_it_off(flag, bound):
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    assert config_from_args(parser.parse_args(flag), "data", "work").gates.min_shifted_auc == bound


def test_a_floor_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="min_shifted_auc must be in \\[0, 1\\] or off, got 1.2"):
        GateConfig(min_shifted_auc=1.2)


def test_a_model_that_ranks_by_colour_is_refused_naming_each_variant_and_its_auc():
    evaluation = evaluate_slices(
        eval_config(_config(min_auc=0.75, min_shifted_auc=0.6)),
        {
            ORIGINAL: ({"binary_accuracy": 0.9, "auc": 0.95}, None),
            GRAY: ({"binary_accuracy": 0.4, "auc": 0.31}, None),
            HUE60: ({"binary_accuracy": 0.85, "auc": 0.9}, None),
            HUE120: ({"binary_accuracy": 0.5, "auc": 0.58}, None),
        },
        has_baseline=False,
    )
    assert [(g.slice, g.metric, g.passed, g.bound, g.candidate) for g in evaluation.gates()] == [
        ("overall", "auc", True, 0.75, 0.95),
        ("overall", "binary_accuracy", True, 0.6, 0.9),
        ("variant = gray", "auc", False, 0.6, 0.31),
        ("variant = hue+120", "auc", False, 0.6, 0.58),
        ("variant = hue+60", "auc", True, 0.6, 0.9),
        ("variant = original", "auc", True, 0.6, 0.95),
    ]
    assert evaluation.failures() == [
        "FAIL auc on variant = gray >= 0.6000: candidate 0.3100",
        "FAIL auc on variant = hue+120 >= 0.6000: candidate 0.5800",
    ]


@pytest.mark.parametrize(
    "min_auc, auc, verdicts",
    [
        (0.75, 0.7, {"overall": False, "variant = original": True}),  # two floors, decided apart
        (0.6, 0.5, {"overall": False, "variant = original": False}),  # one floor, TFMA records its failure once
    ],
)
def test_the_overall_and_the_variant_floor_on_the_original_photos_are_decided_apart(min_auc, auc, verdicts):
    evaluation = evaluate_slices(
        eval_config(_config(min_auc=min_auc, min_accuracy=0.0, min_shifted_auc=0.6)),
        {ORIGINAL: ({"binary_accuracy": 0.9, "auc": auc}, None)},
        has_baseline=False,
    )
    assert {g.slice: g.passed for g in evaluation.gates() if g.metric == "auc"} == verdicts
    assert len(evaluation.failures()) == list(verdicts.values()).count(False)


def _matrix(tp: int, fn: int, tn: int, fp: int) -> ConfusionMatrix:
    return ConfusionMatrix(0.4, true_positives=tp, false_positives=fp, true_negatives=tn, false_negatives=fn)


@pytest.fixture
def refused_with_a_baseline() -> RunSummary:
    """A candidate that collapses in gray against a baseline whose worst variant is hue+120."""
    evaluation = evaluate_slices(
        eval_config(_config(min_auc=0.75, min_shifted_auc=0.6)),
        {
            ORIGINAL: ({"binary_accuracy": 0.9, "auc": 0.95}, {"binary_accuracy": 0.83, "auc": 0.9}),
            GRAY: ({"binary_accuracy": 0.67, "auc": 0.31}, {"binary_accuracy": 0.77, "auc": 0.84}),
            HUE120: ({"binary_accuracy": 0.7, "auc": 0.58}, {"binary_accuracy": 0.7, "auc": 0.66}),
        },
        has_baseline=True,
    )
    candidate, baseline = evaluation.candidate_name, evaluation.baseline_name
    evaluation = dataclasses.replace(evaluation, confusion={
        ORIGINAL: {candidate: _matrix(18, 2, 9, 1), baseline: _matrix(17, 3, 8, 2)},
        GRAY: {candidate: _matrix(20, 0, 0, 10), baseline: _matrix(16, 4, 7, 3)},
        HUE120: {candidate: _matrix(15, 5, 6, 4), baseline: _matrix(16, 4, 5, 5)},
    })
    return RunSummary.of(RunResults("/runs/Evaluator/evaluation/9", evaluation, blessed=False, pushed_destination=None))


def test_the_variant_table_gives_auc_and_both_recalls_per_model_in_variant_order(refused_with_a_baseline):
    table = refused_with_a_baseline.variants
    assert [name for name, _ in table.rows] == ["original", "gray", "hue+120"]
    assert dict(table.rows)["hue+120"] == {
        "candidate": VariantScores(auc=0.58, defect_recall=0.75, clean_recall=0.6),
        "baseline": VariantScores(auc=0.66, defect_recall=0.8, clean_recall=0.5),
    }
    assert (table.worst("candidate"), table.worst("baseline")) == ("gray", "hue+120")


def test_the_run_summary_prints_the_variant_table_and_the_refusal(refused_with_a_baseline):
    lines = refused_with_a_baseline.lines()
    start = lines.index(
        "colour variants of the test photos (ROC-AUC; recall of defects and of clean leather at the threshold):"
    )
    assert lines[start + 1:start + 5] == [
        "  variant            candidate auc  defects    clean    baseline auc  defects    clean",
        "  original                  0.9500   0.9000   0.9000          0.9000   0.8500   0.8000",
        "  gray                      0.3100   1.0000   0.0000          0.8400   0.8000   0.7000   <- worst (candidate)",
        "  hue+120                   0.5800   0.7500   0.6000          0.6600   0.8000   0.5000   <- worst (baseline)",
    ]
    assert lines[start + 5:start + 9] == [
        "gates:",
        "  result  slice               metric           bound              candidate  baseline  change",
        "  FAIL    variant = gray      auc              >= 0.6000          0.3100     0.8400    -0.5300",
        "  FAIL    variant = hue+120   auc              >= 0.6000          0.5800     0.6600    -0.0800",
    ]
    assert lines[-2:] == ["model blessed: no", "not pushed"]


def test_the_report_page_shows_the_variant_table_with_the_worst_marked(refused_with_a_baseline):
    page = render_html(EvaluationReport("/runs/Evaluator/evaluation/9", refused_with_a_baseline, [], {}))
    assert (
        "<tr class='worst'><td class='slice'>gray</td><td>0.3100<span class=\"base\">0.8400</span></td>"
        "<td>1.0000<span class=\"base\">0.8000</span></td><td>0.0000<span class=\"base\">0.7000</span></td>"
        "<td>candidate</td></tr>"
    ) in page
    assert (
        "<tr><td class='slice'>hue+120</td><td>0.5800<span class=\"base\">0.6600</span></td>"
        "<td>0.7500<span class=\"base\">0.8000</span></td><td>0.6000<span class=\"base\">0.5000</span></td>"
        "<td>baseline</td></tr>"
    ) in page
    assert "<td>FAIL</td><td>auc on variant = gray</td><td>minimum</td><td>0.6000</td><td>0.3100</td>" in page


def test_an_evaluation_without_variants_shows_no_table():
    assert VariantTable().lines() == []
    assert "This evaluation has no colour variants." in render_html(
        EvaluationReport("/e", RunSummary({}, True, [], False, None), [], {})
    )
