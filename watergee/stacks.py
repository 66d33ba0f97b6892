"""A Sentinel-2 tile's 10-band stack: band descriptions with reflectance scaling, and the
stack read straight from the band files with nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from osgeo import gdal

from watergee.core.config import Settings
from watergee.core.tiles import Tile
from watergee.io.bandstack import virtual_stack
from watergee.io.raster import BandSpec, note, overview_sample, raster_grid
from watergee.sentinel2 import BAND_NAMES, STACK_ORDER, Scaling, band_files, read_scaling


def stack_specs(tile: Tile, settings: Settings) -> tuple[list[BandSpec], Scaling]:
    """Band descriptions and reflectance scaling of the stack, and the scaling itself (where
    it came from, the metadata file read)."""
    s2 = settings.sentinel2
    scaling = read_scaling(tile.source, s2.quantification, s2.offset)
    specs = [
        BandSpec(band, *scaling.scale_offset(band), {"BAND_NAME": BAND_NAMES[band]})
        for band in STACK_ORDER
    ]
    return specs, scaling


def band_stack(tile: Tile, settings: Settings) -> tuple[gdal.Dataset, list[Path]]:
    """The 10-band stack of a tile read straight from its band files: 20 m bands are resampled
    on the fly like `resample` does, and nothing is written (for `classify.source: bands`)."""
    files = band_files(tile.source, STACK_ORDER)
    paths = [files[band] for band in STACK_ORDER]
    grid = raster_grid(files["B02"])
    specs, scaling = stack_specs(tile, settings)
    stack = virtual_stack(paths, grid, settings.resample.method, specs, settings.sentinel2.nodata)
    return stack, [*paths, *([scaling.metadata] if scaling.metadata else [])]


#: Bounds of plausible top-of-atmosphere or surface reflectance over a whole tile: beyond
#: them the product's scale or offset was almost surely not the one used.
HIGH_P99, LOW_MEDIAN = 1.5, 0.001


def check_scaling(ds: gdal.Dataset, scaling: Scaling, origin: Path) -> None:
    """A warning in the log and the tile's record when the stack's reflectance cannot be
    right: 99th percentile above 1.5 (a x1000 product read as x10000 is the other way round:
    a median below 0.001), e.g. a wrong quantification or a missing -1000 offset."""
    sample = overview_sample(ds, range(1, ds.RasterCount + 1), max_side=256)
    values = sample[np.isfinite(sample)]
    if values.size == 0:
        return
    p99, median = float(np.percentile(values, 99)), float(np.median(values))
    if p99 <= HIGH_P99 and median >= LOW_MEDIAN:
        return
    offsets = sorted(set(scaling.offsets.values())) or [0.0]
    offset = ", ".join(f"{o:g}" for o in offsets)
    note(
        "warnings",
        f"{origin}: reflectance looks mis-scaled (99th percentile {p99:.3g}, median "
        f"{median:.3g}) with (DN + {offset}) / {scaling.quantification:g} from "
        f"{scaling.source}; set sentinel2.quantification / sentinel2.offset if the product "
        "uses another scale",
    )
