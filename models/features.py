"""Feature keys and fixed facts shared by ingestion, Transform and training.

Every module that names a feature imports it from here, so a renamed key cannot
leave a stale copy behind in the schema, the serving signature or a test.
"""
import math

# Raw tf.Example features written by `leather data import`.
IMAGE_KEY = "image"
LABEL_KEY = "label"
DEFECT_TYPE_KEY = "defect_type"
IMAGE_ID_KEY = "image_id"
# Written for the reference task (ingest/article_photos.py): the photo's file name, and its defect mask's PNG
# bytes (empty for a clean photo).
PHOTO_NAME_KEY = "photo_name"
MASK_KEY = "mask"
# Added by the ColourVariants component: which colour shift an example's image went through.
VARIANT_KEY = "variant"

# Numeric descriptors of each photo, written by the importer (models/photo_descriptors.py) for TFDV's
# statistics, drift and skew checks; Transform and the models do not read them.
PHOTO_BRIGHTNESS_KEY = "photo_brightness"
PHOTO_CONTRAST_KEY = "photo_contrast"
PHOTO_SATURATION_KEY = "photo_saturation"
PHOTO_HUE_X_KEY = "photo_hue_x"
PHOTO_HUE_Y_KEY = "photo_hue_y"
PHOTO_SHARPNESS_KEY = "photo_sharpness"
PHOTO_WIDTH_KEY = "photo_width"
PHOTO_HEIGHT_KEY = "photo_height"
PHOTO_FLOAT_DESCRIPTORS = (
    PHOTO_BRIGHTNESS_KEY,
    PHOTO_CONTRAST_KEY,
    PHOTO_SATURATION_KEY,
    PHOTO_HUE_X_KEY,
    PHOTO_HUE_Y_KEY,
    PHOTO_SHARPNESS_KEY,
)
PHOTO_INT_DESCRIPTORS = (PHOTO_WIDTH_KEY, PHOTO_HEIGHT_KEY)
PHOTO_DESCRIPTORS = PHOTO_FLOAT_DESCRIPTORS + PHOTO_INT_DESCRIPTORS
DESCRIBE_BATCH = 64  # photos per call of the descriptor graph: a call per photo pays the graph's dispatch each time

# Binary label values.
CLEAN = 0
DEFECTIVE = 1
DEFAULT_CLEAN_CLASS = "non defective"

# Transformed features written by the Transform component.
GRAY_PIXELS_KEY = "gray_pixels"
EDGE_PIXELS_KEY = "edge_pixels"
BLOCK_COUNTS_KEY = "block_counts"
CNN_IMAGE_KEY = "cnn_image"
BRIGHTNESS_KEY = "brightness"
BRIGHT = "bright"
DARK = "dark"

# Reference method defaults (../shared/reference/method.md).
FEATURE_SIZE = 50
BLOCK_GRID = 5
CANNY_LOW = 0.5
CANNY_HIGH = 0.9
CANNY_SIGMA = math.sqrt(2.0)
BRIGHT_PIXEL_LEVEL = 125
BRIGHT_PIXEL_SHARE = 0.7
CNN_RESOLUTIONS = (50, 100, 150, 200, 224)
MLP_HIDDEN_UNITS = (10, 20, 50, 100)
MAX_IMAGE_PIXELS = 50_000_000  # refuse larger images from their header, before decoding (pixel bombs); far above any hide photo
