"""Physical checks on a classifier's water: open water is dark in the short-wave infrared and
is not vegetation.

Open water reflects almost nothing beyond 1.5 um whatever its sediment (the real scenes' water:
B11 reflectance at most 0.11, median 0.02), and bright land a model may extrapolate to is far
brighter there (roofs 0.2-0.5). Land as dark as water in the SWIR (winter conifers at the top of
the atmosphere, 0.06-0.09) is still vegetation: NDVI 0.28-0.49 and near-infrared reflectance
above 0.1, where the real scenes' water has an NDVI below 0.07 (a few shore and river pixels up
to 0.4, but those at most 0.07 in the near infrared). A pixel failing a check cannot be open
water, so it gets its next most probable class. The SWIR check runs first: a pixel failing both
is counted once, under the SWIR.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from osgeo import gdal, gdal_array

from watergee.core.config import ClassifySettings
from watergee.io.raster import overview_sample
from watergee.spectral import normalized_difference

#: The checks' names, in the order they run (record keys: not_water_by_<name>, ...).
CHECKS = ("swir", "vegetation")

#: Above this median a band without a scale holds digital numbers, not reflectance.
HIGHEST_MEDIAN = 1.5


@dataclass
class WaterCheck:
    """A rule every pixel of class `water` (index into the model's classes) must pass, on the
    reflectances of `bands`; `changed` and `unclassified` count the pixels that failed it."""

    water: int
    name: str
    rule: str
    bands: tuple[str, ...]
    limits: tuple[float, ...]
    fails: Callable[..., np.ndarray]
    changed: int = 0
    unclassified: int = 0

    def apply(
        self,
        labels: np.ndarray,
        probabilities: np.ndarray,
        valid: np.ndarray,
        values: Mapping[str, np.ndarray],
        classes: np.ndarray,
    ) -> None:
        """Relabel in place. The water probability becomes 0 and the others are rescaled to sum
        to 1, so that probabilities and map agree. Where the model left no probability to
        another class (an SVM, a unanimous forest) no class is more likely than another: the
        pixel becomes no data (valid False) rather than an arbitrary class."""
        water = valid & (labels == classes[self.water])
        if not water.any():
            return
        with np.errstate(divide="ignore", invalid="ignore"):
            # NaN reflectance (no data) compares False: the model's call stays
            failed = self.fails(*(values[band] for band in self.bands)) & water
        if not failed.any():
            return
        # whole class planes, in place: gathering the failed pixels of a window of millions
        # and scattering them back took three times as long
        others = [k for k in range(probabilities.shape[-1]) if k != self.water]
        rest = probabilities[..., others[0]].copy()
        for k in others[1:]:
            rest += probabilities[..., k]
        certain = failed & ~(rest > 0)
        changed = failed & ~certain
        np.copyto(probabilities[..., self.water], 0, where=changed)
        for k in others:
            plane = probabilities[..., k]
            np.divide(plane, rest, out=plane, where=changed)
        np.copyto(labels, most_probable(probabilities, classes, skip=self.water), where=changed)
        valid[certain] = False
        self.changed += int(np.count_nonzero(changed))
        self.unclassified += int(np.count_nonzero(certain))


def swir_check(water: int, band: str, limit: float) -> WaterCheck:
    """Water brighter than `limit` in the SWIR `band` fails."""
    rule = f"{band} > {limit}"
    return WaterCheck(water, "swir", rule, (band,), (limit,), lambda swir: swir > limit)


def vegetation_check(water: int, red: str, nir: str, max_ndvi: float, min_nir: float) -> WaterCheck:
    """Water with an NDVI above `max_ndvi` and a near-infrared reflectance above `min_nir`
    fails: vegetation, not water darkened at a shore or in a narrow channel."""

    def fails(r: np.ndarray, n: np.ndarray) -> np.ndarray:
        return (n > min_nir) & (normalized_difference(n, r) > max_ndvi)

    rule = f"NDVI({red}, {nir}) > {max_ndvi} and {nir} > {min_nir}"
    return WaterCheck(water, "vegetation", rule, (red, nir), (max_ndvi, min_nir), fails)


def water_class_problem(ids: list[int], opts: ClassifySettings) -> str | None:
    """Why `classify.water_class` cannot be used with a model of classes `ids`, or None."""
    if opts.water_class is None or opts.water_class in ids:
        return None
    return f"classify.water_class {opts.water_class} is not one of the model's classes {ids}"


def configured_checks(
    names: list[str],
    ids: list[int],
    opts: ClassifySettings,
    bands: Mapping[str, str],
    unusable: Callable[[tuple[str, ...]], str | None] = lambda _: None,
) -> tuple[list[WaterCheck], dict[str, str]]:
    """The checks `opts` turns on for a model of classes `names` / `ids`, reading the bands
    `bands` names for 'swir', 'red' and 'nir'; and per check its rule, or why it is off (a
    limit set to null, no water class, or what `unusable` finds wrong with its bands)."""
    water = water_index(names, ids, opts.water_class)
    limits = {"swir": ("water_max_swir", opts.water_max_swir),
              "vegetation": ("water_max_ndvi", opts.water_max_ndvi)}  # fmt: skip
    checks, rules = [], {}
    for name in CHECKS:
        key, limit = limits[name]
        if limit is None:
            rules[name] = f"off (classify.{key}: null)"
            continue
        if water is None or len(ids) < 2:
            rules[name] = "off (no water class among the model's classes, or no other class)"
            continue
        check = (
            swir_check(water, bands["swir"], limit)
            if name == "swir"
            else vegetation_check(water, bands["red"], bands["nir"], limit, opts.vegetation_min_nir)
        )
        reason = unusable(check.bands)
        if reason is not None:
            rules[name] = reason
            continue
        checks.append(check)
        rules[name] = check.rule
    return checks, rules


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


def most_probable(
    probabilities: np.ndarray, classes: np.ndarray, skip: int | None = None
) -> np.ndarray:
    """The class code of each pixel's highest probability (the first on ties, as argmax),
    leaving out class index `skip` (without copying the probabilities to drop it)."""
    order = [k for k in range(probabilities.shape[-1]) if k != skip]
    best = probabilities[..., order[0]].copy()
    labels = np.full(best.shape, classes[order[0]], dtype=classes.dtype)
    for k in order[1:]:
        plane = probabilities[..., k]
        higher = plane > best
        labels[higher] = classes[k]
        np.copyto(best, plane, where=higher)
    return labels
