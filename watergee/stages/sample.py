"""sample: training and validation patches from a label raster (or labelled points)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from osgeo import gdal

from watergee.core import layout
from watergee.core.config import SampleSettings, Settings
from watergee.core.errors import MissingBandError, TileInputError
from watergee.core.records import write_json_atomic
from watergee.core.stage import StageResult
from watergee.core.tiles import Tile
from watergee.features import FeatureReader, extract_patches
from watergee.io.labels import check_labels, label_raster_for
from watergee.io.raster import (
    Grid,
    Window,
    band_descriptions,
    band_index,
    grid_of,
    iter_windows,
    on_grid,
    open_raster,
    read_codes,
    read_window,
    transformer,
)
from watergee.io.vector import class_codes, read_points
from watergee.nirsplit import MINIMUM_WATER, darkness_channel, split_darkness
from watergee.sampleset import write_shards
from watergee.sampling import (
    Candidates,
    code_lookup,
    held_out_blocks,
    patch_fits,
    pixel_keys,
    spaced,
)
from watergee.spectral import normalized_difference

log = logging.getLogger(__name__)


def check(settings: Settings) -> None:
    """The labels or points every tile reads, opened once before any tile runs."""
    opts = settings.sample
    if opts.mode == "points":
        if opts.points is None:
            raise TileInputError("sample.points is not set (sample.mode: points)")
        _, _, _, columns = read_points(opts.points, [opts.attribute])  # every geometry
        class_codes(opts.points, columns[opts.attribute], opts.attribute)  # every class
    else:
        check_labels(opts.labels)


def _point_codes(path: Path, attribute: str, grid: Grid) -> dict[tuple[int, int], int]:
    """Labelled points that fall on the tile, as {(row, col): code}."""
    wkt, xs, ys, columns = read_points(path, [attribute])
    values = class_codes(path, columns[attribute], attribute)
    if len(xs) and wkt:
        moved = transformer(wkt, grid.crs_wkt).TransformPoints(np.column_stack([xs, ys]))
        xs, ys = np.array([p[0] for p in moved]), np.array([p[1] for p in moved])
    x0, dx, _, y0, _, dy = grid.transform
    cols, rows = np.floor((xs - x0) / dx).astype(int), np.floor((ys - y0) / dy).astype(int)
    inside = (rows >= 0) & (rows < grid.height) & (cols >= 0) & (cols < grid.width)
    codes: dict[tuple[int, int], int] = {}
    for r, c, v in zip(rows[inside], cols[inside], values[inside], strict=True):
        codes[(int(r), int(c))] = v
    return codes


class _CandidateSource:
    """Label codes of candidate pixels, window by window (-1: not a candidate)."""

    def __init__(self, tile: Tile, opts: SampleSettings, work: Path, grid: Grid) -> None:
        self.grid = grid
        self.labels_ds: gdal.Dataset | None = None
        self.points: dict[tuple[int, int], int] | None = None
        self.seeds: np.ndarray | None = None
        self.description: dict[str, Any] = {"mode": opts.mode}
        self.files: list[Path] = []  # every file read, for the tile's record
        self.origin = str(opts.points if opts.mode == "points" else opts.labels)
        if opts.mode == "points":
            if opts.points is None:
                raise TileInputError("sample.points is not set (mode: points)")
            self.points = _point_codes(opts.points, opts.attribute, grid)
            self.files.append(opts.points)
            self.description.update(points=str(opts.points), on_tile=len(self.points))
            return
        path = label_raster_for(tile, opts.labels)
        self.labels_ds, warped = on_grid(path, grid)
        self.files.append(path)
        self.description.update(path=str(path), warped=warped)
        self.origin = str(path)
        if opts.mode == "superpixel":
            centroids = layout.centroids(work, tile)
            if not centroids.exists():
                raise MissingBandError(
                    f"{centroids}: segments not found (run `watergee superpixel` first)"
                )
            _, _, _, seeds = read_points(centroids, ["seed_row", "seed_col"])
            self.files.append(centroids)
            self.seeds = np.column_stack([seeds["seed_row"], seeds["seed_col"]]).astype(np.int64)

    def codes(self, window: Window) -> np.ndarray:
        if self.points is not None:
            out = np.full((window.height, window.width), -1, np.int64)
            for (r, c), code in self.points.items():
                if (
                    window.row <= r < window.row + window.height
                    and window.col <= c < window.col + window.width
                ):
                    out[r - window.row, c - window.col] = code
            return out
        codes = read_codes(self.labels_ds, window)
        if self.seeds is not None:
            keep = np.zeros_like(codes, bool)
            r, c = self.seeds[:, 0] - window.row, self.seeds[:, 1] - window.col
            inside = (r >= 0) & (r < window.height) & (c >= 0) & (c < window.width)
            keep[r[inside], c[inside]] = True
            codes[~keep] = -1
        return codes


def _count(counter: dict[str, int], classes: np.ndarray) -> None:
    for cls, n in zip(*np.unique(classes, return_counts=True), strict=True):
        counter[str(int(cls))] = counter.get(str(int(cls)), 0) + int(n)


def _water_bands(ds: gdal.Dataset) -> tuple[int, int]:
    try:
        return band_index(ds, "B03"), band_index(ds, "B11")
    except TileInputError:
        raise TileInputError(
            f"{ds.GetDescription()}: the water guard needs bands B03 and B11 (or unset "
            "sample.water_class)"
        ) from None


def _bright_water(
    ds: gdal.Dataset, opts: SampleSettings, rows: np.ndarray, cols: np.ndarray, classes: np.ndarray
) -> tuple[np.ndarray, dict[str, Any] | None]:
    """Water candidates in the bright near-infrared mode of the tile's water candidates.

    Hand-drawn water polygons take in shore, sand bars and overhanging trees; a model trained
    on them learns that land can be water and calls the next scene's dark land water. The NIR
    split of the label-noise correction finds them (see watergee.nirsplit)."""
    bright = np.zeros(len(rows), bool)
    if opts.water_class is None or opts.water_separability is None:
        return bright, None
    water = np.flatnonzero(classes == opts.water_class)
    # The water guard has already required B11, so a darkness channel is always found.
    reader = FeatureReader.open(ds, [darkness_channel(band_descriptions(ds)) + 1], [])
    values = extract_patches(reader, rows[water], cols[water], 1)[:, 0, 0, 0]
    split = split_darkness(values, opts.water_separability, MINIMUM_WATER)
    bright[water] = values > split.limit
    return bright, {"channel": reader.names[0], **split.report()}


def sample(tile: Tile, settings: Settings, out: Path) -> StageResult:
    opts = settings.sample
    work = opts.work or out
    stack_path = layout.require_stack(work, tile)
    ds = open_raster(stack_path)
    grid = grid_of(ds)
    reader = FeatureReader.open(ds, opts.bands, opts.indices)
    bands = list(reader.bands)
    names = band_descriptions(ds)
    guard = _water_bands(ds) if opts.water_class is not None else None
    source = _CandidateSource(tile, opts, work, grid)

    # Patches must be valid wherever a channel reads: LINE looks two pixels beyond the patch.
    reach = opts.patch + 2 * reader.reach
    check = sorted({*reader.source_bands(), *(guard or ())})
    halo = reach
    oversample = 4 if opts.min_distance > 1 else 1
    pool: dict[int, Candidates] = {}
    candidates: dict[str, int] = {}
    dropped: dict[str, dict[str, int]] = {
        "patch": {},
        "water_guard": {},
        "distance": {},
        "water_nir": {},
    }
    label_pixels = label_nodata = 0
    for window in iter_windows(grid.width, grid.height, settings.output.window):
        codes = source.codes(window)
        label_pixels += codes.size
        label_nodata += int((codes < 0).sum()) if source.points is None else 0
        present = np.unique(codes[codes >= 0])
        lookup = code_lookup(present, opts.classes, opts.ignore, opts.unmapped, source.origin)
        if not lookup:
            continue
        data = read_window(ds, window, check, halo=halo, scaled=True)
        fits = patch_fits(~np.isnan(data).any(axis=0), reach)[halo:-halo, halo:-halo]
        wet = None
        if guard is not None:
            green, swir = (data[check.index(b), halo:-halo, halo:-halo] for b in guard)
            wet = normalized_difference(green, swir) > opts.water_guard
        for code, cls in lookup.items():
            where = codes == code
            n = int(where.sum())
            candidates[str(cls)] = candidates.get(str(cls), 0) + n
            ok = where & fits
            _count(dropped["patch"], np.full(n - int(ok.sum()), cls))
            if wet is not None and cls != opts.water_class:
                guarded = ok & wet
                _count(dropped["water_guard"], np.full(int(guarded.sum()), cls))
                ok &= ~wet
            rows, cols = np.nonzero(ok)
            rows, cols = rows + window.row, cols + window.col
            keys = pixel_keys(opts.seed, tile.id, rows, cols, code)
            limit = opts.quota_of(cls) * oversample
            pool.setdefault(cls, Candidates(limit)).offer(
                keys, rows, cols, np.full(len(rows), code)
            )

    # Merge the classes in key order, keep them apart by min_distance, then fill each quota.
    parts = [(*c.ordered(), np.full(len(c.keys), cls)) for cls, c in pool.items()]
    empty = [np.empty(0), *[np.empty(0, np.int64)] * 4]
    keys, rows, cols, codes_all, classes = (
        [np.concatenate(arrays) for arrays in zip(*parts, strict=True)] if parts else empty
    )
    order = np.argsort(keys, kind="stable")
    rows, cols, codes_all, classes = rows[order], cols[order], codes_all[order], classes[order]
    kept = spaced(rows, cols, opts.min_distance)
    _count(dropped["distance"], np.delete(classes, kept))
    rows, cols, codes_all, classes = rows[kept], cols[kept], codes_all[kept], classes[kept]
    bright, water_split = _bright_water(ds, opts, rows, cols, classes)
    _count(dropped["water_nir"], classes[bright])
    rows, cols, codes_all, classes = (a[~bright] for a in (rows, cols, codes_all, classes))
    chosen = np.zeros(len(rows), bool)
    for cls in np.unique(classes):
        chosen[np.flatnonzero(classes == cls)[: opts.quota_of(int(cls))]] = True
    rows, cols, codes_all, classes = rows[chosen], cols[chosen], codes_all[chosen], classes[chosen]

    patches = extract_patches(reader, rows, cols, opts.patch)
    x0, dx, _, y0, _, dy = grid.transform
    arrays = {
        "X": patches,
        "y": classes.astype(np.int16),
        "code": codes_all.astype(np.int64),
        "row": rows.astype(np.int32),
        "col": cols.astype(np.int32),
        "map_x": x0 + (cols + 0.5) * dx,
        "map_y": y0 + (rows + 0.5) * dy,
    }
    if opts.split == "blocks":
        held_out = held_out_blocks(
            opts.seed, tile.id, rows, cols, classes, opts.validation, opts.block
        )
    else:
        held_out = pixel_keys(opts.seed, tile.id, rows, cols, -1) < opts.validation
    folder = layout.sample_dir(out, tile)
    for stale in [*folder.glob("train-*.npz"), *folder.glob("val-*.npz")]:
        stale.unlink()  # shards of an earlier run with other settings
    shards = {
        "train": write_shards(
            folder, "train", {k: v[~held_out] for k, v in arrays.items()}, opts.shard_size
        ),
        "validation": write_shards(
            folder, "val", {k: v[held_out] for k, v in arrays.items()}, opts.shard_size
        ),
    }
    scaling = [
        {"band": names[b - 1], "scale": ds.GetRasterBand(b).GetScale() or 1.0,
         "offset": ds.GetRasterBand(b).GetOffset() or 0.0}
        for b in bands
    ]  # fmt: skip
    train, val = {}, {}
    _count(train, classes[~held_out])
    _count(val, classes[held_out])
    summary = {
        "tile": tile.id,
        "stack": str(stack_path),
        "bands": reader.names,
        "scaling": scaling,
        "patch": opts.patch,
        "train": train,
        "validation": val,
        "candidates": candidates,
        "dropped": dropped,
        "water_split": water_split,
        "labels": {
            **source.description,
            "grid": grid.describe(),
            "nodata_fraction": round(label_nodata / label_pixels, 6) if label_pixels else 0.0,
        },
        "shards": {k: [p.name for p in v] for k, v in shards.items()},
    }
    summary_path = layout.sample_summary(out, tile)
    write_json_atomic(summary_path, summary)
    inputs = [stack_path, *source.files]
    outputs = [*shards["train"], *shards["validation"], summary_path]
    log.info("%s: %d samples (train %s, validation %s)", tile.id, len(rows), train, val)
    return StageResult(inputs, outputs, {"samples": len(rows)})
