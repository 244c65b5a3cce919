"""The Evaluator's config, the gate decisions it leads to, and the evaluation report.

Gate decisions are checked against TFMA's own validator fed with known metric
values (tests/evaluation_support.py). The report is built from a crafted
`EvaluationReport`; tests/test_serving_e2e.py writes one from a real run. The
robustness gate and the colour-variant table: tests/test_robustness_gate.py.
"""
import dataclasses
import math
import types

import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from PIL import Image

from cli import main as leather
from evaluation_support import ORIGINAL, Metrics, evaluate_slices
from models import features
from models.spec import TrainingConfig
from pipeline.config import GateConfig, PipelineConfig
from pipeline.evaluation.page import render_html, write_report
from pipeline.evaluation import report as report_data
from pipeline.evaluation.plots import PLOT_FILES
from pipeline.evaluation.report import EvaluationReport, ModelCurves, slice_rates, calibration_bins
from pipeline.evaluation.results import ConfusionMatrix, Evaluation, GateDecision, slice_label
from pipeline.evaluation.spec import ORIGINALS, Gate, eval_config, on_originals
from pipeline.evaluation.summary import RunSummary

GATES = GateConfig(min_accuracy=0.7, min_auc=0.75, max_accuracy_drop=0.02, max_auc_drop=0.03)


@pytest.fixture(scope="module")
def config() -> PipelineConfig:
    return PipelineConfig(data_dir="unused", workdir="unused", gates=GATES)


def _metric_configs(config: PipelineConfig) -> dict[str, tuple[str, tfma.MetricConfig]]:
    """Metric class name -> (the model output it reads, its config)."""
    return {
        metric.class_name: (output, metric)
        for spec in eval_config(config).metrics_specs
        for output in spec.output_names
        for metric in spec.metrics
    }


def test_eval_config_computes_the_binary_metrics_on_three_slicings_of_the_originals_and_per_variant(config):
    evaluation = eval_config(config)
    [model] = evaluation.model_specs
    assert (model.label_key, model.prediction_key) == (features.LABEL_KEY, "")
    assert list(model.preprocessing_function_names) == ["transform_features"]
    assert [(list(spec.feature_keys), dict(spec.feature_values)) for spec in evaluation.slicing_specs] == [
        ([], {"variant": "original"}),
        ([features.DEFECT_TYPE_KEY], {"variant": "original"}),
        ([features.BRIGHTNESS_KEY], {"variant": "original"}),
        ([features.VARIANT_KEY], {}),
    ]
    assert ORIGINALS == {features.VARIANT_KEY: "original"}
    assert {name: output for name, (output, _) in _metric_configs(config).items()} == {
        "ExampleCount": "probability", "AUC": "probability", "ConfusionMatrixPlot": "probability",
        "CalibrationPlot": "probability", "BinaryAccuracy": "label", "Precision": "label", "Recall": "label",
        "ConfusionMatrixAtThresholds": "label",
    }


def test_thresholded_metrics_read_the_models_own_label_not_a_compiled_threshold(config):
    metrics = _metric_configs(config)
    assert metrics["BinaryAccuracy"][1].config == '{"threshold": 0.5}'
    assert metrics["ConfusionMatrixAtThresholds"][1].config == '{"thresholds": [0.5]}'
    for name in ("Precision", "Recall"):
        assert metrics[name][1].config == '{"thresholds": 0.5}'
    other_threshold = PipelineConfig(
        data_dir="unused", workdir="unused", training=TrainingConfig(target_recall=None, decision_threshold=0.2),
        gates=GATES,
    )
    assert eval_config(other_threshold) == eval_config(config)


def test_only_accuracy_and_auc_gate_on_the_overall_slice_of_the_original_photos(config):
    metrics = {name: metric for name, (_, metric) in _metric_configs(config).items()}
    gated = {name for name, metric in metrics.items() if metric.per_slice_thresholds}
    assert gated == {"BinaryAccuracy", "AUC"}
    for name, floor, drop in (("BinaryAccuracy", 0.7, 0.02), ("AUC", 0.75, 0.03)):
        [gate] = [t for t in metrics[name].per_slice_thresholds if list(t.slicing_specs) == [on_originals()]]
        assert list(gate.slicing_specs) == [tfma.SlicingSpec(feature_values={"variant": "original"})]
        assert gate.threshold.value_threshold.lower_bound.value == floor
        assert gate.threshold.change_threshold.direction == tfma.MetricDirection.HIGHER_IS_BETTER
        assert gate.threshold.change_threshold.absolute.value == pytest.approx(-drop)


