"""Turn a folder of labelled leather photos into sharded TFRecords for ImportExampleGen.

The importer is the pipeline's first line of defence: every file either becomes
exactly one correctly labelled tf.Example or is named in the report with the
reason it was left out. It runs in two passes so that a conflict found late
(the same bytes filed under two classes) can still keep both copies out. It
touches only its own files in the output folder (the shards its manifest lists),
and writes all shards and the manifest before replacing any, so a failure (a
full disk, a folder it may not write) leaves the old set whole and is one line.
Each example also holds the photo's descriptors (models/photo_descriptors.py),
computed by the graph `leather monitor` runs on served photos, for TFDV.
"""
from __future__ import annotations

import dataclasses
import hashlib
import pathlib
import unicodedata
from collections.abc import Callable

from ingest.errors import IngestError
from ingest.output_folder import (
    MANIFEST_NAME, PARTIAL_SUFFIX, SHARD_PATTERN, check_output, commit_manifest, settle, stage_manifest,
)
from ingest.photo_file import DEFAULT_MAX_FILE_BYTES, read_at_most, read_photo
from ingest.source_tree import Kind, classify, display, files_under, is_utf8, skip_entry
from models import features

__all__ = ["MANIFEST_NAME", "SHARD_PATTERN", "IngestError", "ImportReport", "import_images"]


@dataclasses.dataclass
class ClassCount:
    label: int
    files: int = 0
    written: int = 0
    duplicates: int = 0


@dataclasses.dataclass
class ImportReport:
    source: str
    output: str
    clean_class: str
    classes: dict[str, ClassCount]
    skipped: list[dict[str, str]]
    ignored_root_files: list[str]
    shards: list[str]

    @property
    def written(self) -> int:
        return sum(c.written for c in self.classes.values())

    @property
    def duplicates(self) -> int:
        return sum(c.duplicates for c in self.classes.values())

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["totals"] = {
            "written": self.written,
            "duplicates_dropped": self.duplicates,
            "skipped": len(self.skipped),
            "by_label": {
                str(label): sum(c.written for c in self.classes.values() if c.label == label)
                for label in (features.CLEAN, features.DEFECTIVE)
            },
        }
        return data


@dataclasses.dataclass(frozen=True)
class _Accepted:
    path: pathlib.Path
    class_name: str
    image_id: str


@dataclasses.dataclass
class _Source:
    folders: list[pathlib.Path]
    root_files: list[str]
    skipped: list[dict[str, str]]


def _normalised(name: str) -> str:
    """A folder name as a person reads it: case, Unicode form and spacing do not matter."""
    return " ".join(unicodedata.normalize("NFKC", name).split()).casefold()


def _check_class_names(src: pathlib.Path, names: list[str], clean_class: str) -> None:
    if not names:
        raise IngestError(f"{display(src)} holds no class folders (expected one sub-folder per class)")
    undecodable = [f"'{display(name)}'" for name in names if not is_utf8(name)]
    if undecodable:
        raise IngestError(
            f"class folder name(s) {', '.join(undecodable)} in {display(src)} are not valid UTF-8; rename them "
            "(each example stores its class name as text)"
        )
    look_alikes = [name for name in names if name != clean_class and _normalised(name) == _normalised(clean_class)]
    if look_alikes:
        raise IngestError(
            f"class folder(s) {', '.join(map(repr, look_alikes))} in {display(src)} look like the clean class "
            f"{clean_class!r} but are spelled differently, so their photos would be labelled defective; merge them "
            "into one folder named exactly as the clean class, or name it with --clean-class"
        )
    if clean_class not in names:
        raise IngestError(
            f"no clean-class folder {clean_class!r} in {display(src)} (found: {', '.join(map(display, names))}); "
            "name the clean class with --clean-class"
        )


