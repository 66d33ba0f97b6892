"""label-transfer: class codes mapped through an explicit table (model classes -> Corine / OSM
codes), with class names and colours following."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from watergee.classmaps import nodata_of, open_class_map, read_table, transfer, transfer_lookup
from watergee.core import layout
from watergee.core.config import Settings
from watergee.core.errors import TileInputError
from watergee.core.stage import StageResult
from watergee.core.tiles import Tile
from watergee.io.palette import class_colours
from watergee.io.raster import class_band, create_geotiff, grid_of, iter_windows, read_band
from watergee.io.stac import write_item

log = logging.getLogger(__name__)


def check(settings: Settings) -> None:
    """The transfer table, read before any tile runs."""
    read_table(settings.transfer)


def label_transfer(tile: Tile, settings: Settings, out: Path) -> StageResult:
    opts = read_table(settings.transfer)
    if not opts.table and opts.default is None:
        raise TileInputError("no transfer table (--table FILE or transfer.table)")
    source, ds, style = open_class_map(tile, settings, out)
    grid, nodata = grid_of(ds), nodata_of(style)
    old_names = style.names
    windows = list(iter_windows(grid.width, grid.height, settings.output.window))
    present: set[int] = set()
    for w in windows:  # every code is checked before anything is written
        present |= set(np.unique(read_band(ds, 1, w.col, w.row, w.width, w.height)).tolist())
    lookup = transfer_lookup(opts, np.array(sorted(present)), source, nodata)
    names = {
        new: opts.names.get(new) or old_names.get(old, str(new)) for old, new in lookup.items()
    }
    # coloured over every code the table can give, so that all tiles agree
    every = {
        *opts.table.values(),
        *opts.names,
        *([opts.default] if opts.default is not None else []),
    }
    colours = class_colours({**{c: opts.names.get(c, "") for c in every}, **names})
    band = class_band(style.band.description, names)
    metadata = {**style.metadata, "WATERGEE_STAGE": "label-transfer", "SOURCE": source.name,
                "TABLE": ",".join(f"{a}:{b}" for a, b in sorted(lookup.items()))}  # fmt: skip
    metadata.pop("CLASSES", None)
    target = layout.product(out, tile, "transferred")
    with create_geotiff(target, grid, [band], style.dtype, nodata, settings.output, metadata,
                        colours or None, overviews=True) as writer:  # fmt: skip
        for w in windows:
            writer.write(
                w, transfer(read_band(ds, 1, w.col, w.row, w.width, w.height), lookup, nodata)
            )
    log.info("%s: codes %s", tile.id, lookup)
    inputs = [source, *([settings.transfer.table_file] if settings.transfer.table_file else [])]
    item = write_item(target, [source], "label-transfer")
    return StageResult(inputs, [target, item], {"table": {str(k): v for k, v in lookup.items()}})