def _evaluate(config: PipelineConfig, candidate: Metrics, baseline: Metrics | None) -> Evaluation:
    """What the Evaluator would record for these metrics of the original photos."""
    return evaluate_slices(eval_config(config), {ORIGINAL: (candidate, baseline)}, has_baseline=baseline is not None)


def _verdicts(evaluation: Evaluation) -> dict[tuple[str, bool], bool]:
    return {(g.metric, g.is_change): g.passed for g in evaluation.gates()}


def test_without_a_baseline_only_the_floors_decide(config):
    evaluation = _evaluate(config, {"binary_accuracy": 0.69, "auc": 0.80}, baseline=None)
    assert _verdicts(evaluation) == {("binary_accuracy", False): False, ("auc", False): True}
    accuracy = next(g for g in evaluation.gates() if g.metric == "binary_accuracy")
    assert (accuracy.candidate, accuracy.bound, accuracy.baseline, accuracy.change) == (0.69, 0.7, None, None)
    assert evaluation.failures() == ["FAIL binary_accuracy >= 0.7000: candidate 0.6900"]


@pytest.mark.parametrize(
    "candidate, verdicts",
    [
        ({"binary_accuracy": 0.90, "auc": 0.93}, (True, True)),  # better than the baseline
        ({"binary_accuracy": 0.88, "auc": 0.90}, (True, True)),  # drops exactly the allowed 0.02 and 0.03
        ({"binary_accuracy": 0.87, "auc": 0.91}, (False, True)),  # accuracy drops 0.03 > 0.02
        ({"binary_accuracy": 0.89, "auc": 0.89}, (True, False)),  # AUC drops 0.04 > 0.03
    ],
)
def test_change_gates_against_the_baseline(config, candidate, verdicts):
    evaluation = _evaluate(config, candidate, baseline={"binary_accuracy": 0.90, "auc": 0.93})
    accuracy_ok, auc_ok = verdicts
    assert _verdicts(evaluation) == {
        ("binary_accuracy", False): True, ("binary_accuracy", True): accuracy_ok,
        ("auc", False): True, ("auc", True): auc_ok,
    }
    for gate in evaluation.gates():
        assert gate.baseline == {"binary_accuracy": 0.90, "auc": 0.93}[gate.metric]
        assert gate.change == pytest.approx(candidate[gate.metric] - gate.baseline)
    assert len(evaluation.failures()) == [accuracy_ok, auc_ok].count(False)


def test_a_gate_on_a_slicing_is_decided_on_every_slice_it_covers(config):
    """The shape of a robustness gate (the worst slice of a feature above a floor): one decision per slice."""
    sliced = eval_config(PipelineConfig(
        data_dir="unused", workdir="unused", gates=dataclasses.replace(GATES, min_shifted_auc=None)
    ))
    auc = next(metric for spec in sliced.metrics_specs for metric in spec.metrics if metric.class_name == "AUC")
    auc.per_slice_thresholds.append(Gate("AUC", 0.7, 0.05, tfma.SlicingSpec(feature_keys=["brightness"])).threshold())
    overall = {"binary_accuracy": 0.8, "auc": 0.85}
    bright, dark = (("brightness", "bright"),), (("brightness", "dark"),)
    evaluation = evaluate_slices(
        sliced,
        {
            ORIGINAL: (overall, None),
            bright: ({"binary_accuracy": 0.9, "auc": 0.95}, None),
            dark: ({"binary_accuracy": 0.7, "auc": 0.65}, None),
        },
        has_baseline=False,
    )
    assert [(g.slice, g.metric, g.passed, g.candidate) for g in evaluation.gates()] == [
        ("overall", "auc", True, 0.85),
        ("overall", "binary_accuracy", True, 0.8),
        ("brightness = bright", "auc", True, 0.95),
        ("brightness = dark", "auc", False, 0.65),
    ]
    assert evaluation.failures() == ["FAIL auc on brightness = dark >= 0.7000: candidate 0.6500"]
    summary = RunSummary(overall, False, evaluation.failures(), False, None, gates=evaluation.gates())
    assert summary.lines()[-8:] == [
        "gates:",
        "  result  slice                metric           bound      candidate  baseline  change",
        "  FAIL    brightness = dark    auc              >= 0.7000  0.6500     -         -",
        "  pass    overall              auc              >= 0.7500  0.8500     -         -",
        "  pass    overall              binary_accuracy  >= 0.7000  0.8000     -         -",
        "  pass    brightness = bright  auc              >= 0.7000  0.9500     -         -",
        "model blessed: no",
        "not pushed",
    ]


