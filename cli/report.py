"""`leather report`: the evaluation of a workdir's latest run as an HTML page with PNG plots.

`leather run` has printed the whole summary already; this prints the verdict and where the page is.
"""
import argparse
import pathlib

from cli.errors import UserError
from cli.progress import add_verbose_flag

DEFAULT_REPORT_DIR = "report"


def _report(args: argparse.Namespace) -> int:
    from pipeline.evaluation.page import write_report
    from pipeline.evaluation.report import ReportError, load_report

    workdir = pathlib.Path(args.workdir).resolve()
    out_dir = pathlib.Path(args.out).resolve() if args.out else workdir / DEFAULT_REPORT_DIR
    try:
        report = load_report(workdir)
    except ReportError as error:
        raise UserError(str(error)) from error
    page = write_report(report, out_dir)
    print(report.summary.verdict())
    print(f"report written to {page}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser(
        "report",
        help="write the latest run's evaluation report (HTML and PNG)",
        description="Read the newest Evaluator output recorded under WORKDIR and write index.html with the gate "
        "decisions, the metrics per slice next to the baseline's, the confusion matrix, the ROC curve and "
        "the calibration curve; print the run's verdict and the page's path.",
    )
    report.add_argument("workdir", metavar="WORKDIR", help="the --workdir of `leather run`")
    report.add_argument("--out", default=None, help=f"output folder (default WORKDIR/{DEFAULT_REPORT_DIR})")
    add_verbose_flag(report)
    report.set_defaults(func=_report)
