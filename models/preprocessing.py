"""The Transform step's `preprocessing_fn`: the reference method's features, in-graph.

TFX loads this by dotted path (`models.preprocessing.preprocessing_fn`). The
graph it traces is exported with the model, so a served request goes through
exactly these ops. Only the input the configured model reads is materialised
next to the always-kept block counts: a 150 px CNN image is 270 kB a photo. The
image id passes through so every transformed row can be traced to its photo.

Reference Table 2 variants, as the MLP input (`feature_variant`):
- `gray`: no edge detection, no block division - the 50x50 grayscale pixels (2,500 values).
- `edges`: edge detection, no block division - the 50x50 Canny edge map as 0/1 (2,500 values).
- `blocks`: edge detection and block division - per 10x10 block of a 5x5 grid, the count of
  non-edge and of edge pixels (50 values; the reference's "0 and 255 pixel counts").
"""
from typing import Any

import tensorflow as tf

from models import features
from models.image_features import image_features
from models.spec import preprocessing_from_custom_config


def preprocessing_fn(inputs: dict[str, tf.Tensor], custom_config: dict[str, Any]) -> dict[str, tf.Tensor]:
    config = preprocessing_from_custom_config(custom_config)
    wants_cnn_image = custom_config["cnn_image"]
    computed = image_features(
        inputs[features.IMAGE_KEY],
        feature_size=config.feature_size,
        grid=config.block_grid,
        low=config.canny_low,
        high=config.canny_high,
        sigma=config.canny_sigma,
        cnn_resolution=config.cnn_resolution if wants_cnn_image else None,
        cnn_channels=config.cnn_channels if wants_cnn_image else 3,
    )
    outputs = {
        features.LABEL_KEY: inputs[features.LABEL_KEY],
        features.IMAGE_ID_KEY: inputs[features.IMAGE_ID_KEY],
        features.BRIGHTNESS_KEY: tf.where(computed[features.BRIGHTNESS_KEY], features.BRIGHT, features.DARK),
        features.BLOCK_COUNTS_KEY: computed[features.BLOCK_COUNTS_KEY],
    }
    if wants_cnn_image:
        outputs[features.CNN_IMAGE_KEY] = computed[features.CNN_IMAGE_KEY]
        return outputs
    for key, pixels in (
        (features.EDGE_PIXELS_KEY, tf.cast(computed[features.EDGE_PIXELS_KEY], tf.float32)),
        (features.GRAY_PIXELS_KEY, computed[features.GRAY_PIXELS_KEY]),
    ):
        outputs[key] = tf.reshape(pixels, [-1, pixels.shape[1] * pixels.shape[2]])
    return outputs
