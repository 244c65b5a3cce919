"""Spans: each `leather data import` into a data folder adds `span-N/`, and runs train on the newest.

TFX's span machinery reads the layout: ImportExampleGen's input pattern
`span-{SPAN}/data-*.tfrecord` takes the newest span, its Examples carry the span
number, and a new span is what makes a cached pipeline run again. Span numbers
start at 1 and are written without leading zeros; a folder TFX would read as a
span but this importer would not name so (`span-01`) stops a run rather than
being read as span 1 beside the real one.
"""
from __future__ import annotations

import contextlib
import pathlib
import re

from ingest.errors import IngestError
from ingest.importer import SHARD_PATTERN, ImportReport, import_images
from ingest.source_tree import display
from ingest.span_claim import SpanBusy, span_claim

SPAN_PREFIX = "span-"
SPAN_SHARD_PATTERN = f"{SPAN_PREFIX}{{SPAN}}/{SHARD_PATTERN}"
"""ImportExampleGen's input pattern: TFX puts the span number in for {SPAN}."""
FIRST_SPAN = 1
_SPAN_NAME = re.compile(r"span-(\d+)")


def span_dir(data_dir: pathlib.Path, span: int) -> pathlib.Path:
    return data_dir / f"{SPAN_PREFIX}{span}"


def span_number(name: str, where: str) -> int | None:
    """The span a folder called `name` holds, None if TFX would not read it as one; a look-alike is an error."""
    match = _SPAN_NAME.fullmatch(name)
    if not match:
        return None
    if match.group(1) != str(int(match.group(1))) or int(match.group(1)) < FIRST_SPAN:
        raise IngestError(
            f"{where} is not a span folder this importer writes (span-1, span-2, ...; no leading zeros), "
            "but TFX would read it as a span; rename or move it"
        )
    return int(match.group(1))


def span_numbers(data_dir: pathlib.Path) -> list[int]:
    """The spans under `data_dir`, oldest first; a look-alike folder name is an error naming it."""
    entries = sorted(data_dir.iterdir()) if data_dir.is_dir() else []
    numbers = (span_number(entry.name, display(entry)) for entry in entries if entry.is_dir())
    return sorted(number for number in numbers if number is not None)


def check_span_layout(data_dir: pathlib.Path) -> list[int]:
    """The spans a run can train on, or an error saying what the folder holds instead."""
    if not data_dir.is_dir():
        raise IngestError(f"{display(data_dir)} is not a folder")
    spans = span_numbers(data_dir)
    if spans:
        return spans
    if any(data_dir.glob(SHARD_PATTERN)):
        raise IngestError(
            f"{display(data_dir)} holds {SHARD_PATTERN} shards of an import made before spans; import the photos "
            f"again (`leather data import SRC {display(data_dir)}` writes {SPAN_PREFIX}1/)"
        )
    raise IngestError(f"{display(data_dir)} holds no {SPAN_PREFIX}N folders; `leather data import SRC DIR` writes them")


def newest_span_dir(data_dir: pathlib.Path) -> pathlib.Path:
    """The span a run reads: ImportExampleGen takes the newest."""
    return span_dir(data_dir, check_span_layout(data_dir)[-1])


def import_span(
    src: pathlib.Path, data_dir: pathlib.Path, span: int | None = None, *, overwrite: bool = False, **import_args
) -> tuple[int, ImportReport]:
    """Imports `src` as span `span` of `data_dir`, or as the next free span; returns the span and the report.

    Every import claims its span for as long as it runs (ingest/span_claim.py),
    so two imports into one span never write it at once: the second is refused,
    naming the first; without --span it takes the next free number instead.
    Replacing an existing span needs `overwrite`, like the importer's own output
    folder; unchanged shards keep their dates, so the cached run stays cached.
    """
    if span is not None and span < FIRST_SPAN:
        raise IngestError(f"--span must be {FIRST_SPAN} or more, got {span}")
    if data_dir.exists() and not data_dir.is_dir():
        raise IngestError(f"output path {display(data_dir)} is not a folder")
    if data_dir.is_dir() and any(data_dir.glob(SHARD_PATTERN)):
        raise IngestError(
            f"{display(data_dir)} holds {SHARD_PATTERN} shards of an import made before spans; choose a new output "
            "folder, or move them away and import again"
        )
    created = not data_dir.exists()
    try:
        with contextlib.ExitStack() as claim:
            data_dir.mkdir(parents=True, exist_ok=True)
            target, made = _claim(claim, data_dir, span)
            try:
                report = import_images(src, target, overwrite=overwrite, **import_args)
            except BaseException:
                if made and target.is_dir() and not any(target.iterdir()):
                    target.rmdir()
                raise
    except BaseException as error:
        if created and data_dir.is_dir() and not any(data_dir.iterdir()):
            data_dir.rmdir()
        if isinstance(error, OSError):
            raise IngestError(f"cannot write to {display(error.filename or data_dir)}: {error.strerror or error}") from None
        raise
    return int(target.name.removeprefix(SPAN_PREFIX)), report


def _claim(claim: contextlib.ExitStack, data_dir: pathlib.Path, span: int | None) -> tuple[pathlib.Path, bool]:
    """The span folder to write, held in `claim`, and whether this import created it (so removes it on failure)."""
    if span is not None:
        claim.enter_context(span_claim(data_dir, span))
        target = span_dir(data_dir, span)
        made = not target.exists()
        target.mkdir(exist_ok=True)
        return target, made
    number = max(span_numbers(data_dir), default=FIRST_SPAN - 1) + 1
    while True:
        target = span_dir(data_dir, number)
        with contextlib.ExitStack() as attempt:
            try:
                attempt.enter_context(span_claim(data_dir, number))
                target.mkdir()
            except (SpanBusy, FileExistsError):
                number += 1
                continue
            claim.enter_context(attempt.pop_all())
            return target, True
