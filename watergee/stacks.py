"""A Sentinel-2 tile's 10-band stack: band descriptions with reflectance scaling, and the
stack read straight from the band files with nothing written."""

from __future__ import annotations

from pathlib import Path

from osgeo import gdal

from watergee.core.config import Settings
from watergee.core.tiles import Tile
from watergee.io.bandstack import virtual_stack
from watergee.io.raster import BandSpec, raster_grid
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
