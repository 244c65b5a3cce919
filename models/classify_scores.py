"""Classify's scores: the probability rescaled so that the stored decision threshold scores 0.5.

A TF Serving Classify client takes the class with the larger score, so scores
of 1 - p and p would decide at 0.5 while the model's `label` decides at its
calibrated threshold t. The `classify` signature therefore scores "defective"

    s = sigmoid(logit(p) - logit(t)) = 1 / (1 + odds(t) / odds(p)),   odds(x) = x / (1 - x),

the probability with its log-odds shifted by the threshold's: monotone in p,
s(t) = 0.5, s(0) = 0 and s(1) = 1 (for 0 < t < 1), and s = p when t = 0.5 up
to rounding. It is computed as 1 / (1 + t(1 - p) / (p(1 - t))), which has no
log or exp to clip and is monotone in p in float32 too (each step rounds
monotonically); odds(0) and odds(1) give the IEEE 0 and inf, and the 0/0 of
p == t in {0, 1} is the 0.5 that p == t gives everywhere else.

Finally s is moved off 0.5 to `label`'s side of it, `label` being
p >= t: to at least 0.50000006 (0.5 + 2**-24) for p >= t and at most
0.49999997 (0.5 - 2**-25) for p < t, the nearest float32s to 0.5. That moves
only p == t, from exactly 0.5, and the few p beside t that round to 0.5 or
across it. "Clean" scores 1 - s, so the two scores never tie and any way of
taking the larger one, including taking the first of equal scores, answers
`label`, also for a calibrated t of 0 or 1. The raw probability stays in the
Predict signatures' `probability` output.
"""
import numpy as np
import tensorflow as tf

ABOVE_HALF = float(np.nextafter(np.float32(0.5), np.float32(1.0)))
"""The smallest "defective" score for p >= t, the one of p == t (0.5 + 2**-24; "clean" then scores 0.5 - 2**-24)."""
BELOW_HALF = float(np.nextafter(np.float32(0.5), np.float32(0.0)))
"""The largest "defective" score below the threshold (0.5 - 2**-25)."""


def defective_score(probability: tf.Tensor, threshold: tf.Tensor | float) -> tf.Tensor:
    """Classify's "defective" score of each probability: above 0.5 exactly when `probability >= threshold`.

    Standard TF ops only, as TF Serving runs them in the `classify` graph;
    eagerly it takes NumPy arrays too. A NaN probability scores NaN.
    """
    probability = tf.cast(probability, tf.float32)
    threshold = tf.cast(threshold, tf.float32)
    p = tf.clip_by_value(probability, 0.0, 1.0)
    odds_p = p * (1.0 - threshold)  # odds(p) and odds(t), both times (1 - p)(1 - t)
    odds_t = threshold * (1.0 - p)
    # divide_no_nan(1, x) is 1 / x here (x >= 1, inf or NaN), but Grappler leaves it a correctly rounded
    # division: a graph's 1.0 / x it rewrites into Reciprocal, which Eigen's CPU kernel approximates to within
    # an ulp, so the served scores would differ from the eager ones and lose the monotonicity argument above.
    shifted = tf.where(odds_p == odds_t, tf.constant(0.5), tf.math.divide_no_nan(1.0, 1.0 + odds_t / odds_p))
    return tf.where(
        probability >= threshold,  # `label`'s rule (models/signatures.py)
        tf.maximum(shifted, ABOVE_HALF),
        tf.minimum(shifted, BELOW_HALF),
    )


def classify_scores(probability: tf.Tensor, threshold: tf.Tensor | float) -> tf.Tensor:
    """The `scores` output, [batch, 2] float32: "clean" 1 - s and "defective" s, in CLASS_LABELS order."""
    defective = defective_score(tf.reshape(probability, [-1]), threshold)
    return tf.stack([1.0 - defective, defective], axis=1)