def test_summary_prints_every_gate_with_its_numbers_in_one_table_failing_first():
    summary = RunSummary(
        metrics={"binary_accuracy": 0.87, "auc": 0.91, "example_count": 171.0},
        blessed=False,
        gate_failures=["FAIL binary_accuracy change vs baseline >= -0.0200: candidate 0.8700, baseline 0.9000, change -0.0300"],
        pushed=False,
        pushed_destination=None,
        gates=[
            GateDecision("binary_accuracy", False, True, 0.7, 0.87, 0.90, -0.03),
            GateDecision("binary_accuracy", True, False, -0.02, 0.87, 0.90, -0.03),
        ],
        baseline_metrics={"binary_accuracy": 0.90, "auc": 0.93, "example_count": 170.0},
        decision_threshold=0.3125,
        baseline_decision_threshold=0.42,
    )
    assert summary.lines() == [
        "evaluation on the test split:",
        "  accuracy, precision and recall at the model's decision threshold 0.3125 (baseline's: 0.4200)",
        "  auc                              0.9100   (baseline 0.9300)",
        "  binary_accuracy                  0.8700   (baseline 0.9000)",
        "  example_count                       171   (baseline 170)",
        "gates:",
        "  result  slice    metric           bound              candidate  baseline  change",
        "  FAIL    overall  binary_accuracy  change >= -0.0200  0.8700     0.9000    -0.0300",
        "  pass    overall  binary_accuracy  >= 0.7000          0.8700     0.9000    -0.0300",
        "model blessed: no",
        "not pushed",
    ]


def test_summary_says_already_pushed_when_the_destination_was_served_before_the_run():
    pushed = RunSummary({}, True, [], True, "/srv/models/leather/1796164963")
    assert pushed.lines()[-1] == "pushed to: /srv/models/leather/1796164963"
    assert dataclasses.replace(pushed, already_pushed=True).lines()[-1] == "already pushed: version 1796164963"


def _bucket(count: float, predictions: float, labels: float) -> types.SimpleNamespace:
    value = types.SimpleNamespace
    return value(
        num_weighted_examples=value(value=count),
        total_weighted_refined_prediction=value(value=predictions),
        total_weighted_label=value(value=labels),
    )


def test_calibration_bins_pool_tfmas_fine_buckets():
    buckets = [
        _bucket(0, 0, 0),
        _bucket(2, 2 * 0.12, 0),  # bin 1
        _bucket(1, 0.18, 1),  # bin 1
        _bucket(4, 4 * 0.95, 3),  # bin 9
        _bucket(1, 1.0, 1),  # probability 1.0 lands in the last bin
    ]
    bins = calibration_bins(buckets, bins=10)
    assert [count for _, _, count in bins] == [3, 5]
    assert bins[0][:2] == pytest.approx((0.14, 1 / 3))
    assert bins[1][:2] == pytest.approx((0.96, 0.8))


def test_slice_labels_name_the_feature_and_value():
    overall = tfma.proto.metrics_for_slice_pb2.SliceKey()
    dark = tfma.proto.metrics_for_slice_pb2.SliceKey()
    dark.single_slice_keys.add(column="brightness", bytes_value=b"dark")
    assert (slice_label(overall), slice_label(dark)) == ("overall", "brightness = dark")


@pytest.fixture
def crafted_report() -> EvaluationReport:
    summary = RunSummary(
        metrics={"binary_accuracy": 0.8}, blessed=True, gate_failures=[], pushed=True,
        pushed_destination="/srv/models/leather/17",
        gates=[GateDecision("auc", True, True, -0.02, 0.86, 0.84, 0.02)],
        decision_threshold=0.3125,
    )
    curves = ModelCurves(
        roc=[(0.0, 0.0), (0.1, 0.6), (0.3, 0.9), (1.0, 1.0)],
        calibration=[(0.1, 0.05, 20), (0.5, 0.4, 5), (0.9, 0.95, 25)],
        confusion=ConfusionMatrix(0.5, true_positives=22, false_positives=3, true_negatives=19, false_negatives=6),
    )
    slices = [
        ("overall", {"candidate": {"example_count": 50, "auc": 0.86}, "baseline": {"example_count": 50, "auc": 0.84}}),
        ("defect_type = cut", {"candidate": {"example_count": 4, "auc": math.nan}}),
    ]
    return EvaluationReport("/runs/Evaluator/evaluation/9", summary, slices, {"candidate": curves, "baseline": curves})


