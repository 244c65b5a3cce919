"""One import per span at a time: a second import into a span being written is refused, naming the first."""
import hashlib
import json
import os
import pathlib
import threading

import pytest
import tensorflow as tf

from cli.main import main
from image_support import image_bytes
from ingest.importer import MANIFEST_NAME, SHARD_PATTERN
from ingest.span_claim import SpanBusy, claim_path, span_claim
from ingest.spans import import_span, span_numbers


def _photos(src: pathlib.Path, count: int, seed: int) -> pathlib.Path:
    for index in range(count):
        folder = "non defective" if index % 2 else "pinhole"
        (src / folder).mkdir(parents=True, exist_ok=True)
        (src / folder / f"{index}.jpg").write_bytes(image_bytes("RGB", "JPEG", seed=seed * 100 + index))
    return src


def _span_holds(span: pathlib.Path) -> tuple[dict, list[str]]:
    """The span's manifest, and the image_id of every record of its shards."""
    manifest = json.loads((span / MANIFEST_NAME).read_text())
    records = tf.data.TFRecordDataset(sorted(str(p) for p in span.glob(SHARD_PATTERN)))
    ids = [tf.train.Example.FromString(r.numpy()).features.feature["image_id"].bytes_list.value[0] for r in records]
    return manifest, ids


def test_an_import_into_a_span_being_imported_is_refused_naming_the_running_one(tmp_path, capsys):
    src = _photos(tmp_path / "a", 3, seed=1)
    data = tmp_path / "data"
    data.mkdir()
    with span_claim(data, 1):
        with pytest.raises(SpanBusy, match=rf"span 1 of .*data is being imported by another import \(pid {os.getpid()} on"):
            import_span(src, data, 1)
        assert main(["data", "import", str(src), str(data), "--span", "1"]) == 1
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and f"pid {os.getpid()}" in err and "span 1" in err, err
        assert span_numbers(data) == [], "the refused import wrote nothing"
    assert import_span(src, data, 1)[0] == 1, "the span is free once the first import ends"
    assert sorted(p.name for p in data.iterdir()) == ["span-1"], "no claim file is left behind"


def test_an_import_without_a_span_passes_over_one_being_imported(tmp_path):
    src = _photos(tmp_path / "a", 2, seed=1)
    data = tmp_path / "data"
    import_span(src, data)
    with span_claim(data, 2):
        assert import_span(src, data)[0] == 3
    assert span_numbers(data) == [1, 3]


def test_a_claim_left_by_an_import_that_died_does_not_block(tmp_path):
    src = _photos(tmp_path / "a", 2, seed=1)
    data = tmp_path / "data"
    data.mkdir()
    claim_path(data, 1).write_text(json.dumps({"pid": 999999, "host": "gone", "started": "yesterday"}))

    assert import_span(src, data, 1)[0] == 1
    assert not claim_path(data, 1).exists()


def test_two_imports_into_one_span_at_once_leave_its_manifest_and_shards_agreeing(tmp_path):
    """Run together: one is refused, or the other waits its turn; never a shard of one beside the other's manifest."""
    sources = {"a": _photos(tmp_path / "a", 7, seed=1), "b": _photos(tmp_path / "b", 5, seed=2)}
    data = tmp_path / "data"
    data.mkdir()
    for _ in range(3):
        start, outcomes = threading.Barrier(2), {}

        def run(name: str) -> None:
            start.wait()
            try:
                outcomes[name] = import_span(sources[name], data, 1, overwrite=True)[1].written
            except SpanBusy as error:
                outcomes[name] = str(error)

        threads = [threading.Thread(target=run, args=(name,)) for name in sources]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        manifest, ids = _span_holds(data / "span-1")
        winner = next(name for name in sources if manifest["source"] == str(sources[name].resolve()))
        assert manifest["totals"]["written"] == len(ids) == {"a": 7, "b": 5}[winner]
        assert set(ids) == {hashlib.sha256(p.read_bytes()).hexdigest().encode() for p in sources[winner].rglob("*.jpg")}
        assert any(isinstance(outcome, int) for outcome in outcomes.values()), outcomes
        for outcome in outcomes.values():
            assert isinstance(outcome, int) or "is being imported by another import (" in outcome
    assert sorted(p.name for p in data.iterdir()) == ["span-1"]
