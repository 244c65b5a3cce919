"""`leather inspect-eval`: fit an article on a folder in MVTec AD's layout and report how it inspects the test photos."""
import argparse
import json
import pathlib

from cli.config_args import add_article_arguments, article_from_args
from cli.errors import UserError


def _inspect_eval(args: argparse.Namespace) -> int:
    if not args.folder.is_dir():
        raise UserError(f"{args.folder} is not a folder")
    try:
        config = article_from_args(args)
    except ValueError as error:
        raise UserError(str(error)) from error
    from ingest.errors import IngestError
    from inspection.mvtec_evaluation import evaluate_mvtec

    try:
        figures = evaluate_mvtec(args.folder, config)
    except (IngestError, ValueError) as error:
        raise UserError(str(error)) from error
    text = json.dumps(figures, indent=2) + "\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.output.with_name(f".{args.output.name}.partial")
    temporary.write_text(text)
    temporary.replace(args.output)
    print(text, end="")
    print(f"written: {args.output}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "inspect-eval",
        help="fit an article on FOLDER/train/good and score its inspection of FOLDER/test (MVTec AD layout)",
        description="Fit an article model on the clean photos of FOLDER/train/good (as `leather run --task reference` "
        "does), serve it on a local port, inspect every photo of FOLDER/test/<kind>/ through the served anomaly_map "
        "signature, and print and write the figures MVTec AD reports: image_roc_auc, pixel_roc_auc (against "
        "FOLDER/ground_truth/<kind>/NAME_mask.png), defects_located (share of defects a region touches), "
        "false_alarms_per_clean_photo (regions touching no defect), seconds_per_photo (end to end), fit_seconds. "
        "test/good holds the clean photos.",
    )
    evaluate.add_argument("folder", type=pathlib.Path, metavar="FOLDER", help="one category in MVTec AD's layout")
    evaluate.add_argument("--output", type=pathlib.Path, default=pathlib.Path("inspect-eval.json"), metavar="FILE.json",
                          help="where the figures are written (default %(default)s)")
    add_article_arguments(evaluate.add_argument_group("article"))
    evaluate.set_defaults(func=_inspect_eval)
