"""indices: NDWI, MNDWI, NDVI and the LINE band from the 10-band stack, window by window."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from watergee.core import layout
from watergee.core.config import Settings
from watergee.core.stage import StageResult
from watergee.core.tiles import Tile
from watergee.io.raster import (
    BandSpec,
    band_index,
    create_geotiff,
    grid_of,
    iter_windows,
    open_raster,
    read_window,
)
from watergee.spectral import LINE_HALO, compute_indices, required_bands

log = logging.getLogger(__name__)

DESCRIPTIONS = {
    "NDWI": "(green - NIR) / (green + NIR)",
    "MNDWI": "(green - SWIR1) / (green + SWIR1)",
    "NDVI": "(NIR - red) / (NIR + red)",
    "LINE": "max of four directional 5x5 line filters (-1, 2, -1) of MNDWI",
}


def indices(tile: Tile, settings: Settings, out: Path) -> StageResult:
    names = list(settings.indices.indices)
    source = layout.require_stack(out, tile)
    ds = open_raster(source)
    bands = required_bands(names)
    positions = [band_index(ds, band) for band in bands]
    halo = LINE_HALO if "LINE" in names else 0
    grid = grid_of(ds)
    target = layout.indices(out, tile)
    specs = [BandSpec(name, metadata={"FORMULA": DESCRIPTIONS[name]}) for name in names]
    metadata = {"TILE": tile.id, "WATERGEE_STAGE": "indices", "SOURCE": source.name}
    with create_geotiff(
        target,
        grid,
        specs,
        np.float32,
        float("nan"),
        settings.output,
        metadata,
        overviews="AVERAGE",
        product=False,
    ) as writer:
        for window in iter_windows(grid.width, grid.height, settings.output.window):
            data = read_window(ds, window, positions, halo=halo, scaled=True)
            planes = compute_indices(dict(zip(bands, data, strict=True)), names, halo)
            writer.write(window, planes)
    log.info("%s: %s written", tile.id, ", ".join(names))
    return StageResult([source], [target], {"indices": names})
