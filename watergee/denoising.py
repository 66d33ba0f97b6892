"""The science of water_gee's label-noise correction, as plain array functions."""

from __future__ import annotations

import numpy as np


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


def spectrally_consistent(
    features: np.ndarray, mean: np.ndarray, std: np.ndarray, k: float, majority: float
) -> np.ndarray:
    """True where more than `majority` of the channels (channels, rows, cols) lie within
    mean +- k sd of the current water: water_gee's normal-distribution check."""
    inside = np.abs(features - mean[:, None, None]) <= k * std[:, None, None]
    return inside.sum(axis=0) > majority * len(mean)


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two water masks (1 when both are empty)."""
    union = int((a | b).sum())
    return int((a & b).sum()) / union if union else 1.0
