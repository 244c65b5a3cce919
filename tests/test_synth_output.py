"""`leather data synth` and its output folder: it replaces only what it wrote, says clearly why
it will not write elsewhere, and streams a huge set to disk with progress from the first image.
"""
import pathlib
import select
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from cli.main import main
from ingest import synth
from models.features import DEFAULT_CLEAN_CLASS


def _synth(out: pathlib.Path, *extra: str) -> int:
    return main(["data", "synth", str(out), "--count", "4", *extra])


def _tree(root: pathlib.Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_overwrite_refuses_a_folder_the_generator_did_not_write(tmp_path, capsys):
    out = tmp_path / "thesis"
    (out / "sub").mkdir(parents=True)
    (out / "thesis.txt").write_text("three years of work")
    (out / "sub" / "data.csv").write_text("a,b\n")

    status = _synth(out, "--overwrite")

    error = capsys.readouterr().err
    assert status == 1
    assert "was not written by leather data synth" in error and "Traceback" not in error
    assert _tree(out) == ["sub", "sub/data.csv", "thesis.txt"]


def test_overwrite_replaces_a_folder_the_generator_wrote(tmp_path):
    out = tmp_path / "images"
    assert main(["data", "synth", str(out), "--count", "14"]) == 0
    assert _synth(out) == 1  # not empty, no --overwrite

    assert _synth(out, "--overwrite", "--seed", "3") == 0

    assert len(list(out.rglob("*.jpg"))) == 4
    assert (out / synth.MARKER_NAME).is_file()


def test_overwrite_refuses_a_generated_folder_holding_a_file_added_later(tmp_path, capsys):
    out = tmp_path / "images"
    assert _synth(out) == 0
    (out / DEFAULT_CLEAN_CLASS / "my photo.jpg").write_bytes(b"not generated")
    before = _tree(out)

    assert _synth(out, "--overwrite") == 1

    assert "non defective/my photo.jpg" in capsys.readouterr().err
    assert _tree(out) == before


def test_an_output_path_that_is_a_file_or_a_symlink_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target")

    assert _synth(tmp_path / "file", "--overwrite") == 1
    assert _synth(tmp_path / "link", "--overwrite") == 1

    error = capsys.readouterr().err
    assert "is not a folder" in error and "is a symbolic link" in error and "Traceback" not in error
    assert (tmp_path / "file").read_text() == "x" and list((tmp_path / "target").iterdir()) == []


def test_a_huge_count_shows_progress_and_writes_from_the_first_image(tmp_path):
    """100 million images: the first progress line and files come at once, not after planning them all."""
    out = tmp_path / "huge"
    # Ctrl-C as at a terminal: a suite started in the background (`make test &`) ignores SIGINT, and a child
    # inherits that, so without the default handler the interrupt would never arrive.
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "data", "synth", str(out), "--count", "100000000"],
        stderr=subprocess.PIPE, text=True, cwd=pathlib.Path(__file__).resolve().parents[1],
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 60
        line = ""
        while "generating images" not in line and time.monotonic() < deadline:
            if select.select([process.stderr], [], [], 1)[0]:
                line = process.stderr.readline()
        assert line.startswith("generating images: ") and line.strip().endswith("/100000000"), line
        assert list(out.rglob("synth_*.jpg"))
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert process.returncode == 130
    for path in out.rglob("*.jpg"):  # interrupted between or during images: every file is whole
        with Image.open(path) as image:
            image.load()


def test_progress_is_reported_after_every_image_once_it_is_on_disk(tmp_path):
    calls = []
    synth.generate_dataset(
        tmp_path / "out", 200, 1, size=synth.MIN_SIZE,
        progress=lambda done, total: calls.append((done, total, len(list((tmp_path / "out").rglob("*.jpg"))))),
    )
    assert calls == [(i, 200, i) for i in range(1, 201)]


@pytest.mark.parametrize(("count", "share"), [(95, 0.5), (30, 0.3), (41, 1.0), (10, 0.0)])
def test_classes_are_assigned_block_by_block_with_exact_totals(monkeypatch, count, share):
    monkeypatch.setattr(synth, "CLASS_BLOCK", 8)
    labels = list(synth.assign_classes(count, 5, share))

    assert labels.count(DEFAULT_CLEAN_CLASS) == round(count * (1 - share))
    per_type = [labels.count(name) for name in synth.DEFECT_TYPES]
    assert sum(per_type) + labels.count(DEFAULT_CLEAN_CLASS) == count
    assert max(per_type) - min(per_type) <= 1
    assert labels == list(synth.assign_classes(count, 5, share))
    for block in range(0, count, 8):  # every block is mixed as the whole set is
        clean = labels[block : block + 8].count(DEFAULT_CLEAN_CLASS)
        assert abs(clean - (1 - share) * len(labels[block : block + 8])) <= 1


def test_a_set_smaller_than_a_block_keeps_its_known_classes():
    """Sets below CLASS_BLOCK images keep the classes earlier versions gave them (demo numbers stay)."""
    assert list(synth.assign_classes(8, 7)) == [
        "cut", "non defective", "tick mark", "non defective", "wrinkle", "fly bite", "non defective", "non defective",
    ]
