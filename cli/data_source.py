"""The `--data` of `leather run` and `leather experiment`: a data folder of spans, or class folders imported first.

Both commands accept what a user has at hand, a folder of photos, and read the
same spans `leather data import` writes.
"""
import argparse
import pathlib

from cli.errors import UserError
from models import features

IMPORTED_DIR = "tfrecords"
"""Where image folders are imported to, under the command's output folder."""


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", required=True,
        help="a data folder of span-N/ folders (from `leather data import`), or an image folder with one sub-folder "
        "per class (imported as span 1 under the output folder)",
    )
    parser.add_argument("--clean-class", default=features.DEFAULT_CLEAN_CLASS, help="clean-class folder when --data is an image folder")


def check_data_folder(data: pathlib.Path) -> None:
    """The one check of --data, cheap enough for a command to make before it loads TensorFlow."""
    if not data.is_dir():
        raise UserError(f"--data {data} is not a folder" if data.exists() else f"--data {data} does not exist")


def tfrecord_dir(data: pathlib.Path, out: pathlib.Path, clean_class: str) -> pathlib.Path:
    """`data` itself when it holds spans; otherwise its image folders imported into `out`/tfrecords as span 1."""
    from ingest.importer import SHARD_PATTERN, IngestError
    from ingest.spans import FIRST_SPAN, check_span_layout, import_span, span_numbers

    check_data_folder(data)
    try:
        if span_numbers(data) or any(data.glob(SHARD_PATTERN)):
            check_span_layout(data)
            return data
        target = out / IMPORTED_DIR
        print(f"importing images from {data} into {target}")
        _, report = import_span(data, target, FIRST_SPAN, clean_class=clean_class, overwrite=True)
    except IngestError as error:
        raise UserError(str(error)) from error
    print(f"imported {report.written} images ({report.duplicates} duplicates dropped, {len(report.skipped)} skipped)")
    for skipped in report.skipped:
        print(f"  skipped {skipped['path']}: {skipped['reason']}")
    return target


ARTICLE_DIR = "article-photos"
"""Where `leather run --task reference` writes the clean and validation photos as TFRecords, under the workdir."""


def import_article_photos(clean: pathlib.Path, validation: pathlib.Path | None, target: pathlib.Path) -> None:
    """The clean photos of `clean` and those of `validation` as the reference task's TFRecords under `target`."""
    from ingest.article_photos import folder_photos, import_article
    from ingest.errors import IngestError

    try:
        clean_photos = folder_photos(clean)
        validation_photos = folder_photos(validation) if validation is not None else []
        import_article(clean_photos, validation_photos, target)
    except IngestError as error:
        raise UserError(str(error)) from error
    print(f"article photos: {len(clean_photos)} clean, {len(validation_photos)} for validation ({target})")


def article_dir(clean: pathlib.Path, validation: pathlib.Path | None, out: pathlib.Path) -> pathlib.Path:
    """The reference task's input: `clean` itself when it holds imported photos, else its photos imported under `out`."""
    from ingest.article_photos import CLEAN_SPLIT, SHARD_NAME

    if (clean / CLEAN_SPLIT / SHARD_NAME).is_file():
        if validation is not None:
            raise UserError(f"--data {clean} holds imported photos already: import the validation photos with them "
                            "(leather data import-article --validation)")
        return clean
    target = out / ARTICLE_DIR
    import_article_photos(clean, validation, target)
    return target
