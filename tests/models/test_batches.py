"""Batches of a sample set: every sample once per epoch, whether held in memory or streamed."""

import numpy as np
import pytest

from watergee.models import batches as batches_module
from watergee.models.batches import SplitBatches
from watergee.sampleset import SampleSet, write_shards


@pytest.fixture
def sample_set(tmp_path):
    """Ten shards of 37 samples; each 3 x 3 patch holds its sample number everywhere."""
    count = 370
    x = np.broadcast_to(np.arange(count, dtype=np.float32)[:, None, None, None], (count, 3, 3, 2))
    y = np.where(np.arange(count) % 3 == 0, 1, 2)
    paths = write_shards(tmp_path, "train", {"X": x.copy(), "y": y}, size=37)
    manifest = {
        "shards": {"train": [p.name for p in paths], "validation": []},
        "totals": {"train": {"1": int((y == 1).sum()), "2": int((y == 2).sum())}},
    }
    return SampleSet(tmp_path, manifest)


def _batches(samples, batch_size=50, buffer=100):
    return SplitBatches(
        samples,
        "train",
        batch_size,
        cut=lambda x: x[:, 1:2, 1:2, :],  # the centre pixel
        normalise=lambda x: x * 10,
        targets=lambda ids: (np.eye(2, dtype=np.float32)[ids - 1], ids.astype(np.float32)),
        buffer=buffer,
    )


def _numbers(epoch):
    parts = list(epoch)
    numbers = np.concatenate([x[:, 0, 0, 0] / 10 for x, _, _ in parts]).astype(int)
    weights = np.concatenate([w for _, _, w in parts])
    return parts, numbers, weights


def test_an_epoch_in_order_without_a_generator(sample_set):
    parts, numbers, weights = _numbers(_batches(sample_set).epoch())
    np.testing.assert_array_equal(numbers, np.arange(370))
    np.testing.assert_array_equal(weights, np.where(numbers % 3 == 0, 1, 2))
    assert [len(x) for x, _, _ in parts] == [50] * 7 + [20]


@pytest.mark.parametrize("cache_bytes", [1 << 30, 1000])  # held in memory; streamed
def test_shuffled_epochs_hold_every_sample_once(sample_set, monkeypatch, cache_bytes):
    monkeypatch.setattr(batches_module, "CACHE_BYTES", cache_bytes)
    batches = _batches(sample_set)
    rng = np.random.default_rng(0)
    orders = []
    for _ in range(3):
        parts, numbers, weights = _numbers(batches.epoch(rng))
        np.testing.assert_array_equal(np.sort(numbers), np.arange(370))
        # Targets and weights travel with their sample.
        labels = np.concatenate([y.argmax(1) + 1 for _, y, _ in parts])
        np.testing.assert_array_equal(labels, np.where(numbers % 3 == 0, 1, 2))
        np.testing.assert_array_equal(weights, labels)
        assert all(len(x) == 50 for x, _, _ in parts[:-1])
        orders.append(numbers)
    assert not np.array_equal(orders[0], orders[1])
    assert (batches._held is not None) == (cache_bytes > 1000)


def test_a_streamed_epoch_shuffles_within_its_buffer(sample_set, monkeypatch):
    monkeypatch.setattr(batches_module, "CACHE_BYTES", 0)
    _, numbers, _ = _numbers(_batches(sample_set, buffer=74).epoch(np.random.default_rng(1)))
    # The first batches come from the first pool: two whole shards (74 samples).
    first_shards = set(numbers[:50] // 37)
    assert len(first_shards) <= 2


@pytest.mark.parametrize("cache_bytes", [1 << 30, 0])
def test_each_sample_is_augmented_once_per_epoch(sample_set, monkeypatch, cache_bytes):
    monkeypatch.setattr(batches_module, "CACHE_BYTES", cache_bytes)
    batches = _batches(sample_set, batch_size=32)
    for _ in range(2):  # the cache keeps the patches as read, never augmented
        _, numbers, _ = _numbers(batches.epoch(np.random.default_rng(2), lambda x, rng: x + 1000))
        np.testing.assert_array_equal(np.sort(numbers), np.arange(370) + 1000)
