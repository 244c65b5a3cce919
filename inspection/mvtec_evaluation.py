"""`leather inspect-eval`: an article fitted and judged on a folder in MVTec AD's layout, as the field reports it.

The article is fitted on `train/good` by the same `fit_article` and
`export_article` the pipeline's Trainer runs, exported as version 1 of a model
served by `leather serve`'s own server on a free local port, and every test
photo goes through the served `anomaly_map` signature over gRPC, as a station's
would. The figures (inspection/article_evaluation.py) are what MVTec AD papers
report, plus the seconds each photo took end to end and the fitting time.
"""
from __future__ import annotations

import dataclasses
import pathlib
import tempfile
import time
from collections.abc import Callable

from ingest.article_photos import LabelledPhoto, mvtec_photos, read_labelled
from inspection.article_client import request_map
from inspection.article_evaluation import article_summary, judge_photos
from models.article import FittedArticle, fit_article
from models.article_export import export_article
from models.spec import ArticleConfig
from serving.server import ServingServer

MODEL_NAME = "article"
LOAD_TIMEOUT = 120.0
"""Seconds the exported article may take to load and warm up before the evaluation gives up."""


def serve_article(fitted: FittedArticle, folder: pathlib.Path) -> ServingServer:
    """The fitted article exported as version 1 under `folder` and served on a free local port, once loaded.

    The caller stops the server.
    """
    export_article(fitted, str(folder / "1"))
    server = ServingServer(folder, MODEL_NAME, host="127.0.0.1", port=0, poll_seconds=0.2)
    server.start()
    deadline = time.monotonic() + LOAD_TIMEOUT
    while not server.store.loaded_versions():
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"the fitted article did not load within {LOAD_TIMEOUT:.0f} s")
        time.sleep(0.2)
    return server


def _labelled(photos: list[LabelledPhoto], root: pathlib.Path) -> list[tuple[str, bytes, bytes]]:
    return [(str(photo.photo.relative_to(root)), *read_labelled(photo)) for photo in photos]


def evaluate_mvtec(
    root: pathlib.Path, config: ArticleConfig = ArticleConfig(), progress: Callable[[str], None] = print
) -> dict:
    """Fit on `root`/train/good, judge every `root`/test photo through the served model; the figures as a dict."""
    train, test = mvtec_photos(root)
    references = [(name, data) for name, data, _ in _labelled(train, root)]
    fitted = fit_article(references, config, progress)
    progress(f"fitted on {len(references)} clean photos in {fitted.seconds:.1f} s, threshold {fitted.threshold:.2f}")
    with tempfile.TemporaryDirectory(prefix="leather-article-") as folder:
        server = serve_article(fitted, pathlib.Path(folder))
        try:
            photos = _labelled(test, root)
            progress(f"inspecting {len(photos)} test photos through the served anomaly_map signature")
            outcomes = judge_photos(photos, lambda data: request_map(server.address, data, model_name=MODEL_NAME))
        finally:
            server.stop()
    return {
        "folder": str(root),
        "references": len(references),
        "fit_seconds": round(fitted.seconds, 2),
        "threshold": round(fitted.threshold, 3),
        "bank_patches": int(len(fitted.bank)),
        "config": dataclasses.asdict(config),
        **article_summary(outcomes),
    }
