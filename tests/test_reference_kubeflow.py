"""The reference task compiles for Kubeflow from the same config: its own graph, the Trainer on the GPU node.

An article is fitted from imported photos on an object store (`leather data
import-article` writes them there); the compiled spec must hold the reference
graph's components and none of the classifier's, carry the article's settings
into the Trainer, and keep the Trainer's resources.
"""
import json

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from models.spec import ArticleConfig
from pipeline.config import PipelineConfig
from pipeline.kubeflow_runner import compile_pipeline
from pipeline.kubeflow_settings import KubeflowSettings
from pipeline.reference_pipeline import has_validation_photos

IMAGE = "registry.example.com/leather:1"


def test_the_reference_graph_compiles_with_its_article_settings(tmp_path):
    data = tmp_path / "article"
    (data / "clean").mkdir(parents=True)
    (data / "clean" / "photos.tfrecord").write_bytes(b"")
    (data / "validation").mkdir()
    (data / "validation" / "photos.tfrecord").write_bytes(b"")
    config = PipelineConfig(
        data_dir=str(data), workdir=str(tmp_path / "root"), task="reference", article=ArticleConfig(bank_size=1234)
    )
    output = compile_pipeline(config, KubeflowSettings(image=IMAGE, pipeline_root="gs://b/root"), tmp_path / "p.json")
    spec = json_format.ParseDict(json.loads(output.read_text())["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())
    tasks = set(spec.root.dag.tasks)
    assert tasks == {"ImportExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "DataGate",
                     "Trainer", "ArticleEvaluator", "Pusher"}
    trainer = json_format.MessageToDict(spec.root.dag.tasks["Trainer"])
    custom_config = json.loads(trainer["inputs"]["parameters"]["custom_config"]["runtimeValue"]["constant"])
    assert custom_config["article"]["bank_size"] == 1234
    example_gen = json_format.MessageToDict(spec.root.dag.tasks["ImportExampleGen"])
    splits = json.loads(example_gen["inputs"]["parameters"]["input_config"]["runtimeValue"]["constant"])["splits"]
    assert [split["name"] for split in splits] == ["train", "validation"]


def test_a_folder_without_validation_photos_has_none(tmp_path):
    (tmp_path / "clean").mkdir()
    assert not has_validation_photos(str(tmp_path))
    (tmp_path / "validation").mkdir()
    (tmp_path / "validation" / "photos.tfrecord").write_bytes(b"")
    assert has_validation_photos(str(tmp_path))
