"""`leather data import` and `leather data synth`: image folders in, TFRecords out."""
import argparse
import json
import pathlib

from cli import synth_hide
from cli.arg_types import positive_int
from cli.errors import UserError
from cli.progress import Progress
from ingest.photo_file import DEFAULT_MAX_FILE_BYTES
from models import features


def _import(args: argparse.Namespace) -> int:
    from ingest.importer import IngestError
    from ingest.source_tree import display
    from ingest.spans import import_span

    try:
        span, report = import_span(
            pathlib.Path(args.src),
            pathlib.Path(args.out),
            args.span,
            clean_class=args.clean_class,
            strict=args.strict,
            overwrite=args.overwrite,
            shard_size=args.shard_size,
            max_pixels=args.max_pixels,
            max_file_bytes=args.max_file_bytes,
            progress=Progress("checking images"),
        )
    except IngestError as error:
        raise UserError(str(error)) from error
    for name, count in report.classes.items():
        print(f"{display(name):<24} label {count.label}  files {count.files:>5}  written {count.written:>5}  duplicates {count.duplicates:>4}")
    for skipped in report.skipped:
        print(f"skipped {skipped['path']}: {skipped['reason']}")
    print(
        f"wrote {report.written} examples in {len(report.shards)} shard(s) to {report.output} (span {span}) "
        f"({report.duplicates} duplicates dropped, {len(report.skipped)} files skipped)"
    )
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    return 0


def _import_article(args: argparse.Namespace) -> int:
    from cli.data_source import import_article_photos

    import_article_photos(args.clean, args.validation, args.out)
    return 0


def _synth(args: argparse.Namespace) -> int:
    from ingest.synth import generate_dataset

    out = pathlib.Path(args.out)
    try:
        counts = generate_dataset(
            out, args.count, args.seed, defect_share=args.defect_share, colour_confound=args.colour_confound,
            overwrite=args.overwrite, progress=Progress("generating images"),
        )
    except ValueError as error:
        raise UserError(str(error)) from error
    for name, count in sorted(counts.items()):
        print(f"{name:<24} {count:>5}")
    print(f"wrote {sum(counts.values())} synthetic leather images to {out}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="import image folders, generate synthetic leather")
    actions = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    imp = actions.add_parser(
        "import",
        help="turn class folders of images into a span of TFRecords",
        description="Write SRC's class folders (one sub-folder per class) as a new span OUT/span-N/ of sharded "
        "TFRecords of tf.Example (image bytes, label, defect_type, image_id = sha256, photo descriptors) plus "
        "manifest.json; `leather run --data OUT` trains on the newest span(s). Duplicates are written once; "
        "files that are not decodable JPEG/PNG images, files above --max-file-bytes, images above --max-pixels, "
        "symlinks out of SRC, loops, dangling links and special files are skipped and listed. OUT may not lie "
        "inside SRC; --overwrite replaces only the shards the span's manifest lists. See docs/ingest.md.",
    )
    imp.add_argument("src", help="folder with one sub-folder per class")
    imp.add_argument("out", help="data folder; the photos become its span-N/ folder of data-*.tfrecord shards and manifest.json")
    imp.add_argument(
        "--span", type=positive_int, default=None,
        help="the span number to write (default: the next free one, 1 in an empty folder); an existing span is "
        "replaced only with --overwrite",
    )
    imp.add_argument("--clean-class", default=features.DEFAULT_CLEAN_CLASS, help="folder name of the clean class (label 0); default: %(default)r")
    imp.add_argument("--strict", action="store_true", help="fail (exit 1) if any file or entry is skipped")
    imp.add_argument("--overwrite", action="store_true", help="with --span N, replace the shards an earlier import wrote to span N")
    imp.add_argument("--shard-size", type=int, default=1000, help="examples per shard (default %(default)s)")
    imp.add_argument(
        "--max-pixels", type=int, default=features.MAX_IMAGE_PIXELS,
        help="skip images with more pixels than this, read from the header before decoding (default and most: "
        "%(default)s, what the model's decoder accepts)",
    )
    imp.add_argument(
        "--max-file-bytes", type=positive_int, default=DEFAULT_MAX_FILE_BYTES, metavar="N",
        help="skip files larger than this, judged from their size before any byte is read (default %(default)s, "
        "256 MiB)",
    )
    imp.add_argument("--json", action="store_true", help="also print the manifest as JSON")
    imp.set_defaults(func=_import)

    article = actions.add_parser(
        "import-article",
        help="clean photos of one leather article (and validation photos with masks) -> the reference task's input",
        description="Write the clean photos of CLEAN as OUT/clean/photos.tfrecord and, with --validation, those "
        "photos (NAME_mask.png beside each defective one, white = defect) as OUT/validation/photos.tfrecord: the "
        "input of `leather run --task reference --data OUT` or of a Kubeflow run's --data-dir (`leather run --task "
        "reference` imports a photo folder itself). Every file is read and checked before anything is written.",
    )
    article.add_argument("clean", type=pathlib.Path, help="folder of clean photos of the article")
    article.add_argument("out", type=pathlib.Path, help="output folder")
    article.add_argument("--validation", type=pathlib.Path, default=None, metavar="FOLDER",
                         help="photos to score and gate the article on, with their masks")
    article.set_defaults(func=_import_article)

    synth = actions.add_parser(
        "synth",
        help="generate synthetic leather photos as class folders",
        description="Procedurally generate leather patch photos (clean and defective) as class folders that "
        "`leather data import` reads. The same arguments always give the same bytes.",
    )
    synth.add_argument("out", help="output folder for the class folders")
    synth.add_argument("--count", type=int, default=240, help="number of images (default %(default)s)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    synth.add_argument("--defect-share", type=float, default=0.5, help="share of defective images (default %(default)s)")
    synth.add_argument(
        "--colour-confound", action="store_true",
        help="a colour trap: clean hides in brown to tan hues, defective ones in blue hues, with the brightness, "
        "grain and defects of the same seed without it; a model that learns the hue scores well here and fails on "
        "colour-shifted photos",
    )
    synth.add_argument(
        "--overwrite", action="store_true",
        help="replace OUT if it is not empty, only when leather data synth wrote it (it holds .leather-synth "
        "and nothing else but its class folders of synth_*.jpg)",
    )
    synth.set_defaults(func=_synth)
    synth_hide.register(actions)
