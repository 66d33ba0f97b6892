"""resample: bring the 20 m Sentinel-2 bands onto the tile's 10 m grid."""

from __future__ import annotations

import logging
from pathlib import Path

from watergee.core import layout
from watergee.core.config import Settings
from watergee.core.errors import GridMismatchError
from watergee.core.stage import StageResult
from watergee.core.tiles import Tile
from watergee.io.bandstack import warp_to_grid
from watergee.io.raster import BandSpec, raster_grid
from watergee.sentinel2 import BAND_NAMES, band_files, read_scaling

log = logging.getLogger(__name__)

#: The 10 m band whose grid every resampled band is put on.
REFERENCE_BAND = "B02"


def resample(tile: Tile, settings: Settings, out: Path) -> StageResult:
    s2, options = settings.sentinel2, settings.resample
    files = band_files(tile.source, [REFERENCE_BAND, *options.bands])
    reference = files[REFERENCE_BAND]
    grid = raster_grid(reference)
    scaling = read_scaling(tile.source, s2.quantification, s2.offset)
    outputs = []
    for band in options.bands:
        source = files[band]
        source_grid = raster_grid(source)
        if not source_grid.same_crs(grid):
            raise GridMismatchError(f"{source}: CRS differs from {reference}")
        slack = max(source_grid.resolution)
        if any(abs(a - b) > slack for a, b in zip(source_grid.bounds, grid.bounds, strict=True)):
            raise GridMismatchError(
                f"{source}: extent {source_grid.bounds} differs from {reference} {grid.bounds}"
            )
        scale, offset = scaling.scale_offset(band)
        target = layout.resampled_band(out, tile, band)
        warp_to_grid(
            source,
            target,
            grid,
            options.method,
            s2.nodata,
            settings.output,
            BandSpec(band, scale, offset, {"BAND_NAME": BAND_NAMES[band]}),
            metadata={
                "TILE": tile.id,
                "WATERGEE_STAGE": "resample",
                "RESAMPLING": options.method,
                "REFLECTANCE": "DN * scale + offset",
            },
        )
        outputs.append(target)
    inputs = [reference, *(files[b] for b in options.bands)]
    inputs += [scaling.metadata] if scaling.metadata else []
    log.info("%s: %d bands resampled (%s, scaling %s)", tile.id, len(outputs), options.method,
             scaling.source)  # fmt: skip
    return StageResult(inputs, outputs, {"method": options.method, "scaling": scaling.source})
