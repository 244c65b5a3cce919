"""Keras's own code is traced as written, not rewritten by autograph: as TensorFlow always did for Keras 2.

Autograph leaves the `keras` package alone (a rule in TensorFlow's conversion
config) but has no such rule for `tf_keras`, where Keras 2 lives since
TensorFlow 2.16. Every trace of a model inside a `tf.function` then
transpiles, from their Python source, each Keras layer's call, `train_step`
and the metrics: most of the backbone Trainer's time here (run_fn on 40
photos, profiled: the first `fit` of a one-layer head took 33 s, nearly all of
it autograph). Keras 2's code was written to run unconverted; layers of this
project's own (their `call`) are still converted as Keras asks.
"""
from tensorflow.python.autograph.core import config

KERAS_PACKAGE = "tf_keras"


def leave_keras_unconverted() -> None:
    """Adds autograph's do-not-convert rule for tf_keras once per process; TensorFlow reads the rules per call."""
    if not any(str(rule) == str(config.DoNotConvert(KERAS_PACKAGE)) for rule in config.CONVERSION_RULES):
        config.CONVERSION_RULES = (config.DoNotConvert(KERAS_PACKAGE), *config.CONVERSION_RULES)