def test_report_page_shows_gates_slices_and_baseline(crafted_report):
    page = render_html(crafted_report)
    assert "Candidate model blessed, pushed to <code>/srv/models/leather/17</code>" in page
    assert "<td>pass</td><td>auc</td><td>change vs baseline</td><td>-0.0200</td><td>0.8600</td><td>0.8400</td><td>+0.0200</td>" in page
    assert "<td>0.8600<span class=\"base\">0.8400</span></td>" in page
    assert "<td class='slice'>defect_type = cut</td><td>4</td><td>n/a</td>" in page
    assert "at each model's own decision threshold, the one its served label uses: candidate 0.3125." in page
    for file in PLOT_FILES.values():
        assert f'src="{file}"' in page


def test_report_states_the_operating_point_per_100_photos_of_each_kind(crafted_report):
    """22 of 28 defective photos found, 3 of 22 clean ones rejected (the crafted confusion matrix)."""
    assert (
        "At the stored decision threshold (0.5000), out of 100 clean photos 14 are rejected as defective, and out of "
        "100 defective photos 21 pass as clean (test split: 22 clean, 28 defective photos)."
    ) in render_html(crafted_report)


def test_the_clean_slice_shows_its_false_alarms_and_no_precision():
    clean = ConfusionMatrix(0.5, true_positives=0, false_positives=4, true_negatives=16, false_negatives=0)
    mixed = ConfusionMatrix(0.5, true_positives=9, false_positives=1, true_negatives=9, false_negatives=1)
    rates = slice_rates(clean)
    assert rates.pop("false_alarm_rate") == 0.2
    assert sorted(rates) == ["auc", "precision", "recall"] and all(math.isnan(value) for value in rates.values())
    assert slice_rates(mixed) == {"false_alarm_rate": 0.1}
    page = render_html(EvaluationReport("/e", RunSummary({}, True, [], False, None), [
        ("defect_type = non defective", {"candidate": {"example_count": 20, "precision": math.nan, "false_alarm_rate": 0.2}}),
    ], {}))
    assert "<td class='slice'>defect_type = non defective</td><td>20</td><td>n/a</td><td>n/a</td><td>n/a</td><td>n/a</td><td>0.2000</td>" in page
    assert "more than 70% of its pixels lighter than 125" in page
    assert "floor" not in page


def test_report_gate_table_puts_the_failing_gates_first(crafted_report):
    gates = [GateDecision("auc", False, True, 0.6, 0.86), GateDecision("binary_accuracy", False, False, 0.9, 0.8)]
    page = render_html(dataclasses.replace(crafted_report, summary=dataclasses.replace(crafted_report.summary, gates=gates)))
    assert page.index("<td>FAIL</td><td>binary_accuracy</td>") < page.index("<td>pass</td><td>auc</td>")


def test_report_paths_are_relative_to_the_workdir(crafted_report):
    page = render_html(dataclasses.replace(crafted_report, workdir="/runs"))
    assert "Evaluation: <code>Evaluator/evaluation/9</code> (paths relative to the workdir)" in page
    assert "/runs" not in page


def test_report_writes_the_page_and_plots(crafted_report, tmp_path):
    page = write_report(crafted_report, tmp_path / "report")
    assert page == tmp_path / "report" / "index.html"
    for file in PLOT_FILES.values():
        with Image.open(tmp_path / "report" / file) as image:
            assert image.format == "PNG"
            assert min(image.size) >= 300
            assert len(np.unique(np.asarray(image.convert("L")))) > 10  # something was drawn


def test_report_command_names_a_workdir_without_a_run(tmp_path, capsys):
    assert leather.main(["report", str(tmp_path)]) == 1
    assert f"{tmp_path / 'metadata.sqlite'} does not exist" in capsys.readouterr().err


def test_report_command_prints_the_verdict_and_where_the_page_is(crafted_report, tmp_path, monkeypatch, capsys):
    """The run printed the whole summary already."""
    monkeypatch.setattr(report_data, "load_report", lambda workdir: crafted_report)
    assert leather.main(["report", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "model blessed: yes; pushed to: /srv/models/leather/17",
        f"report written to {tmp_path / 'report' / 'index.html'}",
    ]
