"""sieve: patches below the minimum mapping unit merged into their largest neighbour (GDAL's
sieve filter), no-data left alone."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from osgeo import gdal

from watergee.classmaps import nodata_of, open_class_map
from watergee.core import layout
from watergee.core.config import Settings
from watergee.core.errors import OutputError, TileInputError
from watergee.core.stage import StageResult
from watergee.core.tiles import Tile
from watergee.io.raster import Grid, create_geotiff, gdal_reason, grid_of
from watergee.io.stac import write_item

log = logging.getLogger(__name__)


def threshold_pixels(settings: Settings, grid: Grid, source: Path) -> int:
    """The smallest patch kept in pixels; an area needs a projected CRS to be counted."""
    opts = settings.sieve
    if opts.min_area is None:
        return opts.min_size
    pixel_area = grid.pixel_area_m2()
    if pixel_area is None:
        raise TileInputError(
            f"{source}: sieve.min_area needs a projected CRS, not {grid.crs_name()} "
            "(use sieve.min_size in pixels)"
        )
    return max(2, math.ceil(opts.min_area / pixel_area - 1e-9))


def sieve(tile: Tile, settings: Settings, out: Path) -> StageResult:
    source, ds, style = open_class_map(tile, settings, out)
    grid = grid_of(ds)
    threshold = threshold_pixels(settings, grid, source)
    connectivity = settings.sieve.connectivity
    target = layout.product(out, tile, "sieved")
    metadata = {**style.metadata, "WATERGEE_STAGE": "sieve", "SOURCE": source.name,
                "SIEVE": f"{threshold} px, {connectivity}-connected"}  # fmt: skip
    band = ds.GetRasterBand(1)
    with create_geotiff(target, grid, [style.band], style.dtype, nodata_of(style), settings.output,
                        metadata, style.colours or None, overviews=True) as writer:  # fmt: skip
        try:
            # Patches of fewer than `threshold` pixels go; no-data pixels (the mask) stay.
            gdal.SieveFilter(band, band.GetMaskBand(), writer.band(1), threshold, connectivity)
        except RuntimeError as exc:
            raise OutputError(f"{target}: sieve failed ({gdal_reason(exc)})") from None
    log.info("%s: sieved below %d px (%d-connected)", tile.id, threshold, connectivity)
    item = write_item(target, [source], "sieve")
    return StageResult([source], [target, item], {"threshold_px": threshold})