def _read_source(src: pathlib.Path, clean_class: str) -> _Source:
    """Class folders, ignored root files and skipped root entries; hidden folders are not classes."""
    if not src.is_dir():
        raise IngestError(f"source folder {display(src)} does not exist or is not a folder")
    source = _Source(folders=[], root_files=[], skipped=[])
    try:
        entries = sorted(src.iterdir())
    except OSError as error:
        raise IngestError(f"cannot read source folder {display(src)}: {error.strerror or error}") from None
    for path in entries:
        kind, reason = classify(path, src)
        if kind is Kind.FOLDER and not path.name.startswith("."):
            source.folders.append(path)
        elif kind is Kind.FILE:
            source.root_files.append(display(path.name))
        elif kind is Kind.SKIP:
            source.skipped.append(skip_entry(path, src, reason))
    _check_class_names(src, [f.name for f in source.folders], clean_class)
    return source


def _scan(
    src: pathlib.Path,
    folders: list[pathlib.Path],
    clean_class: str,
    max_bytes: int,
    max_pixels: int,
    progress: Callable[[int, int], None] | None,
) -> tuple[list[_Accepted], dict[str, ClassCount], list[dict[str, str]]]:
    """First pass: validate and hash every file, drop duplicates, find label conflicts."""
    classes = {
        f.name: ClassCount(label=features.CLEAN if f.name == clean_class else features.DEFECTIVE)
        for f in folders
    }
    all_files: list[tuple[str, pathlib.Path]] = []
    skipped: list[dict[str, str]] = []
    for folder in folders:
        files, not_read = files_under(folder, src)
        all_files += [(folder.name, path) for path in files]
        skipped += not_read
    accepted: dict[str, _Accepted] = {}
    classes_of: dict[str, set[str]] = {}
    for done, (class_name, path) in enumerate(all_files, start=1):
        classes[class_name].files += 1
        try:
            data, problem = read_photo(path, max_bytes, max_pixels)
        except OSError as error:
            skipped.append(skip_entry(path, src, f"unreadable: {error.strerror or error}"))
            continue
        if data is None:
            skipped.append(skip_entry(path, src, problem))
        else:
            image_id = hashlib.sha256(data).hexdigest()
            classes_of.setdefault(image_id, set()).add(class_name)
            if image_id in accepted and accepted[image_id].class_name == class_name:
                classes[class_name].duplicates += 1
            elif image_id not in accepted:
                accepted[image_id] = _Accepted(path, class_name, image_id)
        if progress:
            progress(done, len(all_files))
    for image_id, names in classes_of.items():
        if len(names) > 1:
            reason = "identical bytes filed under several classes: " + ", ".join(sorted(names))
            skipped.append(skip_entry(accepted.pop(image_id).path, src, reason))
    return list(accepted.values()), classes, skipped


def _example(data: bytes, label: int, class_name: str, image_id: str, descriptors: dict) -> bytes:
    import tensorflow as tf

    def _bytes(value: bytes) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def _int(value: int) -> tf.train.Feature:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    feature = {
        features.IMAGE_KEY: _bytes(data),
        features.LABEL_KEY: _int(label),
        features.DEFECT_TYPE_KEY: _bytes(class_name.encode("utf-8")),
        features.IMAGE_ID_KEY: _bytes(image_id.encode("ascii")),
    }
    feature.update(descriptors)
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _described(src: pathlib.Path, batch: list[_Accepted], max_bytes: int) -> tuple[list[bytes], list[dict]]:
    """The photos of `batch`, checked unchanged since the scan, and their descriptor features from one graph call."""
    import tensorflow as tf

    from models.photo_descriptors import descriptor_feature_rows

    photos = []
    for item in batch:
        try:
            data = read_at_most(item.path, max_bytes + 1)
        except OSError as error:
            raise IngestError(f"cannot read {display(item.path.relative_to(src))}: {error.strerror or error}") from None
        if hashlib.sha256(data).hexdigest() != item.image_id:
            raise IngestError(f"{display(item.path.relative_to(src))} changed while it was being imported")
        photos.append(data)
    try:
        described = descriptor_feature_rows(photos)
    except tf.errors.InvalidArgumentError:
        if len(batch) == 1:
            name = display(batch[0].path.relative_to(src))
            raise IngestError(f"{name}: its descriptors cannot be computed") from None
        for item in batch:  # the scan let every photo through, so find the one the graph refuses and name it
            _described(src, [item], max_bytes)
        raise
    return photos, described


