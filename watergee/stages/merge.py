"""merge: one mosaic of every tile's class map in a target CRS (default EPSG:3035, 10 m), each
pixel from the tile that owns it (see `watergee.mosaic`), streamed window by window into a Cloud
Optimized GeoTIFF with MODE overviews, colour table and class names."""

from __future__ import annotations

import logging
from pathlib import Path

from watergee.core import layout
from watergee.core.config import Settings
from watergee.core.environment import usable_cpus
from watergee.core.stage import StageResult
from watergee.core.tiles import Tile, write_tile_list
from watergee.io.raster import ClassStyle, create_geotiff, iter_windows, spatial_reference
from watergee.io.stac import write_item
from watergee.mosaic import mosaic_windows, open_sources, target_grid
from watergee.sentinel2 import read_tiles

log = logging.getLogger(__name__)


def check(settings: Settings) -> None:
    """The target CRS, known to GDAL, before any tile is read."""
    spatial_reference(settings.merge.crs, "merge.crs")


def merge(run: Tile, settings: Settings, out: Path) -> StageResult:
    """`run.source` is the tile list; `run.id` names the product."""
    opts, work = settings.merge, settings.product.work or out
    tiles = sorted(read_tiles(run.source), key=lambda t: t.id)  # never the list's order
    paths = [
        layout.class_map(work, t, settings.product.mode, settings.product.input) for t in tiles
    ]
    sources = open_sources(paths, [t.id for t in tiles], opts.crs)
    grid = target_grid(sources, opts.crs, opts.resolution)
    style = ClassStyle.of(sources[0].ds)
    nodata = style.nodata if style.nodata is not None else 255
    target = layout.mosaic(out, run)
    metadata = {
        **style.metadata,
        "WATERGEE_STAGE": "merge",
        "TILES": ",".join(t.id for t in tiles),
        "OWNER_RULE": "MGRS square within the nearest UTM zone; else nearest tile centre",
    }
    metadata.pop("TILE", None)
    windows = iter_windows(grid.width, grid.height, settings.output.window)
    threads = settings.output.threads or usable_cpus()
    with create_geotiff(target, grid, [style.band], style.dtype, nodata, settings.output, metadata,
                        style.colours or None, overviews=opts.overviews) as writer:  # fmt: skip
        for window, data in mosaic_windows(sources, grid, windows, nodata, style.dtype, threads):
            writer.write(window, data)
    log.info(
        "%s: %d tiles, %d x %d px in %s", run.id, len(tiles), grid.width, grid.height, opts.crs
    )
    item = write_item(target, paths, "merge")
    listed = write_tile_list(
        [Tile(run.id, target)],
        layout.mosaic_list(out, run),
        "the mosaic as a tile list: --tiles THIS_FILE for sieve, extract...",
    )
    return StageResult([run.source, *paths], [target, item, listed], {"tiles": len(tiles),
                       "size": [grid.width, grid.height]})  # fmt: skip
