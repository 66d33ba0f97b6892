"""polygonise: classes (water) as polygons with class, name, area and perimeter."""

from __future__ import annotations

import logging
from pathlib import Path

from watergee.classmaps import open_class_map
from watergee.core import layout
from watergee.core.config import Settings
from watergee.core.stage import StageResult
from watergee.core.tiles import Tile
from watergee.io.raster import grid_of
from watergee.io.stac import write_item
from watergee.io.vector import polygonise as polygonise_band

log = logging.getLogger(__name__)


def polygonise(tile: Tile, settings: Settings, out: Path) -> StageResult:
    opts = settings.polygonise
    source, ds, style = open_class_map(tile, settings, out)
    names = style.names
    target = layout.product(out, tile, "polygons", opts.format)
    count, area = polygonise_band(ds.GetRasterBand(1), target, grid_of(ds).crs_wkt,
                                  opts.classes, opts.min_area, names)  # fmt: skip
    log.info("%s: %d polygons, %.0f m2", tile.id, count, area)
    item = write_item(target, [source], "polygonise")
    return StageResult([source], [target, item], {"polygons": count, "area_m2": area})
