"""`leather experiment`: the reference's experiment grids on a data set, with k-fold cross-validation and a report."""
import argparse
import json
import pathlib

from cli.data_source import add_data_arguments, check_data_folder, tfrecord_dir
from cli.errors import UserError
from cli.progress import add_verbose_flag
from models import features

GRIDS = ("table2", "alexnet", "robustness")
CONTENDER_NAMES = ("texture", "mlp", "alexnet", "alexnet-augmented", "backbone")
"""Keys of experiments.robustness.CONTENDERS, named here so `--help` needs no TensorFlow."""


def _experiments(args: argparse.Namespace) -> list:
    from experiments import grids

    if args.grid == "table2":
        return grids.table2(epochs=args.epochs, target_recall=args.target_recall)
    return grids.alexnet(
        args.resolutions, args.alexnet_epochs, args.ratios, args.brightness, args.channels, args.target_recall
    )


def _robustness(args: argparse.Namespace, examples: object, out: pathlib.Path) -> int:
    """Each model once, scored on every colour variant of the same test photos; OUT/robustness.json and .md."""
    from experiments.robustness import run_robustness, table

    def save(results: list[dict], inputs: dict) -> None:
        summary = {"split": {split: len(labels) for split, labels in inputs["labels"].items()}, "results": results}
        (out / "robustness.json").write_text(json.dumps(summary, indent=2) + "\n")
        (out / "robustness.md").write_text("# ROC-AUC per colour variant\n\n" + table(results) + "\n")

    print(f"robustness: {len(args.contenders)} model(s) on {len(examples)} images, scored per colour variant")
    results = run_robustness(examples, out / "robustness", args.contenders, args.model_epochs, log=print, each=save)
    print(table(results))
    print(f"report: {out / 'robustness.md'} (and robustness.json beside it)")
    return 0


def _experiment(args: argparse.Namespace) -> int:
    check_data_folder(pathlib.Path(args.data))  # before the imports below load TensorFlow
    from experiments.dataset import read_examples
    from experiments.report import write_report
    from experiments.runner import run_grid
    from pipeline.local_runner import show_component_progress

    show_component_progress(args.verbose)
    out = pathlib.Path(args.out).resolve()
    from ingest.spans import newest_span_dir

    data = newest_span_dir(tfrecord_dir(pathlib.Path(args.data).resolve(), out, args.clean_class))
    examples = read_examples(data)
    if args.grid == "robustness":
        return _robustness(args, examples, out)
    experiments = _experiments(args)
    print(f"{args.grid}: {len(experiments)} configuration(s) x {args.folds} folds on {len(examples)} images from {data}")
    try:
        results, skipped = run_grid(experiments, examples, out, args.folds, quiet=not args.verbose)
    except ValueError as error:
        raise UserError(str(error)) from error
    names = {e.name for e in experiments}
    notes = [
        f"Data: {data} ({len(examples)} distinct images, {int(examples.labels.sum())} defective). "
        f"{args.folds}-fold cross-validation, folds stratified by label and chosen by image content hash; "
        "each fold trains on k-2 folds, stops early on the next fold and is scored on its own.",
        *(f"Skipped {name}: {reason}." for name, reason in skipped.items()),
    ]
    report = write_report([r for r in results if r["experiment"] in names], out, f"Experiment grid {args.grid}", notes)
    print(f"report: {report} (and report.html, metrics.png, summary.json beside it)")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    experiment = commands.add_parser(
        "experiment",
        help="run the reference's experiment grids with k-fold cross-validation and write a report",
        description="Run GRID on DATA with k-fold cross-validation (folds by image content hash), reusing the "
        "pipeline's preprocessing_fn and trainer, and write OUT/report.md, report.html and PNG plots. "
        "Finished folds are kept in OUT/results.jsonl: rerunning the same command resumes an interrupted grid.",
    )
    experiment.add_argument("grid", choices=GRIDS, help="table2: MLP preprocessing variants x hidden units; alexnet: resolution x epochs x subsets; "
                            "robustness: the backbone model (the default), the texture model, the MLP and AlexNet with and without "
                            "augmentation, each scored on "
                            "colour-shifted copies of one test split")
    add_data_arguments(experiment)
    experiment.add_argument("--out", required=True, help="output folder for results, cached features and the report")
    experiment.add_argument("--folds", type=int, default=10, help="k of k-fold cross-validation (default %(default)s)")
    experiment.add_argument("--epochs", type=int, default=100, help="table2: maximum MLP epochs, early stopping on (default %(default)s)")
    experiment.add_argument("--resolutions", type=int, nargs="+", default=[50, 100], choices=features.CNN_RESOLUTIONS, help="alexnet: input sizes (default: 50 100; the reference: 50 100 150 200)")
    experiment.add_argument("--alexnet-epochs", type=int, nargs="+", default=[5], help="alexnet: epoch counts (default: 5, CPU-sized; the reference: 100 to 200)")
    experiment.add_argument("--ratios", type=int, nargs="+", default=[1, 2, 3], help="alexnet: majority images per minority image (default: 1 2 3)")
    experiment.add_argument("--brightness", nargs="+", default=["both", "bright", "dark"], choices=["both", "bright", "dark"], help="alexnet: subsets (default: all three)")
    experiment.add_argument("--channels", type=int, nargs="+", default=[3, 1], choices=[1, 3], help="alexnet: 3 RGB and/or 1 grayscale, the colour control (default: 3 1)")
    experiment.add_argument("--target-recall", type=float, default=None,
                            help="choose each fold's decision threshold on its validation fold to reach this recall of "
                            "defects, and report precision there (default: threshold 0.5, as the reference)")
    experiment.add_argument("--contenders", nargs="+", choices=list(CONTENDER_NAMES), default=list(CONTENDER_NAMES),
                            help="robustness: the models to compare (default: all)")
    experiment.add_argument("--model-epochs", type=int, default=None,
                            help="robustness: every model's epochs, for a quick look (default: each model's own)")
    add_verbose_flag(experiment)
    experiment.set_defaults(func=_experiment)
