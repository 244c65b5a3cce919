"""Preprocessing and models of the leather inspection pipeline.

TFX loads `models.preprocessing.preprocessing_fn` and `models.trainer.run_fn` by
dotted path, often in a fresh process, so this package pins the Keras flavour
before anything below it imports TensorFlow: TFX 1.16 needs tf-keras (Keras 2).
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
