"""`leather inspect`: map the defects of a whole-hide photo through the serving endpoint.

The served signatures say how (docs/serving.md):
* `anomaly_map` (an article model, the reference task): the photo's patches
  against the model's own clean leather, at the model's threshold, in one request;
* `patch_features` (the default backbone classifier), without --reference: the
  photo's dense patch features in one request, every 8 px patch scored against
  the rest of its own hide outside its neighbourhood (inspection/dense_inspection.py);
* `inspect_hide` (models with an embedding; with --reference also the backbone):
  the photo in one request, its 227 px tiles scored against the rest of their
  own hide and the --reference photos' tiles;
* otherwise cropped patches classified one by one.
"""
import argparse
import json
import pathlib

from cli.arg_types import add_client_model_name, positive_float
from cli.errors import UserError

PNG_COMPRESS_LEVEL = 1
"""zlib level of the heatmap PNG: a fraction of the time of Pillow's default 6, for a slightly larger file."""


def _read(path: pathlib.Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from error


def _open_image(path: pathlib.Path):
    """The decoded photo; Pillow refuses one whose header claims more than twice its limit before decoding."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
        image.load()
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise UserError(f"cannot read image {path}: {error}") from error
    return image


def _settings(args: argparse.Namespace):
    from inspection.settings import ScoringSettings

    try:
        return ScoringSettings(
            neighbours=args.neighbours, confidence=args.confidence, classifier_weight=args.classifier_weight,
            threshold=ScoringSettings.threshold if args.threshold is None else args.threshold,
        )
    except ValueError as error:
        raise UserError(str(error)) from error


def _by_hide(args: argparse.Namespace, photo: bytes, patch: int, stride: int) -> tuple[dict, list[dict], object, object, str]:
    from inspection.client import request_tiles
    from inspection.whole_hide import inspect_hide

    references = [_read(path) for path in args.reference]

    def request(data: bytes, patch: int, stride: int):
        return request_tiles(args.server, data, patch, stride, model_name=args.model_name, timeout=args.timeout)

    settings = _settings(args)
    inspection = inspect_hide(photo, request, patch=patch, stride=stride, settings=settings, references=references)
    report = {"method": "self-referenced tile scores (inspect_hide)", **inspection.to_json()}
    summary = (
        f"{len(inspection.scores)} tiles of {patch} px in {inspection.seconds:.2f} s "
        f"({report['tiles_per_second']} tiles/s), highest score {report['max_score']} (threshold {settings.threshold})"
    )
    return report, inspection.regions, inspection.display_heat(), inspection.colour_scale(), summary


def _save_map(args: argparse.Namespace, heat, threshold: float) -> None:
    from inspection.article_inspection import save_map

    if args.save_map is None:
        return
    try:
        save_map(heat, threshold, args.save_map)
    except ValueError as error:
        raise UserError(str(error)) from error
    except OSError as error:
        raise UserError(f"cannot write {args.save_map}: {error.strerror or error}") from error


def _by_dense(args: argparse.Namespace, photo: bytes) -> tuple[dict, list[dict], object, object, str]:
    from inspection.dense_client import request_patch_features
    from inspection.dense_inspection import inspect_dense
    from inspection.settings import DENSE_THRESHOLD

    if args.scale != 1.0 or args.patch != 227 or args.stride != 113:
        raise UserError("--scale, --patch and --stride are for tile scores: dense patch scores take every 8 px patch "
                        "of the photo as it is (with --reference the tiles are scored instead)")
    threshold = DENSE_THRESHOLD if args.threshold is None else args.threshold
    inspection = inspect_dense(
        photo,
        lambda data: request_patch_features(args.server, data, model_name=args.model_name, timeout=args.timeout),
        threshold,
    )
    _save_map(args, inspection.heat, threshold)
    report = {"method": "self-referenced dense patch scores (patch_features)", **inspection.to_json()}
    rows, columns = inspection.distances.shape
    summary = (
        f"{rows * columns:,} patches in {inspection.seconds:.2f} s, highest score {report['score']} spreads above the "
        f"hide's median (threshold {report['threshold']})"
    )
    return report, inspection.regions, inspection.display_heat(), inspection.colour_scale(), summary


def _by_article(args: argparse.Namespace, photo: bytes, image) -> tuple[dict, list[dict], object, object, str]:
    from inspection.article_client import request_map
    from inspection.article_inspection import inspect_with_article

    if args.reference:
        raise UserError("--reference is for models without references of their own; the served article model was "
                        "fitted on its clean photos already")
    if args.scale != 1.0 or args.patch != 227 or args.stride != 113:
        raise UserError("--scale, --patch and --stride do not apply to an article model: it inspects at the scale it "
                        "was fitted at, so photograph the hide at its clean photos' resolution (pixels per mm)")
    if args.threshold is not None:
        raise UserError("--threshold does not apply to an article model: it flags from its own threshold, set from "
                        "its clean photos")
    from inspection.regions import MM_PER_INCH, millimetre_scale

    stated = millimetre_scale(args.px_per_mm, image.info)
    inspection = inspect_with_article(
        photo, lambda data: request_map(args.server, data, model_name=args.model_name, timeout=args.timeout),
        photo_dpi=stated["px_per_mm"] * MM_PER_INCH if stated else None,
    )
    _save_map(args, inspection.heat, inspection.answer.threshold)
    report = {"method": "article model: distance to its clean photos' patches (anomaly_map)", **inspection.to_json()}
    summary = (
        f"score {report['score']} against the article's threshold {report['threshold']} "
        f"({'defective' if report['defective'] else 'clean'}) in {inspection.seconds:.2f} s"
    )
    return report, inspection.regions, inspection.display_heat(), inspection.colour_scale(), summary


def _by_patches(args: argparse.Namespace, image, patch: int, stride: int) -> tuple[dict, list[dict], object, object, str]:
    from inspection.patches import inspect_image
    from serving.client import predict_images

    if args.reference:
        raise UserError("--reference needs a model with the hide signature (inspect_hide); the served model has none")

    def predict(batch):
        return predict_images(args.server, batch, model_name=args.model_name, batch_size=len(batch), timeout=args.timeout)

    inspection = inspect_image(image, predict, patch=patch, stride=stride, batch_size=args.batch_size)
    report = {"method": "per-patch classifier (predict_image)", **inspection.to_json()}
    summary = (
        f"{len(inspection.tiles)} patches ({report['defective_patches']} defective) in {inspection.seconds:.2f} s = "
        f"{inspection.patches_per_second:.1f} patches/s"
    )
    return report, report["regions"], inspection.heatmap, inspection.colour_scale, summary


def _region_line(region: dict) -> str:
    score = region.get("score", region.get("max_probability"))
    box = region["box"]
    line = (f"  {region['number']}. score {score} at x {box['x']}, y {box['y']}: {box['width']}x{box['height']} px, "
            f"{region['defect_pixels']:,} defective px")
    if "size_mm" in region:
        size = region["size_mm"]
        line += f" ({size['width']:g}x{size['height']:g} mm, {size['defect_area_mm2']:g} mm2)"
    return line


def _inspect(args: argparse.Namespace) -> int:
    from inspection.client import served_signatures
    from models.article_export import ANOMALY_MAP_SIGNATURE
    from models.hide_signature import HIDE_SIGNATURE
    from models.patch_signature import PATCH_FEATURES_SIGNATURE
    from inspection.maps import inspection_map
    from inspection.regions import millimetre_scale, with_millimetres
    from serving.client import PredictionError

    if args.scale <= 0:
        raise UserError(f"--scale must be positive, got {args.scale}")
    if args.heatmap_side < 0:
        raise UserError(f"--heatmap-side must be 0 (full size) or positive, got {args.heatmap_side}")
    patch, stride = round(args.patch * args.scale), round(args.stride * args.scale)
    photo = _read(args.image)
    image = _open_image(args.image)
    out = pathlib.Path(args.out or args.image.with_suffix(""))
    try:
        signatures = served_signatures(args.server, model_name=args.model_name, timeout=args.timeout)
        dense = PATCH_FEATURES_SIGNATURE in signatures and not args.reference
        if args.save_map is not None and ANOMALY_MAP_SIGNATURE not in signatures and not dense:
            raise UserError("--save-map needs an article model (one fitted with `leather run --task reference`) or a "
                            "model with dense patch features (the backbone) without --reference")
        if ANOMALY_MAP_SIGNATURE in signatures:
            report, regions, heat, colour_scale, summary = _by_article(args, photo, image)
        elif dense:
            report, regions, heat, colour_scale, summary = _by_dense(args, photo)
        elif HIDE_SIGNATURE in signatures:
            report, regions, heat, colour_scale, summary = _by_hide(args, photo, patch, stride)
        else:
            report, regions, heat, colour_scale, summary = _by_patches(args, image, patch, stride)
    except ValueError as error:
        raise UserError(f"{args.image}: {error}") from error
    except PredictionError as error:
        raise UserError(str(error)) from error
    millimetres = millimetre_scale(args.px_per_mm, image.info)
    if millimetres is not None:
        regions = with_millimetres(regions, millimetres["px_per_mm"])
    if not args.tiles:
        report.pop("tiles", None)
    out.parent.mkdir(parents=True, exist_ok=True)
    heatmap_path, json_path = out.with_name(out.name + "_heatmap.png"), out.with_name(out.name + "_defects.json")
    inspection_map(image, heat, regions, colour_scale, args.heatmap_side).save(heatmap_path, compress_level=PNG_COMPRESS_LEVEL)
    document = {"image": str(args.image), "scale": args.scale, "millimetres": millimetres, **report, "regions": regions}
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"{args.image}: {summary}; {len(regions)} defective region(s)")
    for region in regions[:10]:
        print(_region_line(region))
    print(f"heatmap: {heatmap_path}\nregions: {json_path}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    from inspection.settings import DENSE_THRESHOLD, HEATMAP_MAX_SIDE, ScoringSettings

    defaults = ScoringSettings()
    inspect = commands.add_parser(
        "inspect",
        help="map the defects of a whole-hide photo via the serving endpoint",
        description="Map the defects of BIG_IMAGE; the served model's signatures say how. With an article model "
        "(`leather run --task reference`, picked with --model NAME among those served) the photo goes to the server "
        "in one request and every 8 px patch is scored by its distance to the nearest clean patch of that leather, "
        "against the model's own threshold. With a model that has dense patch features (the default backbone) and "
        "no --reference, the photo goes to the server in one request for the features of every 8 px patch, and "
        "each patch is scored by its distance to the nearest patch of the same hide outside its neighbourhood, in "
        "the hide's own spreads above its median. With a model that has the hide signature (the texture model; the "
        "backbone with --reference) the photo goes to the server in one request, every tile is embedded, and each "
        "tile is scored by its distance to its nearest non-overlapping tiles of the same hide (and of --reference "
        "photos of clean leather of the same article), in the hide's own spreads above its median, plus the "
        "classifier's word where it is confident. Other models classify the patches one by one through "
        "predict_image. Writes OUT_heatmap.png "
        "(score overlay, defective regions outlined and numbered, a colour bar with its unit below) and "
        "OUT_defects.json (the regions by number with score, box and defective pixels, in millimetres too with "
        "--px-per-mm or a photo that states its DPI; every tile with --tiles). See docs/serving.md.",
    )
    inspect.add_argument("image", type=pathlib.Path, metavar="BIG_IMAGE")
    inspect.add_argument("--server", required=True, metavar="HOST:PORT", help="TF Serving gRPC address")
    add_client_model_name(inspect)
    inspect.add_argument(
        "--patch", type=int, default=227,
        help="tile side in photo pixels at --scale 1, for tile scores and patch classification (default %(default)s)",
    )
    inspect.add_argument("--stride", type=int, default=113, help="step between tiles, likewise (default %(default)s)")
    inspect.add_argument(
        "--scale", type=float, default=1.0,
        help="photo pixels per pixel of the training photos (the photo's pixels per mm over theirs): tiles of "
        "--patch x SCALE photo pixels show what a --patch px training photo shows (default %(default)s)",
    )
    inspect.add_argument(
        "--reference", type=pathlib.Path, nargs="+", default=[], metavar="CLEAN",
        help="photos of clean leather of the same article whose tiles join the hide's own as reference (tile "
        "scores, also with a model that has dense patch features)",
    )
    inspect.add_argument(
        "--threshold", type=float, default=None,
        help="score from which a pixel is defective, in the hide's own spreads above its median (default "
        f"{DENSE_THRESHOLD:g} for dense patch scores, {defaults.threshold:g} for tile scores; an article model "
        "has its own)",
    )
    scoring_help = {
        "neighbours": "tile scores: nearest non-overlapping tiles a tile is compared with",
        "confidence": "tile scores: classifier probability from which its word counts",
        "classifier_weight": "tile scores: weight of the classifier's hide-normalised logit beside the distance score",
    }
    for name, help_text in scoring_help.items():
        default = getattr(defaults, name)
        inspect.add_argument(
            "--" + name.replace("_", "-"), type=type(default), default=default,
            help=f"{help_text} (default %(default)s)",
        )
    inspect.add_argument(
        "--batch-size", type=int, default=32,
        help="patches per request, for models without the hide signature (default %(default)s)",
    )
    inspect.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default %(default)s)")
    inspect.add_argument(
        "--heatmap-side", type=int, default=HEATMAP_MAX_SIDE,
        help="longest side of the heatmap PNG, the photo shrunk to it (0: full size; default %(default)s)",
    )
    inspect.add_argument(
        "--px-per-mm", type=positive_float, default=None, metavar="N",
        help="photo pixels per millimetre of leather, for region sizes in mm (default: from the photo's DPI when it "
        "states one; the JSON says which source was used)",
    )
    inspect.add_argument("--tiles", action="store_true", help="write every tile's score into the JSON too")
    inspect.add_argument(
        "--save-map", type=pathlib.Path, default=None, metavar="FILE",
        help="article models and dense patch scores: write the raw map at photo resolution (an article's "
        "distances, or the dense scores in the hide's spreads above its median), FILE.npy (float32 scores) or "
        "FILE.png (16-bit gray, score / (2 x threshold), clipped to [0, 1]), so anyone can score it",
    )
    inspect.add_argument("--out", default=None, help="output path prefix (default: BIG_IMAGE without suffix)")
    inspect.set_defaults(func=_inspect)
