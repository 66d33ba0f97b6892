"""superpixel: SLIC segments of a tile, as a segment-id raster and a GeoPackage of centroids."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from watergee.core import layout
from watergee.core.config import Settings
from watergee.core.stage import StageResult
from watergee.core.tiles import Tile
from watergee.io.raster import (
    BandSpec,
    band_descriptions,
    create_geotiff,
    grid_of,
    iter_windows,
    open_raster,
    overview_sample,
    read_window,
    resolve_band,
)
from watergee.io.vector import write_points
from watergee.segmentation import (
    SegmentStats,
    compact_ids,
    fill_gaps,
    grow,
    place_block,
    segment_block,
    stretch,
)

log = logging.getLogger(__name__)

CENTROID_LAYER = "centroids"


def _field_name(description: str) -> str:
    return "mean_" + re.sub(r"[^0-9A-Za-z]+", "_", description).strip("_").lower()


def superpixel(tile: Tile, settings: Settings, out: Path) -> StageResult:
    opts = settings.superpixel
    source = layout.require_stack(out, tile)
    ds = open_raster(source)
    grid = grid_of(ds)
    width, height = grid.width, grid.height
    bands = [resolve_band(ds, ref) for ref in opts.bands]
    sample = overview_sample(ds, bands)
    low = np.array(
        [np.nanpercentile(b, opts.stretch[0]) if np.isfinite(b).any() else 0 for b in sample]
    )
    high = np.array(
        [np.nanpercentile(b, opts.stretch[1]) if np.isfinite(b).any() else 1 for b in sample]
    )
    margin = opts.margin if opts.margin is not None else 3 * opts.region_size

    labels = np.zeros((height, width), np.uint32)
    valid = np.zeros((height, width), bool)
    next_id = 1
    for core in iter_windows(width, height, opts.block):
        ext = grow(core, margin, width, height)
        data = read_window(ds, ext, bands, scaled=True)
        mask = ~np.isnan(data).any(axis=0)
        valid[ext.slices] |= mask
        if not mask.any():
            continue
        block = segment_block(
            stretch(data, low, high),
            mask,
            opts.region_size,
            opts.compactness,
            opts.lab,
            opts.sigma,
            opts.max_iter,
        )
        next_id = place_block(labels, block, ext, core, next_id)
    for core in iter_windows(width, height, opts.block):
        next_id = fill_gaps(labels, valid, grow(core, margin, width, height), core, next_id)
    count = compact_ids(labels, next_id)
    del valid

    names = band_descriptions(ds)
    stats = SegmentStats(count, len(names))
    for window in iter_windows(width, height, settings.output.window):
        stats.add(labels[window.slices], window, read_window(ds, window, scaled=True))
    for window in iter_windows(width, height, settings.output.window):
        stats.add_seeds(labels[window.slices], window, width)

    raster_path = layout.segments(out, tile)
    metadata = {
        "TILE": tile.id,
        "WATERGEE_STAGE": "superpixel",
        "SEGMENTS": str(count),
        "METHOD": f"SLIC region_size={opts.region_size} compactness={opts.compactness}",
        "SOURCE": source.name,
    }
    with create_geotiff(
        raster_path,
        grid,
        [BandSpec("segment_id")],
        np.uint32,
        0,
        settings.output,
        metadata,
        overviews="NEAREST",
        product=False,
    ) as writer:
        for window in iter_windows(width, height, settings.output.window):
            writer.write(window, labels[window.slices])

    del labels  # the largest array: gone before the centroid layer is built
    ids = np.arange(1, count + 1)
    rows, cols = (c[1:] for c in stats.centroids)
    seed_rows, seed_cols = (s[1:] for s in stats.seeds(width))
    x0, dx, _, y0, _, dy = grid.transform
    fields: dict[str, np.ndarray] = {
        "segment_id": ids.astype(np.int64),
        "pixels": stats.pixels[1:],
        "row": rows,
        "col": cols,
        "seed_row": seed_rows,
        "seed_col": seed_cols,
    }
    for name, means in zip(names, stats.means[:, 1:], strict=True):
        fields[_field_name(name)] = means
    gpkg_path = layout.centroids(out, tile)
    write_points(
        gpkg_path,
        CENTROID_LAYER,
        grid.crs_wkt,
        x0 + (cols + 0.5) * dx,
        y0 + (rows + 0.5) * dy,
        fields,
    )
    log.info("%s: %d segments", tile.id, count)
    return StageResult([source], [raster_path, gpkg_path], {"segments": count})
