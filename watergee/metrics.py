"""Accuracy figures against reference labels."""

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
