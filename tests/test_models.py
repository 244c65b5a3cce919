"""The two networks: the reference's Table 1 AlexNet layer by layer, and the one-hidden-layer MLP."""
import numpy as np
import pytest
import tensorflow as tf

from models.alexnet import LocalResponseNormalization, build_alexnet
from models.mlp import build_mlp
from models.spec import TrainingConfig

TABLE_1 = {
    "conv1": (35, 35, 96),
    "lrn1": (35, 35, 96),
    "pool1": (17, 17, 96),
    "conv2": (17, 17, 256),
    "lrn2": (17, 17, 256),
    "pool2": (8, 8, 256),
    "conv3": (8, 8, 384),
    "conv4": (8, 8, 384),
    "conv5": (8, 8, 256),
    "pool5": (5, 5, 256),
    "flatten": (6400,),
    "fc6": (4096,),
    "drop6": (4096,),
    "fc7": (4096,),
    "drop7": (4096,),
    "defective": (1,),
}


@pytest.fixture(scope="module")
def alexnet_150() -> tf.keras.Model:
    return build_alexnet(150)


@pytest.mark.parametrize("layer", sorted(TABLE_1))
def test_alexnet_150_matches_table_1_layer_by_layer(alexnet_150, layer):
    assert alexnet_150.get_layer(layer).output_shape == (None, *TABLE_1[layer])


def test_alexnet_150_kernels_are_table_1_filters(alexnet_150):
    kernels = {w.name.split("/")[0]: tuple(w.shape) for w in alexnet_150.weights if "kernel" in w.name}

    assert kernels["conv1"] == (11, 11, 3, 96)
    assert kernels["conv2_0"] == kernels["conv2_1"] == (5, 5, 48, 128)
    assert kernels["conv3"] == (3, 3, 256, 384)
    assert kernels["conv4_0"] == kernels["conv4_1"] == (3, 3, 192, 192)
    assert kernels["conv5_0"] == kernels["conv5_1"] == (3, 3, 192, 128)
    assert kernels["fc6"] == (6400, 4096) and kernels["fc7"] == (4096, 4096) and kernels["defective"] == (4096, 1)
    assert alexnet_150.get_layer("conv1").strides == (4, 4)


@pytest.mark.parametrize(("resolution", "channels", "fc6_inputs"), [(50, 3, 2 * 2 * 256), (100, 1, 4 * 4 * 256), (200, 3, 7 * 7 * 256)])
def test_alexnet_builds_for_the_other_resolutions(resolution, channels, fc6_inputs):
    model = build_alexnet(resolution, channels)

    assert model.input_shape == (None, resolution, resolution, channels)
    assert model.get_layer("flatten").output_shape == (None, fc6_inputs)
    probability = model(tf.random.uniform([2, resolution, resolution, channels]), training=False)
    assert probability.shape == (2, 1)
    assert np.all((probability.numpy() > 0) & (probability.numpy() < 1))


def test_alexnet_rejects_a_resolution_outside_the_reference_grid():
    with pytest.raises(ValueError, match="resolution must be one of"):
        build_alexnet(64)


def test_grouped_convolution_keeps_the_two_channel_halves_apart(alexnet_150):
    conv2 = tf.keras.Model(alexnet_150.get_layer("conv2_pad").output, alexnet_150.get_layer("conv2").output)
    x = tf.random.uniform([1, 21, 21, 96], seed=1)
    changed = tf.concat([x[..., :48], x[..., 48:] + 1.0], axis=-1)

    before, after = conv2(x).numpy(), conv2(changed).numpy()

    np.testing.assert_array_equal(before[..., :128], after[..., :128])
    assert np.abs(before[..., 128:] - after[..., 128:]).max() > 0


