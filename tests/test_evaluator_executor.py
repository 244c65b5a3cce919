"""The project's Evaluator executor: a candidate that is its own baseline is evaluated once, and says so."""
from tfx.components.evaluator import executor as evaluator_executor
from tfx.types import standard_artifacts

from components.evaluator import CANDIDATE_IS_BASELINE, Evaluator, Executor, is_its_own_baseline


def _model(artifact_id: int) -> standard_artifacts.Model:
    model = standard_artifacts.Model()
    model.id = artifact_id
    return model


def _run(monkeypatch, inputs: dict) -> tuple[dict, standard_artifacts.ModelBlessing]:
    """The executor's Do with TFX's own Do replaced by a recorder of the inputs it was handed."""
    seen = {}
    monkeypatch.setattr(evaluator_executor.Executor, "Do", lambda self, given, outputs, properties: seen.update(given))
    blessing = standard_artifacts.ModelBlessing()
    Executor().Do(inputs, {"blessing": [blessing], "evaluation": [standard_artifacts.ModelEvaluation()]}, {})
    return seen, blessing


def test_the_same_artifact_as_baseline_is_dropped_and_marked_on_the_blessing(monkeypatch):
    model = _model(15)
    seen, blessing = _run(monkeypatch, {"model": [model], "baseline_model": [_model(15)], "examples": []})
    assert set(seen) == {"model", "examples"} and seen["model"] == [model]
    assert blessing.get_int_custom_property(CANDIDATE_IS_BASELINE) == 1


def test_another_baseline_is_kept_and_none_is_no_baseline(monkeypatch):
    seen, blessing = _run(monkeypatch, {"model": [_model(22)], "baseline_model": [_model(15)], "examples": []})
    assert [m.id for m in seen["baseline_model"]] == [15]
    assert blessing.get_int_custom_property(CANDIDATE_IS_BASELINE) == 0
    assert not is_its_own_baseline({"model": [_model(22)], "baseline_model": []})
    assert not is_its_own_baseline({"model": [_model(22)]})


def test_the_component_keeps_the_stock_node_name_and_runs_this_executor():
    assert Evaluator.EXECUTOR_SPEC.executor_class is Executor
    assert Evaluator.__name__ == "Evaluator"
