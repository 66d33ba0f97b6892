"""extract: one class as a 0/1 (or 0/code) raster, no data kept (255)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from watergee.classmaps import extract as extract_class
from watergee.classmaps import nodata_of, open_class_map
from watergee.core import layout
from watergee.core.config import Settings
from watergee.core.errors import TileInputError
from watergee.core.stage import StageResult
from watergee.core.tiles import Tile
from watergee.io.quicklook import write_quicklook
from watergee.io.raster import (
    class_band,
    create_geotiff,
    grid_of,
    iter_windows,
    read_band,
)
from watergee.io.stac import write_item

log = logging.getLogger(__name__)


def extract(tile: Tile, settings: Settings, out: Path) -> StageResult:
    opts = settings.extract
    if opts.class_id is None:
        raise TileInputError("no class to extract (--class ID or extract.class_id)")
    source, ds, style = open_class_map(tile, settings, out)
    grid, nodata = grid_of(ds), nodata_of(style)
    if style.names and opts.class_id not in style.names:
        listed = ", ".join(f"{k} {v}" for k, v in sorted(style.names.items()))
        raise TileInputError(f"{source}: has no class {opts.class_id} (its classes: {listed})")
    name = style.names.get(opts.class_id, f"class {opts.class_id}")
    target = layout.product(out, tile, f"class{opts.class_id}")
    shown = 1 if opts.value == "one" else opts.class_id
    band = class_band(name, {shown: name, 0: f"not {name}"})
    metadata = {"WATERGEE_STAGE": "extract", "SOURCE": source.name, "CLASS": str(opts.class_id)}
    found = 0
    with create_geotiff(target, grid, [band], np.uint8, 255, settings.output, metadata,
                        overviews=True) as writer:  # fmt: skip
        for w in iter_windows(grid.width, grid.height, settings.output.window):
            data = read_band(ds, 1, w.col, w.row, w.width, w.height)
            block = extract_class(data, opts.class_id, opts.value, nodata)
            found += int((block == shown).sum()) if shown else 0
            writer.write(w, block)
    log.info("%s: class %d on %d px", tile.id, opts.class_id, found)
    outputs = [target]
    if opts.quicklook:
        outputs.append(layout.product(out, tile, f"class{opts.class_id}", "png"))
        write_quicklook(target, outputs[-1])
    outputs.append(write_item(target, [source], "extract"))
    return StageResult([source], outputs, {"pixels": found})
