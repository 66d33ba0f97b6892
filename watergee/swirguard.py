"""A physical check on a classifier's water: water absorbs the short-wave infrared.

Open water reflects almost nothing beyond 1.5 um whatever its sediment or algae (the real
scenes' water: B11 reflectance at most 0.11, median 0.02), while every land cover a model may
confuse with it is brighter there (roofs 0.2-0.5, winter forest 0.06-0.4). A classifier meeting
a scene unlike its training data extrapolates, and bright roofs can land on water; a pixel that
bright in the SWIR cannot be open water, so it gets its next most probable class instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from osgeo import gdal

#: GDAL integer data types: a band of these without a scale holds digital numbers.
_INTEGER_TYPES = {gdal.GDT_Byte, gdal.GDT_UInt16, gdal.GDT_Int16, gdal.GDT_UInt32, gdal.GDT_Int32}


@dataclass(frozen=True)
class SwirGuard:
    """Pixels of class `water` (index into the model's classes) brighter than `limit` in the
    SWIR band lose the water class."""

    water: int
    limit: float

    def apply(
        self,
        labels: np.ndarray,
        probabilities: np.ndarray,
        valid: np.ndarray,
        swir: np.ndarray,
        classes: np.ndarray,
    ) -> int:
        """Relabel valid pixels in place; returns how many changed. Their water probability
        becomes 0 and the others are rescaled to sum to 1, so the probabilities agree with the
        map."""
        bright = valid & (labels == classes[self.water]) & (swir > self.limit)  # NaN: False
        count = int(np.count_nonzero(bright))
        if count == 0:
            return 0
        others = probabilities[bright].astype(np.float64)
        others[:, self.water] = 0
        total = others.sum(axis=1, keepdims=True)
        # A model certain of water leaves nothing else: the other classes share evenly.
        flat = np.full_like(others, 1 / (others.shape[1] - 1))
        flat[:, self.water] = 0
        others = np.where(total > 0, others / np.where(total > 0, total, 1), flat)
        labels[bright] = classes[others.argmax(axis=1)]
        probabilities[bright] = others
        return count


def water_index(names: list[str], ids: list[int], water_class: int | None) -> int | None:
    """Position of the water class among a model's classes: the id given, else the class
    named 'water' (any case); None when the model has none."""
    for i, (name, cid) in enumerate(zip(names, ids, strict=True)):
        if (cid == water_class) if water_class is not None else name.strip().lower() == "water":
            return i
    return None


def reflectance_problem(band: gdal.Band) -> str | None:
    """Why a band's values are not reflectance, or None when they are: an integer band
    without a scale holds digital numbers the limit cannot be compared with."""
    scale = band.GetScale()
    if band.DataType in _INTEGER_TYPES and scale in (None, 1.0) and not band.GetOffset():
        return "is stored as integers without a scale to reflectance"
    return None
