"""The importer's output folder: what it may write, and the only files it may replace.

The manifest lists the shards an import wrote; --overwrite replaces those and
nothing else, and a shard the manifest does not list (a user's own file) stops
the import instead of being deleted or silently read by ImportExampleGen.
"""
from __future__ import annotations

import filecmp
import json
import os
import pathlib
import re

from ingest.errors import IngestError
from ingest.source_tree import display, is_utf8

SHARD_PATTERN = "data-*.tfrecord"
MANIFEST_NAME = "manifest.json"
PARTIAL_SUFFIX = ".partial"
_SHARD_NAME = re.compile(r"data-\d{5}-of-\d{5}\.tfrecord")


def own_shards(out: pathlib.Path) -> set[str]:
    """The shards an earlier import listed in its manifest: the only files --overwrite may replace."""
    manifest = out / MANIFEST_NAME
    if not manifest.exists():
        return set()
    try:
        data = json.loads(manifest.read_text())
        shards = data["shards"]
        if not ({"source", "totals"} <= data.keys() and all(_SHARD_NAME.fullmatch(name) for name in shards)):
            raise ValueError
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError):
        raise IngestError(
            f"{display(manifest)} was not written by this importer; move it away or choose another output folder"
        ) from None
    return set(shards)


def check_output(src: pathlib.Path, out: pathlib.Path, overwrite: bool) -> set[str]:
    """Refuse an output folder the importer cannot own; return the shard names it wrote there before."""
    if out == src or src in out.parents:
        raise IngestError(
            f"output folder {display(out)} is inside the source folder {display(src)}; choose a folder outside it "
            "(the next import would read it as a class)"
        )
    if not is_utf8(str(out)):
        raise IngestError(f"output folder path {display(out)} is not valid UTF-8; TensorFlow cannot write there")
    if not out.exists():
        return set()
    if not out.is_dir():
        raise IngestError(f"output path {display(out)} is not a folder")
    if not any(out.iterdir()):
        return set()
    if not overwrite:
        raise IngestError(f"output folder {display(out)} is not empty; pass --overwrite to replace its shards")
    own = own_shards(out)
    foreign = sorted(p.name for p in out.glob(SHARD_PATTERN) if p.name not in own)
    if foreign:
        raise IngestError(
            f"output folder {display(out)} holds {', '.join(foreign)}, not written by this importer (not listed in "
            f"its {MANIFEST_NAME}); move them away or choose another output folder"
        )
    return own


def settle(written: pathlib.Path, target: pathlib.Path) -> None:
    """Move a new shard into place unless an identical one is already there.

    ImportExampleGen fingerprints its input by file modification time, so
    rewriting an unchanged shard would make TFX rerun the whole pipeline.
    """
    if target.exists() and filecmp.cmp(written, target, shallow=False):
        written.unlink()
    else:
        os.replace(written, target)


def stage_manifest(out: pathlib.Path, manifest: dict) -> None:
    """Write the manifest beside its final name, before any shard is moved in, so a full disk stops the import whole."""
    (out / (MANIFEST_NAME + PARTIAL_SUFFIX)).write_text(json.dumps(manifest, indent=2) + "\n")


def commit_manifest(out: pathlib.Path) -> None:
    """Replace the manifest in one step, so a reader never sees half of it."""
    os.replace(out / (MANIFEST_NAME + PARTIAL_SUFFIX), out / MANIFEST_NAME)
