"""EfficientNet-Lite0 in tf-keras, with its layers named after the PyTorch port's modules.

Lite0 is Google's EfficientNet for mobile and edge hardware: ReLU6 instead of
swish and no squeeze-and-excitation, so the network is nothing but standard
convolutions, batch norms and adds, which every TensorFlow runtime executes.
Its ImageNet weights come as a PyTorch state dict (see models.backbone); a
Keras layer is named after the torch module it takes its weights from
(`_blocks.3._expand_conv` -> `blocks_3_expand_conv`), so converting is a
mapping of names and a transpose of layouts, and a missing or extra tensor
is an error rather than a silently random layer.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

BLOCK_GROUPS = (
    # repeats, kernel, first stride, expansion, output channels
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_WIDTH = 32
HEAD_WIDTH = 1280
CLASSES = 1000
BN_EPSILON = 1e-3
FEATURE_GROUPS = {2: "stride8", 4: "stride16", 6: "stride32"}
"""Index of a block group -> the name of its output among the features (40, 112 and 320 channels)."""
POOLED = "pooled"
LOGITS = "logits"


def keras_layer_name(torch_module: str) -> str:
    """`_blocks.3._expand_conv` -> `blocks_3_expand_conv`: Keras layer names cannot hold dots."""
    return torch_module.replace("._", "_").replace(".", "_").lstrip("_")


def preprocess(rgb: tf.Tensor) -> tf.Tensor:
    """RGB in [0, 255] -> the network's input, (x - 127) / 128 as in Google's Lite training."""
    return (tf.cast(rgb, tf.float32) - 127.0) / 128.0


def _conv_bn(x: tf.Tensor, filters: int, conv: str, bn: str, kernel: int = 1, strides: int = 1) -> tf.Tensor:
    x = tf.keras.layers.Conv2D(filters, kernel, strides, padding="same", use_bias=False, name=keras_layer_name(conv))(x)
    return tf.keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=keras_layer_name(bn))(x)


def _relu6(x: tf.Tensor, name: str) -> tf.Tensor:
    return tf.keras.layers.ReLU(6.0, name=name)(x)


def _block(x: tf.Tensor, index: int, kernel: int, strides: int, expansion: int, filters: int) -> tf.Tensor:
    """Inverted residual: 1x1 expand, depthwise, 1x1 project (linear); the input added back when shapes match."""
    prefix = f"_blocks.{index}."
    name = keras_layer_name(prefix)
    inputs = x
    if expansion != 1:
        x = _conv_bn(x, x.shape[-1] * expansion, prefix + "_expand_conv", prefix + "_bn0")
        x = _relu6(x, f"{name}expand_relu")
    x = tf.keras.layers.DepthwiseConv2D(
        kernel, strides, padding="same", use_bias=False, name=keras_layer_name(prefix + "_depthwise_conv")
    )(x)
    x = tf.keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=keras_layer_name(prefix + "_bn1"))(x)
    x = _relu6(x, f"{name}depthwise_relu")
    x = _conv_bn(x, filters, prefix + "_project_conv", prefix + "_bn2")
    if strides == 1 and inputs.shape[-1] == filters:
        x = tf.keras.layers.Add(name=f"{name}add")([x, inputs])
    return x


def build_lite0_features(
    input_shape: tuple[int | None, int | None, int] = (None, None, 3), include_top: bool = False
) -> tf.keras.Model:
    """Preprocessed image batch -> {stride8, stride16, stride32, pooled[, logits]} with random weights.

    Any height and width work: padding is Keras "same", which for a stride-2
    layer puts the odd pixel of padding at the bottom and right, as the TF
    original and the PyTorch port's static same padding do. `logits` are the
    1000 ImageNet classes before softmax.
    """
    inputs = tf.keras.Input(shape=input_shape, name="image")
    x = _conv_bn(inputs, STEM_WIDTH, "_conv_stem", "_bn0", kernel=3, strides=2)
    x = _relu6(x, "stem_relu")
    outputs = {}
    index = 0
    for group, (repeats, kernel, strides, expansion, filters) in enumerate(BLOCK_GROUPS):
        for repeat in range(repeats):
            x = _block(x, index, kernel, strides if repeat == 0 else 1, expansion, filters)
            index += 1
        if group in FEATURE_GROUPS:
            outputs[FEATURE_GROUPS[group]] = x
    x = _conv_bn(x, HEAD_WIDTH, "_conv_head", "_bn1")
    x = _relu6(x, "head_relu")
    outputs[POOLED] = tf.keras.layers.GlobalAveragePooling2D(name=POOLED)(x)
    if include_top:
        outputs[LOGITS] = tf.keras.layers.Dense(CLASSES, name=keras_layer_name("_fc"))(outputs[POOLED])
    return tf.keras.Model(inputs, outputs, name="efficientnet_lite0")


def convert_torch_state(state: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """A PyTorch Lite0 state dict -> {Keras layer name: its weights in Keras order and layout}.

    ValueError for a tensor that fits no layer kind; the model's set_weights
    catches a wrong shape.
    """
    modules: dict[str, dict[str, np.ndarray]] = {}
    for key, array in state.items():
        module, _, param = key.rpartition(".")
        modules.setdefault(module, {})[param] = array
    return {keras_layer_name(module): _keras_weights(module, params) for module, params in modules.items()}


def _keras_weights(module: str, params: dict[str, np.ndarray]) -> list[np.ndarray]:
    names = set(params)
    if names == {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}:
        return [params[name] for name in ("weight", "bias", "running_mean", "running_var")]
    weight = params.get("weight")
    if names == {"weight"} and weight.ndim == 4:
        # torch (out, in, kh, kw) -> (kh, kw, in, out); depthwise (channels, 1, kh, kw) -> (kh, kw, channels, 1)
        axes = (2, 3, 0, 1) if module.endswith("_depthwise_conv") else (2, 3, 1, 0)
        return [np.ascontiguousarray(weight.transpose(axes))]
    if names == {"weight", "bias"} and weight.ndim == 2:
        return [np.ascontiguousarray(weight.T), params["bias"]]
    raise ValueError(f"tensors {sorted(names)} of {module} fit no EfficientNet-Lite0 layer")


def set_lite0_weights(model: tf.keras.Model, weights: dict[str, list[np.ndarray]]) -> None:
    """Gives every layer of a build_lite0_features model its weights; ValueError naming what is missing or extra."""
    unused = dict(weights)
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in unused:
            raise ValueError(f"no weights for layer {layer.name}")
        try:
            layer.set_weights(unused.pop(layer.name))
        except ValueError as error:
            raise ValueError(f"weights of layer {layer.name} do not fit: {' '.join(str(error).split())}") from None
    unused.pop(keras_layer_name("_fc"), None)  # the classifier, when the model has no top
    if unused:
        raise ValueError(f"weights for layers the network does not have: {', '.join(sorted(unused)[:5])}")
