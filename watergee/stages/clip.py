"""clip: each class map cut to the part its tile alone owns (and to a boundary), so that
neighbouring tiles give every pixel of a mosaic exactly once."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from watergee.core import layout
from watergee.core.config import Settings
from watergee.core.errors import TileInputError
from watergee.core.stage import StageResult
from watergee.core.tiles import Tile
from watergee.io.raster import (
    ClassStyle,
    Grid,
    Window,
    create_geotiff,
    grid_of,
    iter_windows,
    open_raster,
    read_band,
)
from watergee.io.stac import write_item
from watergee.io.vector import open_layer, require_field
from watergee.ownership import Bounds, owned_regions, require_clip_inputs

log = logging.getLogger(__name__)


def crop_window(grid: Grid, bounds: list[Bounds]) -> Window | None:
    """The window of `grid` covering the intersection of `bounds`, snapped outwards to whole
    pixels; None when it is empty."""
    x0, dx, _, y0, _, dy = grid.transform
    west, south, east, north = grid.bounds
    for b in bounds:
        west, south, east, north = (
            max(west, b[0]),
            max(south, b[1]),
            min(east, b[2]),
            min(north, b[3]),
        )
    if east <= west or north <= south:
        return None
    col0 = max(0, math.floor((west - x0) / dx + 1e-9))
    col1 = min(grid.width, math.ceil((east - x0) / dx - 1e-9))
    row0 = max(0, math.floor((north - y0) / dy + 1e-9))
    row1 = min(grid.height, math.ceil((south - y0) / dy - 1e-9))
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


def sub_grid(grid: Grid, window: Window) -> Grid:
    x0, dx, rx, y0, ry, dy = grid.transform
    transform = (x0 + window.col * dx, dx, rx, y0 + window.row * dy, ry, dy)
    return Grid(grid.crs_wkt, transform, window.width, window.height)


def check(settings: Settings) -> None:
    """The boundary, footprints and mask every tile reads, opened before any tile runs."""
    opts = settings.clip
    require_clip_inputs(opts)
    if opts.aoi is not None:
        open_layer(opts.aoi)
    if opts.rule == "footprints":
        _source, layer = open_layer(opts.footprints)
        require_field(opts.footprints, layer, opts.footprint_field)
    if opts.rule == "mask":
        open_raster(opts.mask)


def clip(tile: Tile, settings: Settings, out: Path) -> StageResult:
    work = settings.product.work or out
    source = layout.class_map(work, tile, settings.product.mode, settings.product.input)
    if not source.exists():
        raise TileInputError(f"{source}: class map not found (run `watergee classify` first)")
    ds = open_raster(source)
    grid = grid_of(ds)
    style = ClassStyle.of(ds)
    nodata = style.nodata
    if nodata is None:
        if style.dtype != np.uint8:
            raise TileInputError(f"{source}: has no nodata value to mark clipped pixels")
        nodata = 255
    regions = owned_regions(tile.id, settings.clip, source)
    crop = crop_window(grid, [b for r in regions if (b := r.bounds(grid)) is not None])
    if crop is None:
        raise TileInputError(f"{source}: tile {tile.id} owns no part of this raster")
    target_grid = sub_grid(grid, crop)
    target = layout.product(out, tile, "clipped")
    metadata = {**style.metadata, "TILE": tile.id, "WATERGEE_STAGE": "clip",
                "CLIP_RULE": settings.clip.rule, "SOURCE": source.name}  # fmt: skip
    kept = 0
    colours = style.colours or None
    # A tile cut to what it owns is a step towards a mosaic; a raster cut to a boundary alone
    # is a product (overviews: see output.overviews).
    product = settings.clip.rule == "none"
    with create_geotiff(target, target_grid, [style.band], style.dtype, nodata, settings.output,
                        metadata, colours, overviews=True, product=product) as writer:  # fmt: skip
        for w in iter_windows(target_grid.width, target_grid.height, settings.output.window):
            src = Window(w.col + crop.col, w.row + crop.row, w.width, w.height)
            data = read_band(ds, 1, src.col, src.row, src.width, src.height)
            inside = np.ones(data.shape, bool)
            for region in regions:
                inside &= region.inside(grid, src)
            kept += int((inside & (data != nodata)).sum())
            writer.write(w, np.where(inside, data, nodata).astype(style.dtype))
    opts = settings.clip
    used = {"footprints": opts.footprints, "mask": opts.mask}.get(opts.rule)
    inputs = [source, *(p for p in (used, opts.aoi) if p is not None)]
    log.info(
        "%s: %d of %d px kept (%s)", tile.id, kept, grid.width * grid.height, settings.clip.rule
    )
    item = write_item(target, [source], "clip")
    return StageResult(
        inputs,
        [target, item],
        {"pixels": kept, "crop": [crop.col, crop.row, crop.width, crop.height]},
    )
