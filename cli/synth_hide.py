"""`leather data synth-hide`: synthetic whole-hide photos with planted defects and their masks."""
import argparse
import pathlib

from cli.errors import UserError
from cli.progress import Progress


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT in pixels, e.g. 2048x1536, not {text!r}") from None
    return width, height


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _numbers(text: str) -> list[float]:
    try:
        return [float(part) for part in _names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, not {text!r}") from None


def _synth_hide(args: argparse.Namespace) -> int:
    from ingest.synth_hide import generate_hides, hide_specs

    out = pathlib.Path(args.out)
    width, height = args.size
    try:
        specs = hide_specs(
            args.count, args.seed, width, height, colours=args.colours, grains=args.grains,
            clean_share=args.clean_share, max_defects=args.max_defects,
        )
        manifest = generate_hides(out, specs, args.seed, overwrite=args.overwrite, progress=Progress("drawing hides"))
    except ValueError as error:
        raise UserError(str(error)) from error
    hides = manifest["hides"]
    defects = sum(len(hide["defects"]) for hide in hides)
    clean = sum(not hide["defects"] for hide in hides)
    print(f"wrote {len(hides)} synthetic hides of {width}x{height} px to {out}: {clean} clean, "
          f"{len(hides) - clean} with {defects} defects (masks *_mask.png, details hides.json)")
    return 0


def register(actions: argparse._SubParsersAction) -> None:
    """Adds `synth-hide` to `leather data`."""
    synth = actions.add_parser(
        "synth-hide",
        help="generate synthetic whole-hide photos with planted defects and masks",
        description="Draw large leather photos at the scale of `leather data synth`'s patches, in named base "
        "colours, with faint natural marks everywhere and 1 to --max-defects clear defects of the known kinds on "
        "the defective ones. Writes OUT/hide_NNNN.jpg, OUT/hide_NNNN_mask.png beside each defective photo (white = "
        "defect; a photo without a mask is clean, as in MVTec AD) and OUT/hides.json. The same arguments always "
        "give the same hides.",
    )
    synth.add_argument("out", help="output folder")
    synth.add_argument("--count", type=int, default=10, help="number of hides (default %(default)s)")
    synth.add_argument("--size", type=_size, default=(2048, 1536), metavar="WxH", help="photo size (default 2048x1536)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    synth.add_argument(
        "--colours", type=_names, default=None, metavar="NAME,...",
        help="base colours to draw from: brown, tan, black, burgundy, navy, olive, cream, grey (default all)",
    )
    synth.add_argument(
        "--grains", type=_numbers, default=[1.0], metavar="SCALE,...",
        help="grain sizes relative to the training photos' to draw from, 0.5 to 2 (default 1)",
    )
    synth.add_argument("--clean-share", type=float, default=0.3, help="share of clean hides (default %(default)s)")
    synth.add_argument("--max-defects", type=int, default=3, help="most defects on one hide (default %(default)s)")
    synth.add_argument(
        "--overwrite", action="store_true",
        help="replace OUT if leather data synth-hide wrote it (it holds .leather-synth-hide and only its files)",
    )
    synth.set_defaults(func=_synth_hide)
