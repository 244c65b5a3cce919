"""Which folders under a model directory are versions, and whether a version's files are still changing.

TF Serving takes a folder for a version when its name parses as an int64
(`ParseVersionNumber` in its file system storage path source) and a version is
positive, so anything else — beyond int64, zero, a sign, other characters — is
not a version. Such a folder is logged once when it appears rather than on
every poll, since a stray `99999999999999999999` beside the real versions would
otherwise fill the log every two seconds. Two spellings of one number ("7" and
"07") load from the first `version_folders` lists, as TF Serving keeps one.
"""
from __future__ import annotations

import logging
import pathlib

from models.serving_contract import MAX_VERSION, SAVED_MODEL_FILE, version_folders

log = logging.getLogger(__name__)

# A version directory's files as (relative path, size, mtime); None when it vanished mid-scan.
Fingerprint = tuple[tuple[str, int, int], ...] | None


class VersionScan:
    """Lists the complete versions under `base_dir` on each call, logging every other folder once."""

    def __init__(self, base_dir: pathlib.Path) -> None:
        self.base_dir = base_dir
        self._ignored: frozenset[str] = frozenset()

    def complete_versions(self) -> dict[int, pathlib.Path]:
        """Version number to folder, newest first, for the versions holding a saved_model.pb."""
        try:
            names = [entry.name for entry in self.base_dir.iterdir()]
        except OSError as error:
            log.warning("cannot list %s: %s", self.base_dir, error)
            return {}
        folders: dict[int, str] = {}
        reasons: dict[str, str] = {}
        for version, name in version_folders(names):
            if version in folders:
                reasons[name] = f"version {version} loads from {self.base_dir / folders[version]}"
            else:
                folders[version] = name
        chosen = set(folders.values())
        for name in names:
            if name not in chosen:
                reasons.setdefault(name, f"a version folder is named by a number from 1 to {MAX_VERSION}")
        ignored = {
            name: reason for name, reason in reasons.items()
            if name in self._ignored or (self.base_dir / name).is_dir()
        }
        for name in sorted(ignored.keys() - self._ignored):
            log.warning("ignoring folder %s: %s", self.base_dir / name, ignored[name])
        self._ignored = frozenset(ignored)
        return {
            version: self.base_dir / name
            for version, name in folders.items()
            if (self.base_dir / name / SAVED_MODEL_FILE).is_file()
        }


def fingerprint(path: pathlib.Path) -> Fingerprint:
    """Names, sizes and modification times of every file, to tell a finished copy from one in progress."""
    entries = []
    try:
        for file in path.rglob("*"):
            if file.is_file():
                stat = file.stat()
                entries.append((str(file.relative_to(path)), stat.st_size, stat.st_mtime_ns))
    except OSError:
        return None
    return tuple(sorted(entries))
