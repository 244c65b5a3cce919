"""`leather run`: the whole pipeline on this machine with LocalDagRunner."""
import argparse
import contextlib
import pathlib
import shutil

from cli.config_args import add_config_arguments, config_from_args
from cli.data_source import add_data_arguments, article_dir, check_data_folder, tfrecord_dir
from cli.errors import UserError
from cli.progress import add_verbose_flag
from pipeline.config import PipelineConfig

WORKER_LOG = "worker-output.log"
"""Under the workdir: what TensorFlow's C++ code and the Beam worker processes wrote to stderr in a quiet run."""


def _gate_error(error: BaseException) -> BaseException | None:
    """The data gate's refusal, or the article fit's refusal of a clean photo, behind a failed run."""
    from components.data_gate import DataGateError
    from models.article import ArticleFitError

    while error is not None:
        if isinstance(error, (DataGateError, ArticleFitError)):
            return error
        error = error.__cause__ or error.__context__
    return None


def _check_paths(args: argparse.Namespace) -> None:
    """The path arguments, checked before anything loads TensorFlow (13 s or more) to tell of a typo. A
    --serving-dir on an object store (gs://) is no local path and passes; the Pusher writes it."""
    check_data_folder(pathlib.Path(args.data))
    if args.validation is not None and args.task != "reference":
        raise UserError("--validation is for --task reference; a classifier's test photos come from --data")
    if args.validation is not None and not pathlib.Path(args.validation).is_dir():
        raise UserError(f"--validation {args.validation} is not a folder")
    for flag, path in (("--workdir", args.workdir), ("--serving-dir", args.serving_dir)):
        if path is not None and pathlib.Path(path).exists() and not pathlib.Path(path).is_dir():
            raise UserError(f"{flag} {path} is a file, not a folder")


def _config(args: argparse.Namespace, data_dir: str, workdir: str) -> PipelineConfig:
    try:
        return config_from_args(args, data_dir, workdir)
    except ValueError as error:
        raise UserError(str(error)) from error


def _run(args: argparse.Namespace) -> int:
    from pipeline.workdir_lock import WorkdirBusy, workdir_lock

    _check_paths(args)
    _config(args, args.data, args.workdir)  # every other flag, before TensorFlow loads too
    workdir = pathlib.Path(args.workdir).resolve()
    created = not workdir.exists()
    try:
        # Held from the import on, so a second run cannot re-import into WORKDIR/tfrecords under this one.
        with workdir_lock(workdir) as lock:
            try:
                return _run_locked(args, workdir)
            except BaseException:
                if created and [p.name for p in workdir.iterdir()] == [lock.path.name]:
                    shutil.rmtree(workdir)
                raise
    except WorkdirBusy as error:
        raise UserError(str(error)) from error


def _run_locked(args: argparse.Namespace, workdir: pathlib.Path) -> int:
    from pipeline.local_runner import run_local, show_component_progress, worker_output_to

    if args.task == "reference":
        data_dir = article_dir(pathlib.Path(args.data).resolve(), args.validation, workdir)
    else:
        data_dir = tfrecord_dir(pathlib.Path(args.data).resolve(), workdir, args.clean_class)
    config = _config(args, str(data_dir), str(workdir))
    print(f"running pipeline {config.pipeline_name} on {data_dir} (workdir {workdir})")
    show_component_progress(args.verbose)
    quiet = contextlib.nullcontext() if args.verbose else worker_output_to(str(workdir / WORKER_LOG))
    try:
        with quiet:
            summary = run_local(config)
    except Exception as error:
        gate = _gate_error(error)
        if gate is None:
            raise
        raise UserError(f"pipeline stopped by {gate}") from error
    print("\n".join(summary.lines()))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run",
        help="run the TFX pipeline locally (LocalDagRunner)",
        description="Run ImportExampleGen (newest span) -> StatisticsGen -> ImportSchemaGen -> ExampleValidator -> data gate -> span drift -> "
        "Transform -> Trainer -> ColourVariants -> Evaluator -> Pusher with LocalDagRunner and an SQLite ML Metadata store under "
        "--workdir; print a line per finished component and per training epoch, then the evaluation metrics, one "
        "table of the gates (failed ones first), the blessing and where the model was pushed ('already pushed: "
        "version N' when it was the model already served). With --task reference: --data is a folder of clean photos "
        "of one leather article (or one `leather data import-article` wrote), --validation photos with masks; "
        "ImportExampleGen -> StatisticsGen -> ImportSchemaGen -> ExampleValidator -> data gate -> Trainer (fits the "
        "article) -> ArticleEvaluator (image and pixel ROC-AUC gates) -> Pusher (docs/models.md). Without --verbose, "
        f"what TensorFlow and the Beam worker processes write to stderr goes to WORKDIR/{WORKER_LOG}.",
    )
    add_data_arguments(run)
    run.add_argument(
        "--validation", type=pathlib.Path, default=None, metavar="FOLDER",
        help="--task reference: photos to score and gate the article on, NAME_mask.png beside each defective one "
        "(white = defect), clean ones without; as `leather data synth-hide` writes them",
    )
    run.add_argument("--workdir", default="leather-work", help="pipeline root, ML Metadata and imported data (default %(default)s)")
    run.add_argument("--serving-dir", default=None, help="Pusher destination (default WORKDIR/serving)")
    add_verbose_flag(run, also="and Keras' own epoch lines besides the Trainer's")
    add_config_arguments(run)
    run.set_defaults(func=_run)
