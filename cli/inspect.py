"""`leather inspect`: tile a large hide photo, classify through the serving endpoint, map the defects."""
import argparse
import json
import pathlib

from cli.errors import UserError
from models.serving_contract import DEFAULT_MODEL_NAME


def _inspect(args: argparse.Namespace) -> int:
    from PIL import Image, UnidentifiedImageError

    from serving.client import PredictionError, predict_images
    from serving.inspection import inspect_image, overlay

    try:
        image = Image.open(args.image)
        image.load()
    except (OSError, UnidentifiedImageError) as error:
        raise UserError(f"cannot read image {args.image}: {error}") from error
    out = pathlib.Path(args.out or args.image.with_suffix(""))
    out.parent.mkdir(parents=True, exist_ok=True)

    def predict(batch):
        return predict_images(args.server, batch, model_name=args.model_name, batch_size=len(batch), timeout=args.timeout)

    try:
        inspection = inspect_image(image, predict, patch=args.patch, stride=args.stride, batch_size=args.batch_size)
    except ValueError as error:
        raise UserError(f"{args.image}: {error}") from error
    except PredictionError as error:
        raise UserError(str(error)) from error
    heatmap_path, json_path = out.with_name(out.name + "_heatmap.png"), out.with_name(out.name + "_defects.json")
    overlay(image, inspection).save(heatmap_path)
    report = {"image": str(args.image), **inspection.to_json()}
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"{args.image}: {len(inspection.tiles)} patches ({report['defective_patches']} defective) in "
        f"{inspection.seconds:.2f} s = {inspection.patches_per_second:.1f} patches/s; "
        f"{len(report['regions'])} defective region(s)"
    )
    print(f"heatmap: {heatmap_path}\nregions: {json_path}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    inspect = commands.add_parser(
        "inspect",
        help="tile a large hide photo and map its defects via the serving endpoint",
        description="Cut BIG_IMAGE into overlapping patches, classify them in batches through a TF Serving "
        "endpoint (predict_image), and write OUT_heatmap.png (probability overlay, defective regions outlined) "
        "and OUT_defects.json (tiles, merged defective regions, patches per second).",
    )
    inspect.add_argument("image", type=pathlib.Path, metavar="BIG_IMAGE")
    inspect.add_argument("--server", required=True, metavar="HOST:PORT", help="TF Serving gRPC address")
    inspect.add_argument("--model-name", default=DEFAULT_MODEL_NAME)
    inspect.add_argument("--patch", type=int, default=227, help="patch side in pixels (default %(default)s)")
    inspect.add_argument("--stride", type=int, default=113, help="step between patches (default %(default)s)")
    inspect.add_argument("--batch-size", type=int, default=32, help="patches per request (default %(default)s)")
    inspect.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default %(default)s)")
    inspect.add_argument("--out", default=None, help="output path prefix (default: BIG_IMAGE without suffix)")
    inspect.set_defaults(func=_inspect)