def _shard_names(examples: int, shard_size: int) -> list[str]:
    count = max(1, -(-examples // shard_size))
    return [f"data-{i:05d}-of-{count:05d}.tfrecord" for i in range(count)]


def _write_partials(
    src: pathlib.Path,
    out: pathlib.Path,
    accepted: list[_Accepted],
    classes: dict[str, ClassCount],
    names: list[str],
    shard_size: int,
    max_bytes: int,
) -> None:
    """Write every shard beside its final name (`name.partial`); the caller moves them in or removes them."""
    import tensorflow as tf

    for index, name in enumerate(names):
        with tf.io.TFRecordWriter(str(out / (name + PARTIAL_SUFFIX))) as writer:
            shard = accepted[index * shard_size : (index + 1) * shard_size]
            for start in range(0, len(shard), features.DESCRIBE_BATCH):
                batch = shard[start : start + features.DESCRIBE_BATCH]
                for item, data, descriptors in zip(batch, *_described(src, batch, max_bytes), strict=True):
                    label = classes[item.class_name].label
                    writer.write(_example(data, label, item.class_name, item.image_id, descriptors))
                    classes[item.class_name].written += 1


def _write_error(error: BaseException, out: pathlib.Path) -> BaseException:
    """A failed write (full disk, no permission) as one line naming the folder; any other error unchanged."""
    import tensorflow as tf

    if isinstance(error, OSError):
        return IngestError(f"cannot write to {display(out)}: {error.strerror or error}")
    if isinstance(error, tf.errors.OpError) and not isinstance(error, tf.errors.InvalidArgumentError):
        return IngestError(f"cannot write to {display(out)}: {error.message.split('; ')[-1]}")
    return error


def import_images(
    src: pathlib.Path,
    out: pathlib.Path,
    *,
    clean_class: str = features.DEFAULT_CLEAN_CLASS,
    strict: bool = False,
    overwrite: bool = False,
    shard_size: int = 1000,
    max_pixels: int = features.MAX_IMAGE_PIXELS,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import class folders under `src` into TFRecord shards and a manifest under `out`.

    Raises IngestError for an unusable layout or output folder, and in strict mode
    for any skipped file or entry, before anything is written.
    """
    if shard_size < 1:
        raise IngestError("shard size must be at least 1")
    if max_file_bytes < 1:
        raise IngestError(f"the byte limit per file must be at least 1, got {max_file_bytes:,}")
    if not 1 <= max_pixels <= features.MAX_IMAGE_PIXELS:
        raise IngestError(
            f"max_pixels must lie between 1 and {features.MAX_IMAGE_PIXELS:,} (the most the model's decoder "
            f"accepts), got {max_pixels:,}"
        )
    src, out = src.resolve(), out.resolve()
    source = _read_source(src, clean_class)
    own = check_output(src, out, overwrite)
    accepted, classes, skipped = _scan(src, source.folders, clean_class, max_file_bytes, max_pixels, progress)
    skipped = source.skipped + skipped
    if strict and skipped:
        listing = "; ".join(f"{s['path']}: {s['reason']}" for s in skipped)
        raise IngestError(f"--strict: {len(skipped)} file(s) could not be imported: {listing}")
    names = _shard_names(len(accepted), shard_size)
    report = ImportReport(
        source=display(src),
        output=display(out),
        clean_class=clean_class,
        classes=classes,
        skipped=skipped,
        ignored_root_files=source.root_files,
        shards=names,
    )
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        _write_partials(src, out, accepted, classes, names, shard_size, max_file_bytes)
        stage_manifest(out, report.to_json())
    except BaseException as error:
        for partial in [*names, MANIFEST_NAME]:
            (out / (partial + PARTIAL_SUFFIX)).unlink(missing_ok=True)
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise _write_error(error, out) from None
    for name in names:
        settle(out / (name + PARTIAL_SUFFIX), out / name)
    for stale in own - set(names):
        (out / stale).unlink(missing_ok=True)
    commit_manifest(out)
    return report
