"""A physical check on a classifier's water: water absorbs the short-wave infrared.

Open water reflects almost nothing beyond 1.5 um whatever its sediment (the real scenes' water:
B11 reflectance at most 0.11, median 0.02), and bright land a model may extrapolate to is far
brighter there (roofs 0.2-0.5). A pixel that bright cannot be open water, so it gets its next
most probable class. Land as dark as water in the SWIR (winter conifers, 0.06-0.09) is beyond
this check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from osgeo import gdal, gdal_array

from watergee.io.raster import overview_sample

#: Above this median a band without a scale holds digital numbers, not reflectance.
HIGHEST_MEDIAN = 1.5


@dataclass
class SwirGuard:
    """Pixels of class `water` (index into the model's classes) brighter than `limit` in the
    SWIR lose the water class; `changed` and `unclassified` count them."""

    water: int
    limit: float
    changed: int = 0
    unclassified: int = 0

    def apply(
        self,
        labels: np.ndarray,
        probabilities: np.ndarray,
        valid: np.ndarray,
        swir: np.ndarray,
        classes: np.ndarray,
    ) -> None:
        """Relabel in place. The water probability becomes 0 and the others are rescaled to sum
        to 1, so that probabilities and map agree. Where the model left no probability to
        another class (an SVM, a unanimous forest) no class is more likely than another: the
        pixel becomes no data (valid False) rather than an arbitrary class."""
        rows, cols = np.nonzero(valid & (labels == classes[self.water]) & (swir > self.limit))
        if rows.size == 0:  # NaN SWIR (no data) compares False: the model's call stays
            return
        others = probabilities[rows, cols].astype(np.float64)
        others[:, self.water] = 0
        total = others.sum(axis=1)
        left = total > 0
        rescaled = others[left] / total[left, None]
        labels[rows[left], cols[left]] = classes[rescaled.argmax(axis=1)]
        probabilities[rows[left], cols[left]] = rescaled
        valid[rows[~left], cols[~left]] = False
        self.changed += int(left.sum())
        self.unclassified += int((~left).sum())


def water_index(names: list[str], ids: list[int], water_class: int | None) -> int | None:
    """Position of the water class among a model's classes: the id given, else the class
    named 'water' (any case); None when the model has none."""
    for i, (name, cid) in enumerate(zip(names, ids, strict=True)):
        if (cid == water_class) if water_class is not None else name.strip().lower() == "water":
            return i
    return None


def reflectance_problem(ds: gdal.Dataset, index: int) -> str | None:
    """Why a band's values are not reflectance, or None when they are. A scale to reflectance
    is trusted; without one, integers are digital numbers, and floats are judged by their
    median (a float DN band would have every water pixel fail the limit)."""
    band = ds.GetRasterBand(index)
    if band.GetScale() not in (None, 1.0):
        return None
    kind = np.dtype(gdal_array.GDALTypeCodeToNumericTypeCode(band.DataType)).kind
    if kind in "iu":
        return "is stored as integers without a scale to reflectance"
    sample = overview_sample(ds, [index], max_side=256)
    values = sample[np.isfinite(sample)]
    median = float(np.median(values)) if values.size else 0.0
    if median > HIGHEST_MEDIAN:
        return f"has no scale and a median of {median:.4g}, far above reflectance"
    return None
