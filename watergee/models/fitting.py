"""Training on samples held in memory with one compiled step, stopping once the loss settles.

Keras' `fit` costs a few milliseconds of Python per step, which at small batches is most of the
time for a network as small as the pixel CNN. Here each step is one graph call on a batch cut
from arrays already in memory, and a round of training ends as soon as an epoch no longer
lowers the loss by a meaningful share: label-noise correction trains a fresh network several
times per tile, and most epochs after the first few change nothing that matters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from watergee.models.runtime import tensorflow


def gradient_step(
    model: Any, optimizer: Any, input_shape: tuple[int, ...], target_shape: tuple[int, ...]
) -> Callable[[Any, Any, Any], Any]:
    """One compiled optimiser step on a batch (inputs, one-hot targets, sample weights) that
    returns the batch's summed weighted cross-entropy. Weights have the targets' shape less
    the class axis ((n, 1, 1) for a dense network's (n, 1, 1, classes)): Keras broadcasts
    weights of shape (n,) against a loss of shape (n, 1, 1) into (n, 1, n), which averages the
    weights away. A loss-scaling optimiser (mixed precision) scales and unscales the loss."""
    tf = tensorflow()
    import keras

    loss_fn = keras.losses.CategoricalCrossentropy()
    signature = [
        tf.TensorSpec((None, *input_shape), tf.float32),
        tf.TensorSpec((None, *target_shape), tf.float32),
        tf.TensorSpec((None, *target_shape[:-1]), tf.float32),
    ]
    if not optimizer.built:
        optimizer.build(model.trainable_variables)

    @tf.function(input_signature=signature)
    def step(xb: Any, yb: Any, wb: Any) -> Any:
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True), sample_weight=wb)
            scaled = optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return loss * tf.cast(tf.shape(xb)[0], tf.float32)

    return step


def fit_arrays(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    settle: float = 0.0,
) -> list[float]:
    """Train `model` on (x, y) with Adam and categorical cross-entropy, shuffled per epoch by
    `seed`; stop after `epochs`, or earlier when an epoch lowers the mean loss by less than
    `settle` (a share of the previous epoch's loss; 0 never stops early). Returns the
    per-epoch mean losses."""
    tf = tensorflow()
    import keras

    optimizer = keras.optimizers.Adam(learning_rate)
    step = gradient_step(model, optimizer, x.shape[1:], y.shape[1:])
    ones = tf.ones((batch_size, *y.shape[1:-1]), tf.float32)

    rng = np.random.default_rng(seed)
    x, y = np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y, np.float32)
    losses: list[float] = []
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        total = tf.constant(0.0)
        for start in range(0, len(x), batch_size):
            batch = order[start : start + batch_size]
            total += step(x[batch], y[batch], ones[: len(batch)])
        losses.append(float(total) / len(x))
        if epoch and settle > 0 and losses[-2] - losses[-1] < settle * losses[-2]:
            break
    return losses
