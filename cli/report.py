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
        article = _article_run(workdir)
        if article is None:
            raise UserError(str(error)) from error
        print("\n".join(article.lines()))
        print("an article run (--task reference): these are its ArticleEvaluator's figures; the HTML page covers "
              "classifier runs")
        return 0
    page = write_report(report, out_dir)
    print(report.summary.verdict())
    print(f"report written to {page}")
    return 0


def _article_run(workdir: pathlib.Path):
    """The summary of a reference-task run recorded in the workdir, or None when it holds none."""
    import tensorflow as tf
    from tfx import v1 as tfx

    from pipeline.config import PipelineConfig
    from pipeline.evaluation.article_summary import ArticleRunSummary

    config = PipelineConfig(data_dir="", workdir=str(workdir))
    if not pathlib.Path(config.metadata_path).is_file():
        return None
    try:
        return ArticleRunSummary.load(
            config.pipeline_name, tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path)
        )
    except (LookupError, KeyError, OSError, tf.errors.OpError):
        return None


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
