"""Reference data on a class map's grid, and a class map's pixels counted and sampled.

How a reference meets the map (the documented rule):
- a raster is warped onto the map grid with nearest neighbour, so codes are never blended;
- polygons are burnt with their class attribute: a pixel takes a polygon's class when its
  centre lies inside (GDAL's rasterisation rule; `all_touched` burns every pixel touched);
- a point takes the class of the map pixel it falls in.
Pixels where either side has no data, and points outside the map or on its no data, are left
out and counted. Everything is read window by window, so a national mosaic never sits in memory.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from osgeo import gdal, ogr

from watergee.core.errors import TileInputError
from watergee.io.raster import (
    Grid,
    Window,
    iter_windows,
    on_grid,
    open_raster,
    read_codes,
    transformer,
)
from watergee.io.vector import PolygonMask, class_codes, read_points

_VECTOR_SUFFIXES = {".gpkg", ".geojson", ".json", ".shp", ".fgb", ".kml", ".gml", ".sqlite"}


def _grid_window(grid: Grid, window: Window) -> tuple[tuple[float, ...], int, int]:
    x0, dx, rx, y0, ry, dy = grid.transform
    transform = (x0 + window.col * dx, dx, rx, y0 + window.row * dy, ry, dy)
    return transform, window.width, window.height


WindowCounts = list[tuple[Window, dict[int, int]]]


def class_counts(ds: gdal.Dataset, window_size: int) -> WindowCounts:
    """Pixels of each class of band 1 in each window, no data left out."""
    found = []
    for window in iter_windows(ds.RasterXSize, ds.RasterYSize, window_size):
        codes = read_codes(ds, window)
        values, counts = np.unique(codes[codes >= 0], return_counts=True)
        found.append((window, dict(zip(values.tolist(), counts.tolist(), strict=True))))
    return found


def total_counts(counts: WindowCounts) -> dict[int, int]:
    totals: Counter[int] = Counter()
    for _, present in counts:
        totals.update(present)
    return dict(sorted(totals.items()))


def _pairs(map_codes: np.ndarray, ref_codes: np.ndarray, totals: Counter) -> int:
    """Adds the (map, reference) pairs where both have data; returns the pixels left out."""
    both = (map_codes >= 0) & (ref_codes >= 0)
    keys = (map_codes[both] << 32) | ref_codes[both]
    values, counts = np.unique(keys, return_counts=True)
    for key, n in zip(values.tolist(), counts.tolist(), strict=True):
        totals[(key >> 32, key & 0xFFFFFFFF)] += n
    return int((ref_codes >= 0).sum() - both.sum())


@dataclass
class Comparison:
    """What a map and its reference share: counts of (map, reference) class pairs, and the
    reference units left out because the map has no data there (or they have no class)."""

    pairs: Counter
    left_out: int
    unlabelled: int = 0
    map_codes: np.ndarray | None = None  # under each point (-1: none), for the figure


class RasterReference:
    """A reference raster: every pixel with data is a reference unit."""

    kind = "raster"

    def __init__(self, path: Path) -> None:
        self.path = path
        open_raster(path)  # fails early, naming the file

    def codes(self, grid: Grid, window: Window | None = None) -> np.ndarray:
        ds, _ = on_grid(self.path, grid)
        return read_codes(ds, window or Window(0, 0, grid.width, grid.height))

    def compare(self, ds: gdal.Dataset, grid: Grid, window_size: int) -> Comparison:
        reference, _ = on_grid(self.path, grid)
        totals: Counter = Counter()
        left_out = 0
        for window in iter_windows(grid.width, grid.height, window_size):
            left_out += _pairs(read_codes(ds, window), read_codes(reference, window), totals)
        return Comparison(totals, left_out)


class PolygonReference:
    """Reference polygons with a class attribute, burnt onto the map grid window by window;
    windows outside the polygons' envelope are never read."""

    kind = "polygons"

    def __init__(self, path: Path, field: str, all_touched: bool) -> None:
        self.path = path
        self.all_touched = all_touched
        self.polygons = PolygonMask(path, value=field)

    def codes(self, grid: Grid, window: Window | None = None) -> np.ndarray:
        window = window or Window(0, 0, grid.width, grid.height)
        transform, width, height = _grid_window(grid, window)
        return self.polygons.codes(grid.crs_wkt, transform, width, height, self.all_touched)

    def compare(self, ds: gdal.Dataset, grid: Grid, window_size: int) -> Comparison:
        west, south, east, north = self.polygons.envelope(grid.crs_wkt)
        totals: Counter = Counter()
        left_out = 0
        for window in iter_windows(grid.width, grid.height, window_size):
            transform, width, height = _grid_window(grid, window)
            x0, y0 = transform[0], transform[3]
            x1, y1 = x0 + width * transform[1], y0 + height * transform[5]
            if (
                min(x0, x1) > east
                or max(x0, x1) < west
                or min(y0, y1) > north
                or max(y0, y1) < south
            ):
                continue
            left_out += _pairs(read_codes(ds, window), self.codes(grid, window), totals)
        return Comparison(totals, left_out)