def test_local_response_normalisation_is_alexnets_formula_over_5_channels():
    x = tf.random.uniform([1, 2, 2, 8], maxval=300.0, seed=2)

    normalised = LocalResponseNormalization()(x).numpy()

    squares = np.pad(x.numpy() ** 2, [(0, 0), (0, 0), (0, 0), (2, 2)])
    window_sums = sum(squares[..., i : i + 8] for i in range(5))
    expected = x.numpy() / (1.0 + 1e-4 / 5 * window_sums) ** 0.75
    np.testing.assert_allclose(normalised, expected, rtol=1e-5)
    assert np.abs(normalised - x.numpy()).max() > 1.0


def test_local_response_normalisation_serialises_with_the_model():
    model = build_alexnet(50)

    restored = tf.keras.models.model_from_json(model.to_json())

    assert isinstance(restored.get_layer("lrn2"), LocalResponseNormalization)
    assert restored.get_layer("lrn2").get_config() == model.get_layer("lrn2").get_config()


def test_pretrained_weights_load_by_layer_name_and_skip_a_different_fc6(tmp_path):
    source = build_alexnet(50)
    path = tmp_path / "alexnet50.h5"
    source.save_weights(str(path))

    target = build_alexnet(100, weights_path=str(path))

    np.testing.assert_array_equal(target.get_layer("conv1").get_weights()[0], source.get_layer("conv1").get_weights()[0])
    np.testing.assert_array_equal(target.get_layer("fc7").get_weights()[0], source.get_layer("fc7").get_weights()[0])
    assert target.get_layer("fc6").get_weights()[0].shape == (4096, 4096) != source.get_layer("fc6").get_weights()[0].shape


def test_pretrained_weights_name_the_bad_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        build_alexnet(50, weights_path=str(tmp_path / "missing.h5"))
    (tmp_path / "weights.npy").write_bytes(b"")
    with pytest.raises(ValueError, match="weights.npy"):
        build_alexnet(50, weights_path=str(tmp_path / "weights.npy"))


def test_mixed_precision_keeps_the_probability_in_float32():
    tf.keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_alexnet(50)
    finally:
        tf.keras.mixed_precision.set_global_policy("float32")

    assert model.get_layer("conv1").compute_dtype == "float16"
    assert model.get_layer("lrn1").compute_dtype == "float16"
    assert model.get_layer("defective").compute_dtype == "float32"
    assert model(tf.random.uniform([1, 50, 50, 3])).dtype == tf.float32


@pytest.mark.parametrize("hidden_units", [10, 20, 50, 100])
def test_mlp_has_one_hidden_layer_and_one_sigmoid_output(hidden_units):
    model = build_mlp(50, hidden_units)

    dense = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Dense)]
    assert [layer.units for layer in dense] == [hidden_units, 1]
    assert dense[-1].activation is tf.keras.activations.sigmoid
    assert model.count_params() == 50 * hidden_units + hidden_units + hidden_units + 1
    assert model(tf.zeros([3, 50])).shape == (3, 1)


def test_mlp_standardises_its_inputs_with_the_training_moments():
    mean, variance = np.arange(50.0), np.full(50, 4.0)
    model = build_mlp(50, 10, (mean, variance))
    standardise = tf.keras.Model(model.input, model.get_layer("standardize").output)

    np.testing.assert_allclose(standardise(mean[None] + 2.0).numpy(), np.ones((1, 50)), rtol=1e-6)


def test_mlp_rejects_non_positive_sizes():
    with pytest.raises(ValueError, match="positive"):
        build_mlp(50, 0)


def test_training_config_picks_a_learning_rate_per_model_and_one_imbalance_remedy():
    assert TrainingConfig(model="mlp").optimizer_learning_rate() == 1e-3
    assert TrainingConfig(model="alexnet").optimizer_learning_rate() == 1e-4
    assert TrainingConfig(model="alexnet", learning_rate=0.01).optimizer_learning_rate() == 0.01
    with pytest.raises(ValueError, match="class_weighting"):
        TrainingConfig(sampling="balanced")
    with pytest.raises(ValueError, match="AlexNet only"):
        TrainingConfig(model="mlp", pretrained_weights="w.h5")
    with pytest.raises(ValueError, match="sampling"):
        TrainingConfig(sampling="oversample", class_weighting="none")
