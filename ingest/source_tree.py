"""Listing a source folder without ever leaving it or reading anything but regular files.

A symlink could pull a photo from outside the source folder into a class it does
not belong to; a FIFO would block the reader; a loop would never end. Every entry
that is not read is returned with the reason, so the importer can list it.
"""
from __future__ import annotations

import enum
import errno
import os
import pathlib
import re
import stat


class Kind(enum.Enum):
    FILE = "file"
    FOLDER = "folder"
    SKIP = "skip"


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_SPECIAL_FILES = (
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


def display(path: os.PathLike | str) -> str:
    """A path as printable text: bytes that are not UTF-8 and control characters shown as \\xNN escapes.

    Undecodable bytes would crash a print; a name holding an ANSI escape
    sequence would recolour or rewrite the user's terminal.
    """
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def is_utf8(name: str) -> bool:
    """Whether a name read from disk is text (undecodable bytes come back as surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _not_regular(mode: int) -> str:
    kind = next((name for test, name in _SPECIAL_FILES if test(mode)), "unknown type")
    return f"not a regular file ({kind})"


def _link_target(path: pathlib.Path, src: pathlib.Path) -> tuple[Kind, str]:
    """Links are followed only to a regular file inside `src`; folders behind links are never walked."""
    try:
        target = pathlib.Path(os.path.realpath(path, strict=True))
    except FileNotFoundError:
        return Kind.SKIP, f"dangling symlink (to {display(os.readlink(path))})"
    except OSError as error:
        return Kind.SKIP, "symlink loop" if error.errno == errno.ELOOP else f"unreadable symlink: {error.strerror}"
    if not target.is_relative_to(src):
        return Kind.SKIP, f"symlink to outside the source folder ({display(target)})"
    mode = os.stat(target).st_mode
    if stat.S_ISDIR(mode):
        return Kind.SKIP, "symlink to a folder (not followed)"
    return (Kind.FILE, "") if stat.S_ISREG(mode) else (Kind.SKIP, _not_regular(mode))


def classify(path: pathlib.Path, src: pathlib.Path) -> tuple[Kind, str]:
    """What `path` is without following it out of `src`, and why it is skipped when it is."""
    try:
        mode = os.lstat(path).st_mode
    except OSError as error:
        return Kind.SKIP, f"unreadable: {error.strerror}"
    if stat.S_ISLNK(mode):
        return _link_target(path, src)
    if stat.S_ISDIR(mode):
        return Kind.FOLDER, ""
    return (Kind.FILE, "") if stat.S_ISREG(mode) else (Kind.SKIP, _not_regular(mode))


def skip_entry(path: pathlib.Path, src: pathlib.Path, reason: str) -> dict[str, str]:
    """A skipped entry as the manifest lists it: its path relative to `src`, and why."""
    return {"path": display(path.relative_to(src)), "reason": reason}


def files_under(folder: pathlib.Path, src: pathlib.Path) -> tuple[list[pathlib.Path], list[dict[str, str]]]:
    """Regular files below `folder` (sorted), and every entry not read with its reason."""
    files: list[pathlib.Path] = []
    skipped: list[dict[str, str]] = []
    pending = [folder]
    while pending:
        directory = pending.pop()
        try:
            names = os.listdir(directory)
        except OSError as error:
            skipped.append(skip_entry(directory, src, f"unreadable folder: {error.strerror}"))
            continue
        for name in names:
            path = directory / name
            kind, reason = classify(path, src)
            if kind is Kind.FOLDER:
                pending.append(path)
            elif kind is Kind.FILE:
                files.append(path)
            else:
                skipped.append(skip_entry(path, src, reason))
    return sorted(files), sorted(skipped, key=lambda entry: entry["path"])
