"""Figures over pixels and samples: accuracy against references, running moments."""

from __future__ import annotations

import numpy as np


def detection_scores(
    predicted: np.ndarray, positive: np.ndarray, negative: np.ndarray
) -> tuple[float, float, float]:
    """(F1, recall, false-positive rate) of a binary map scored only on reference pixels:
    `positive` where the class truly is, `negative` where it truly is not."""
    tp = int((predicted & positive).sum())
    fp = int((predicted & negative).sum())
    fn = int((~predicted & positive).sum())
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    false_rate = fp / int(negative.sum()) if negative.any() else 0.0
    return f1, recall, false_rate


def map_detection_scores(
    classes: np.ndarray,
    target: int,
    positive: np.ndarray,
    negative: np.ndarray,
    nodata: int = 255,
) -> tuple[float, float, float]:
    """`detection_scores` of class `target` in a class map, on the pixels the map classifies:
    a model's unclassified border is no data, not a miss."""
    mapped = classes != nodata
    return detection_scores(classes == target, positive & mapped, negative & mapped)


class RunningMoments:
    """Per-channel mean and standard deviation over selected pixels, accumulated by window."""

    def __init__(self, channels: int) -> None:
        self.n = 0
        self.total = np.zeros(channels)
        self.total_sq = np.zeros(channels)

    def add(self, features: np.ndarray, where: np.ndarray) -> None:
        values = features[:, where].astype(np.float64)  # channels x pixels
        self.n += values.shape[1]
        self.total += values.sum(axis=1)
        self.total_sq += (values**2).sum(axis=1)

    @property
    def mean(self) -> np.ndarray:
        return self.total / max(self.n, 1)

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.total_sq / max(self.n, 1) - self.mean**2, 0))
