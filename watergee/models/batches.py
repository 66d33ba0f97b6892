"""Batches of one split of a sample set, cut from arrays rather than yielded sample by sample.

Feeding a network one sample at a time through a Python generator cost more than the network's
arithmetic: the pixel CNN trained at about 1,000 samples per second on two cores. Here a split
is read once and held in memory when it fits (`CACHE_BYTES`), otherwise read again from its
shards every epoch; batches are slices of shuffled arrays, so each gradient step costs one
graph call. Augmentation and normalisation run on `CHUNK_BATCHES` batches at a time, so an
epoch needs little memory beyond the held patches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from watergee.sampleset import SampleSet, read_shard

#: A split whose patches (as cut for the network) take more bytes than this is read from its
#: shards again every epoch and shuffled within `buffer` samples instead of all at once.
CACHE_BYTES = 1 << 30

#: Batches augmented and normalised together.
CHUNK_BATCHES = 32

Batch = tuple[np.ndarray, np.ndarray, np.ndarray]  # inputs, one-hot targets, sample weights
Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


@dataclass
class SplitBatches:
    """Batches of `split`: `cut` makes a shard's raw patches the network's (still physical)
    patches, `augment` changes them (per epoch, training only), `normalise` scales them, and
    `targets` turns class ids into one-hot targets and sample weights."""

    samples: SampleSet
    split: str
    batch_size: int
    cut: Callable[[np.ndarray], np.ndarray]
    normalise: Callable[[np.ndarray], np.ndarray]
    targets: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    buffer: int = 20000
    _held: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _measured: bool = field(default=False, repr=False)

    def __len__(self) -> int:
        return self.samples.count(self.split)

    def epoch(self, rng: np.random.Generator | None = None, augment: Augment | None = None):
        """One pass over the split: in shard order without `rng`; with it, shuffled (all
        samples at once when the split is held in memory, else within `buffer` samples of
        shards taken in random order) and, with `augment`, augmented afresh."""
        held = self._hold()
        if held is not None:
            x, y = held
            order = rng.permutation(len(y)) if rng is not None else np.arange(len(y))
            yield from self._batches(x, y, order, rng, augment)
            return
        names = list(self.samples.manifest["shards"][self.split])
        if rng is not None:
            names = [names[k] for k in rng.permutation(len(names))]
        pool: list[tuple[np.ndarray, np.ndarray]] = []
        for name in names:
            shard = read_shard(self.samples.root / name)
            pool.append((self._cut(shard["X"]), shard["y"]))
            if sum(len(p[1]) for p in pool) >= self.buffer:
                x, y = np.concatenate([p[0] for p in pool]), np.concatenate([p[1] for p in pool])
                order = rng.permutation(len(y)) if rng is not None else np.arange(len(y))
                full = len(y) - len(y) % self.batch_size
                yield from self._batches(x, y, order[:full], rng, augment)
                pool = [(x[order[full:]], y[order[full:]])]
        if pool and sum(len(p[1]) for p in pool):
            x, y = np.concatenate([p[0] for p in pool]), np.concatenate([p[1] for p in pool])
            order = rng.permutation(len(y)) if rng is not None else np.arange(len(y))
            yield from self._batches(x, y, order, rng, augment)

    def _cut(self, patches: np.ndarray) -> np.ndarray:
        """The network's patches as their own array, not a view keeping the shard alive."""
        return np.ascontiguousarray(self.cut(patches), dtype=np.float32)

    def _hold(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The whole split in memory when it fits, read on first use."""
        if self._measured:
            return self._held
        self._measured = True
        names = list(self.samples.manifest["shards"][self.split])
        if not names:
            return None
        first = read_shard(self.samples.root / names[0])
        per_sample = self._cut(first["X"][:1]).nbytes
        if per_sample * len(self) > CACHE_BYTES:
            return None
        parts = [(self._cut(first["X"]), first["y"])]
        for name in names[1:]:
            shard = read_shard(self.samples.root / name)
            parts.append((self._cut(shard["X"]), shard["y"]))
        self._held = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        return self._held

    def _batches(
        self,
        x: np.ndarray,
        y: np.ndarray,
        order: np.ndarray,
        rng: np.random.Generator | None,
        augment: Augment | None,
    ) -> Iterator[Batch]:
        """Batches of samples `order` of (x, y), transformed a chunk at a time."""
        chunk = self.batch_size * CHUNK_BATCHES
        for start in range(0, len(order), chunk):
            picked = order[start : start + chunk]
            physical = x[picked]
            if augment is not None and rng is not None:
                physical = augment(physical, rng)
            inputs = self.normalise(physical).astype(np.float32, copy=False)
            onehot, weights = self.targets(y[picked])
            for first in range(0, len(picked), self.batch_size):
                last = first + self.batch_size
                yield inputs[first:last], onehot[first:last], weights[first:last]
