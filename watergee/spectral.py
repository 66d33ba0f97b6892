"""Spectral indices as plain array functions (reflectance in, float32 out, NaN = no data)."""

from __future__ import annotations

import numpy as np

#: Bands each index reads, as (first, second) of a normalised difference.
INDEX_BANDS: dict[str, tuple[str, str]] = {
    "NDWI": ("B03", "B08"),  # McFeeters: green vs NIR
    "MNDWI": ("B03", "B11"),  # Xu: green vs SWIR1
    "NDVI": ("B08", "B04"),  # NIR vs red
    "LINE": ("B03", "B11"),  # computed on MNDWI
}

#: Pixels of context the LINE filter needs on each side.
LINE_HALO = 2

#: The four directional offsets of the line filter: each response is 2*c - p - q where p and
#: q are the pixels two steps away from c along one direction (vertical, both diagonals,
#: horizontal), i.e. water_gee's 5x5 kernels with weights -1, 2, -1.
_DIRECTIONS = ((2, 0), (2, 2), (2, -2), (0, 2))


def normalized_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a - b) / (a + b); NaN where either input is NaN or the sum is zero."""
    a = a.astype(np.float32, copy=False)
    b = b.astype(np.float32, copy=False)
    total = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (a - b) / total
    out[total == 0] = np.nan
    return out


def line_filter(values: np.ndarray) -> np.ndarray:
    """Max of the four directional line responses; input carries a 2-pixel halo that the
    output lacks. Any NaN among the pixels a response uses makes that pixel NaN."""
    h = LINE_HALO
    rows, cols = values.shape[0] - 2 * h, values.shape[1] - 2 * h
    centre = values[h : h + rows, h : h + cols]
    best = None
    for dr, dc in _DIRECTIONS:
        before = values[h - dr : h - dr + rows, h - dc : h - dc + cols]
        after = values[h + dr : h + dr + rows, h + dc : h + dc + cols]
        response = 2 * centre - before - after
        best = response if best is None else np.maximum(best, response)
    return best.astype(np.float32, copy=False)


def required_bands(names: list[str]) -> list[str]:
    """The bands the given indices read, in a stable order."""
    bands = sorted({band for name in names for band in INDEX_BANDS[name]})
    return bands


def compute_indices(bands: dict[str, np.ndarray], names: list[str], halo: int) -> np.ndarray:
    """Stack of the named indices for one window; `bands` carry `halo` pixels of context,
    the result does not."""
    crop = (slice(halo, -halo or None), slice(halo, -halo or None))
    planes = []
    mndwi = None
    for name in names:
        if name in ("MNDWI", "LINE") and mndwi is None:
            mndwi = normalized_difference(bands["B03"], bands["B11"])
        if name == "LINE":
            if halo < LINE_HALO:
                raise ValueError(f"LINE needs a halo of {LINE_HALO} pixels, got {halo}")
            inner = halo - LINE_HALO
            source = mndwi[inner : mndwi.shape[0] - inner, inner : mndwi.shape[1] - inner]
            planes.append(line_filter(source))
        elif name == "MNDWI":
            planes.append(mndwi[crop])
        else:
            first, second = INDEX_BANDS[name]
            planes.append(normalized_difference(bands[first][crop], bands[second][crop]))
    return np.stack(planes)
