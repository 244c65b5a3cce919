"""The `--data` of `leather run` and `leather experiment`: TFRecord shards, or class folders imported first.

Both commands accept what a user has at hand, a folder of photos, and read the
same shards `leather data import` writes.
"""
import argparse
import pathlib

from cli.errors import UserError
from models import features

IMPORTED_DIR = "tfrecords"
"""Where image folders are imported to, under the command's output folder."""


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="a folder of data-*.tfrecord shards, or an image folder with one sub-folder per class")
    parser.add_argument("--clean-class", default=features.DEFAULT_CLEAN_CLASS, help="clean-class folder when --data is an image folder")


def tfrecord_dir(data: pathlib.Path, out: pathlib.Path, clean_class: str) -> pathlib.Path:
    """`data` itself when it holds shards; otherwise its image folders imported into `out`/tfrecords first."""
    from ingest.importer import SHARD_PATTERN, IngestError, import_images

    if not data.is_dir():
        raise UserError(f"--data {data} is not a folder")
    if any(data.glob(SHARD_PATTERN)):
        return data
    target = out / IMPORTED_DIR
    print(f"importing images from {data} into {target}")
    try:
        report = import_images(data, target, clean_class=clean_class, overwrite=True)
    except IngestError as error:
        raise UserError(str(error)) from error
    print(f"imported {report.written} images ({report.duplicates} duplicates dropped, {len(report.skipped)} skipped)")
    for skipped in report.skipped:
        print(f"  skipped {skipped['path']}: {skipped['reason']}")
    return target