class PointReference:
    """Reference points (a sample) with a class attribute; a point without a class (not yet
    labelled) is counted and left out."""

    kind = "points"

    def __init__(self, path: Path, field: str) -> None:
        self.path = path
        self.crs_wkt, self.xs, self.ys, columns = read_points(path, [field])
        if len(self.xs) == 0:
            raise TileInputError(f"{path}: no points")
        raw = columns[field]
        labelled = np.array([value is not None for value in raw.tolist()], bool)
        self.unlabelled = int((~labelled).sum())
        self.xs, self.ys = self.xs[labelled], self.ys[labelled]
        self.values = class_codes(path, raw[labelled], field, np.flatnonzero(labelled) + 1)

    def pixels(self, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) of each point on `grid`; outside the grid: -1."""
        xs, ys = self.xs, self.ys
        if self.crs_wkt and grid.crs_wkt and len(xs):
            transform = transformer(self.crs_wkt, grid.crs_wkt)
            points = np.array(transform.TransformPoints(np.column_stack([xs, ys]).tolist()))
            xs, ys = points[:, 0], points[:, 1]
        x0, dx, _, y0, _, dy = grid.transform
        cols = np.floor((xs - x0) / dx).astype(np.int64)
        rows = np.floor((ys - y0) / dy).astype(np.int64)
        outside = (cols < 0) | (rows < 0) | (cols >= grid.width) | (rows >= grid.height)
        cols[outside], rows[outside] = -1, -1
        return rows, cols

    def map_codes(self, ds: gdal.Dataset, grid: Grid, window_size: int) -> np.ndarray:
        """The map class under each point (-1: outside or no data), each window read once."""
        rows, cols = self.pixels(grid)
        found = np.full(len(rows), -1, np.int64)
        inside = np.flatnonzero(rows >= 0)
        blocks = (rows[inside] // window_size) * (grid.width // window_size + 1) + (
            cols[inside] // window_size
        )
        for block in np.unique(blocks):
            members = inside[blocks == block]
            row0 = int(rows[members[0]] // window_size) * window_size
            col0 = int(cols[members[0]] // window_size) * window_size
            window = Window(col0, row0, min(window_size, grid.width - col0),
                            min(window_size, grid.height - row0))  # fmt: skip
            codes = read_codes(ds, window)
            found[members] = codes[rows[members] - row0, cols[members] - col0]
        return found

    def compare(self, ds: gdal.Dataset, grid: Grid, window_size: int) -> Comparison:
        found = self.map_codes(ds, grid, window_size)
        totals: Counter = Counter()
        for m, r in zip(found.tolist(), self.values.tolist(), strict=True):
            if m >= 0:
                totals[(m, r)] += 1
        return Comparison(totals, int((found < 0).sum()), self.unlabelled, found)


Reference = RasterReference | PolygonReference | PointReference


def open_reference(path: Path, field: str, all_touched: bool) -> Reference:
    """A raster, or a vector file of points or polygons, by what GDAL finds in it."""
    if not path.exists():
        raise TileInputError(f"{path}: reference not found")
    if path.suffix.lower() not in _VECTOR_SUFFIXES and _is_raster(path):
        return RasterReference(path)
    try:
        source = ogr.Open(str(path))
        layer = source.GetLayer(0)
        geometry = ogr.GT_Flatten(layer.GetGeomType())
    except (RuntimeError, AttributeError) as exc:
        raise TileInputError(f"{path}: neither a raster nor a vector file ({exc})") from None
    if geometry in (ogr.wkbPoint, ogr.wkbMultiPoint):
        return PointReference(path, field)
    if geometry in (ogr.wkbPolygon, ogr.wkbMultiPolygon, ogr.wkbUnknown):
        return PolygonReference(path, field, all_touched)
    raise TileInputError(
        f"{path}: reference must be points or polygons, not {ogr.GeometryTypeToName(geometry)}"
    )


def _is_raster(path: Path) -> bool:
    try:
        return gdal.OpenEx(str(path), gdal.OF_RASTER) is not None
    except RuntimeError:
        return False


def stratified_sample(
    ds: gdal.Dataset, counts: WindowCounts, allocation: dict[int, int], seed: int
) -> Iterator[tuple[int, int, int]]:
    """(row, col, class) of a stratified random sample: `allocation[c]` pixels of class c drawn
    uniformly without replacement. With the per-window counts (`class_counts`, a first pass)
    a second pass picks the drawn ranks; memory follows the sample, not the map."""
    rng = np.random.default_rng(seed)
    ranks: dict[int, np.ndarray] = {}
    for code in sorted(allocation):
        population = sum(present.get(code, 0) for _, present in counts)
        ranks[code] = np.sort(rng.choice(population, allocation[code], replace=False))
    seen = dict.fromkeys(allocation, 0)
    for window, present in counts:
        wanted = {}
        for code in allocation:
            n = present.get(code, 0)
            lo, hi = np.searchsorted(ranks[code], [seen[code], seen[code] + n])
            if hi > lo:
                wanted[code] = ranks[code][lo:hi] - seen[code]
            seen[code] += n
        if not wanted:
            continue
        codes = read_codes(ds, window)
        for code, picks in wanted.items():
            flat = np.flatnonzero(codes == code)[picks]
            for row, col in zip(*np.divmod(flat, window.width), strict=True):
                yield window.row + int(row), window.col + int(col), code
