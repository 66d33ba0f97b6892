"""MODE overviews of class maps, each level half the one before, computed in numpy strip by
strip: GDAL 3.6 computes them pixel by pixel, in more time than it takes to compress the
whole Cloud Optimized GeoTIFF.

Every overview pixel is the most frequent valid value of the aligned 2 x 2 block of the level
below, a tie going to the value that reaches the top count first in row order, no data where
the block has none. That is GDAL's MODE wherever its windows are those blocks (sides that are
multiples of the factors, tested); elsewhere GDAL rounds overview sides down and stretches its
windows, so that some start a pixel later or span three pixels, and the levels differ there.
"""

from __future__ import annotations

import math

import numpy as np
from osgeo import gdal, gdal_array

#: Rows read at once: a multiple of every factor up to 2**10, so each strip halves exactly.
STRIP_ROWS = 1024


def overview_factors(width: int, height: int, blocksize: int) -> list[int]:
    """Factors 2, 4, ... until a level fits in one block, counted as GDAL's COG driver counts
    them (sides rounded down)."""
    factors: list[int] = []
    side = max(width, height)
    while side > blocksize:
        factors.append(2 ** (len(factors) + 1))
        side //= 2
    return factors


def block_modes(pixels: np.ndarray, nodata: float | None) -> np.ndarray:
    """The next level of `pixels`: ceil(rows / 2) x ceil(cols / 2)."""
    rows, cols = pixels.shape
    odd = bool(rows % 2 or cols % 2)
    fill = 0 if nodata is None else nodata
    if odd:
        pixels = np.pad(pixels, ((0, rows % 2), (0, cols % 2)), constant_values=fill)
    corners = [np.ascontiguousarray(pixels[r::2, c::2]) for r in (0, 1) for c in (0, 1)]
    if nodata is not None:
        valid: list[np.ndarray | None] = [corner != nodata for corner in corners]
    elif odd:  # only the padding is invalid
        inside = np.zeros(pixels.shape, bool)
        inside[:rows, :cols] = True
        valid = [np.ascontiguousarray(inside[r::2, c::2]) for r in (0, 1) for c in (0, 1)]
    else:
        valid = [None] * 4
    # counts[p]: how often corner p's value has occurred up to and including corner p
    counts = []
    for p, value in enumerate(corners):
        mask = valid[p]
        count = np.ones(value.shape, np.uint8) if mask is None else mask.astype(np.uint8)
        for q in range(p):
            same = corners[q] == value
            if valid[q] is not None:
                same &= valid[q]
            count += same
        if mask is not None:
            count *= mask
        counts.append(count)
    top = np.maximum(np.maximum(counts[0], counts[1]), np.maximum(counts[2], counts[3]))
    mode = np.where(counts[2] == top, corners[2], corners[3])
    for p in (1, 0):
        mode = np.where(counts[p] == top, corners[p], mode)
    if nodata is not None:
        mode[top == 0] = fill
    return mode


def fill_mode_overviews(ds: gdal.Dataset, blocksize: int) -> bool:
    """Create and fill the MODE overviews of a single-band integer raster opened for update;
    False (nothing done) where it is not one, or is small enough to need none."""
    if ds.RasterCount != 1:
        return False
    band = ds.GetRasterBand(1)
    # 32-bit codes stay with GDAL, which counts them as 32-bit floats (codes above 2**24 merge)
    if band.DataType not in (gdal.GDT_Byte, gdal.GDT_UInt16, gdal.GDT_Int16):
        return False
    nodata = band.GetNoDataValue()
    info = np.iinfo(gdal_array.GDALTypeCodeToNumericTypeCode(band.DataType))
    if nodata is not None and not (info.min <= nodata <= info.max and float(nodata).is_integer()):
        return False  # a no-data value no pixel holds: GDAL's reading of it stands
    width, height = ds.RasterXSize, ds.RasterYSize
    factors = overview_factors(width, height, blocksize)
    if not factors or 2 ** len(factors) > STRIP_ROWS:
        return False
    ds.BuildOverviews("NONE", factors)
    levels = [band.GetOverview(i) for i in range(band.GetOverviewCount())]
    expected = [(math.ceil(width / f), math.ceil(height / f)) for f in factors]
    if [(level.XSize, level.YSize) for level in levels] != expected:
        raise RuntimeError(f"overview sides {[(o.XSize, o.YSize) for o in levels]} not {expected}")
    for row in range(0, height, STRIP_ROWS):
        pixels = band.ReadAsArray(0, row, width, min(STRIP_ROWS, height - row))
        for factor, level in zip(factors, levels, strict=True):
            pixels = block_modes(pixels, nodata)
            level.WriteArray(pixels, 0, row // factor)
    ds.FlushCache()
    return True
