"""Each patch's distance to its nearest memory-bank patch, in the graph, a chunk of patches at a time.

A whole hide at the article's scale has tens of thousands of patches and the
bank up to BANK_LIMIT; all their distances at once would be gigabytes. The
patches are taken QUERY_CHUNK at a time, so a request holds one chunk's
distances (QUERY_CHUNK x bank x 4 bytes: 80 MB at 20,000 bank patches)
whatever the photo. Squared distances come from one matrix product,
|q|^2 - 2 q.b + |b|^2, clipped at zero against rounding, as TF Serving's CPU
kernels compute it fastest.
"""
from __future__ import annotations

import tensorflow as tf

QUERY_CHUNK = 1024
"""Patches compared with the whole bank at once."""


def nearest_distances(queries: tf.Tensor, bank: tf.Tensor, chunk: int = QUERY_CHUNK) -> tf.Tensor:
    """[n, d] queries, [m, d] bank -> [n] float32 Euclidean distance of each query to its nearest bank row."""
    queries = tf.cast(queries, tf.float32)
    bank = tf.cast(bank, tf.float32)
    bank_norms = tf.reduce_sum(tf.square(bank), axis=1)
    count = tf.shape(queries)[0]
    steps = (count + chunk - 1) // chunk

    def step(index: tf.Tensor, found: tf.TensorArray) -> tuple[tf.Tensor, tf.TensorArray]:
        block = queries[index * chunk : (index + 1) * chunk]
        squared = (
            tf.reduce_sum(tf.square(block), axis=1, keepdims=True)
            - 2.0 * tf.matmul(block, bank, transpose_b=True)
            + bank_norms[None, :]
        )
        return index + 1, found.write(index, tf.sqrt(tf.maximum(tf.reduce_min(squared, axis=1), 0.0)))

    _, found = tf.while_loop(
        lambda index, _: index < steps,
        step,
        (tf.constant(0), tf.TensorArray(tf.float32, size=steps, infer_shape=False, element_shape=[None])),
        parallel_iterations=1,
    )
    return tf.reshape(found.concat(), [count])
