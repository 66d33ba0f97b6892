"""The science of water_gee's label-noise correction, as plain array functions."""

from __future__ import annotations

import numpy as np


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
