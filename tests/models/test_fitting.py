"""Compiled training on arrays: it learns, it is reproducible for a seed, and it stops once the
loss settles."""

from itertools import pairwise

import numpy as np

from watergee.models.fitting import fit_arrays
from watergee.models.pixelcnn import build_pixelcnn


def _problem(n: int = 2000):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 7, 7, 3)).astype(np.float32)
    water = x[:, 3, 3, 0] + x[:, 3, 3, 1] > 0
    y = np.eye(2, dtype=np.float32)[water.astype(int)][:, None, None, :]
    return x, y, water


def _train(seed: int, settle: float = 0.0, epochs: int = 6):
    import keras

    keras.utils.set_random_seed(seed)
    model = build_pixelcnn(3, 2)
    x, y, water = _problem()
    losses = fit_arrays(model, x, y, epochs=epochs, batch_size=128, learning_rate=0.01,
                        seed=seed, settle=settle)  # fmt: skip
    predicted = model(x, training=False).numpy().reshape(len(x), 2).argmax(1) == 1
    return model, losses, float((predicted == water).mean())


def test_training_learns_and_repeats_exactly_for_a_seed():
    first, losses, accuracy = _train(seed=3)
    again, losses_again, _ = _train(seed=3)
    assert accuracy > 0.97 and losses[-1] < losses[0] / 2
    assert losses == losses_again
    for a, b in zip(first.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    _, other, _ = _train(seed=4)
    assert other != losses


def test_training_stops_once_an_epoch_no_longer_lowers_the_loss_enough():
    _, losses, _ = _train(seed=3, settle=0.5, epochs=30)
    assert 2 <= len(losses) < 30
    assert losses[-2] - losses[-1] < 0.5 * losses[-2]  # the epoch that stopped it
    assert all(a - b >= 0.5 * a for a, b in pairwise(losses[:-1]))
