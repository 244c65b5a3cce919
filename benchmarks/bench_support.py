"""What the benchmarks share: the repository on the path, photos to read, a model to serve, and `leather serve`
running as its own process."""
import pathlib
import re
import subprocess
import sys
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from ingest.spans import import_span  # noqa: E402
from ingest.synth import generate_dataset  # noqa: E402
from models.spec import TrainingConfig  # noqa: E402
from pipeline.config import GateConfig, PipelineConfig  # noqa: E402
from pipeline.local_runner import run_local  # noqa: E402

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
MODEL_NAME = "leather"
SIGNATURE = "predict_image"
SERVER_START_SECONDS = 120.0
TRAINING_IMAGES, TRAINING_EPOCHS = 160, 10
TRAINING_NOTE = f"MLP, {TRAINING_IMAGES} synthetic photos, {TRAINING_EPOCHS} epochs"


def train_model(workdir: pathlib.Path) -> pathlib.Path:
    """A pushed model from a short pipeline run on synthetic photos; returns the push directory."""
    generate_dataset(workdir / "images", TRAINING_IMAGES, seed=11)
    import_span(workdir / "images", workdir / "tfrecords", 1)
    config = PipelineConfig(
        data_dir=str(workdir / "tfrecords"), workdir=str(workdir / "work"),
        training=TrainingConfig(epochs=TRAINING_EPOCHS), gates=GateConfig(min_accuracy=0.0, min_auc=0.0, min_shifted_auc=0.0),
    )
    summary = run_local(config)
    if not summary.pushed:
        raise SystemExit("the training run pushed no model:\n" + "\n".join(summary.lines()))
    return pathlib.Path(config.push_destination)


def photo_files(data_dir: pathlib.Path) -> list[pathlib.Path]:
    """The photos under `data_dir` in sorted order; none when the folder is absent (e.g. no ../shared)."""
    if not data_dir.is_dir():
        return []
    return sorted(p for p in data_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def start_server(model_dir: pathlib.Path, *flags: str) -> tuple[subprocess.Popen, str]:
    """`leather serve` on 127.0.0.1 with a free port (and any further `flags`), returned once it serves a version."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--model-dir", str(model_dir), "--host", "127.0.0.1",
         "--port", "0", "--poll-seconds", "1", *flags],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline, port = time.monotonic() + SERVER_START_SECONDS, None
    for line in process.stdout:
        if match := re.search(r"listening on 127\.0\.0\.1:(\d+)", line):
            port = match.group(1)
        if port and re.search(r"serving model '\w+' version \d+", line):
            return process, f"127.0.0.1:{port}"
        if time.monotonic() > deadline:
            break
    process.kill()
    raise SystemExit(f"`leather serve --model-dir {model_dir}` did not start serving")


def newest_version(model_dir: pathlib.Path) -> pathlib.Path:
    versions = sorted((p for p in model_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    if not versions:
        raise SystemExit(f"{model_dir} holds no numbered model version")
    return versions[-1]


def model_to_serve(model_dir: pathlib.Path | None, scratch: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """The push directory to serve (the given one, or one trained in `scratch`) and its newest version."""
    push_dir = model_dir.resolve() if model_dir else train_model(scratch)
    return push_dir, newest_version(push_dir)
