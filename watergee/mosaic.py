"""A mosaic of overlapping class maps, decided pixel by pixel on the mosaic's own grid.

Which tile gives a mosaic pixel is decided at that pixel's centre, never by file order: the
tile named after the MGRS square that owns the point (see `watergee.mgrs`); where that tile is
absent or has no data there, the tile with data whose centre is nearest. Because the rule is
evaluated on the target grid, tiles of different UTM zones meet without a gap or an overlap,
and the result does not depend on the order of the inputs.

Everything works window by window: memory is bounded by the window, whatever the mosaic's size.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from osgeo import gdal, osr

from watergee import mgrs
from watergee.core.errors import TileInputError
from watergee.io.raster import (
    Grid,
    Window,
    gdal_reason,
    grid_of,
    open_raster,
    spatial_reference,
    task_thread_initializer,
)


def _transform(source: osr.SpatialReference, target: osr.SpatialReference):
    return osr.CoordinateTransformation(source, target)


@dataclass
class Source:
    """One class map of the mosaic: where it lies in the target CRS, its MGRS square key."""

    path: Path
    ds: gdal.Dataset
    key: str | None
    bounds: tuple[float, float, float, float]  # in the target CRS
    centre: tuple[float, float]  # in the target CRS
    nodata: float


def open_sources(paths: Sequence[Path], names: Sequence[str], crs: str) -> list[Source]:
    """The class maps with their footprints in `crs` (edges densified, so curved footprints
    are bounded) and their MGRS keys where their tile names have one."""
    target = spatial_reference(crs, f"merge.crs {crs}")
    sources = []
    for path, name in zip(paths, names, strict=True):
        if not path.exists():
            raise TileInputError(f"{path}: class map not found (run `watergee classify` first)")
        ds = open_raster(path)
        grid = grid_of(ds)
        if not grid.crs_wkt:
            raise TileInputError(f"{path}: has no CRS")
        west, south, east, north = grid.bounds
        steps = np.linspace(0.0, 1.0, 33)
        ring = np.concatenate([
            np.column_stack([west + (east - west) * steps, np.full(33, south)]),
            np.column_stack([np.full(33, east), south + (north - south) * steps]),
            np.column_stack([west + (east - west) * steps, np.full(33, north)]),
            np.column_stack([np.full(33, west), south + (north - south) * steps]),
        ])  # fmt: skip
        to_target = _transform(spatial_reference(grid.crs_wkt), target)
        moved = np.array(to_target.TransformPoints(ring))[:, :2]
        bounds = (*moved.min(0), *moved.max(0))
        centre_point = to_target.TransformPoint((west + east) / 2, (south + north) / 2)
        try:
            key = mgrs.parse(name).key
        except ValueError:
            key = None
        data_type = ds.GetRasterBand(1).DataType
        if sources and data_type != sources[0].ds.GetRasterBand(1).DataType:
            first = gdal.GetDataTypeName(sources[0].ds.GetRasterBand(1).DataType)
            raise TileInputError(
                f"{path}: pixel type {gdal.GetDataTypeName(data_type)} differs from "
                f"{sources[0].path} ({first}); a mosaic holds one type"
            )
        nodata = ds.GetRasterBand(1).GetNoDataValue()
        sources.append(Source(path, ds, key, (bounds[0], bounds[1], bounds[2], bounds[3]),
                              centre_point[:2], 255 if nodata is None else nodata))  # fmt: skip
    return sources


def target_grid(sources: Sequence[Source], crs: str, resolution: float) -> Grid:
    """A grid in `crs` over every source, its pixel edges on multiples of `resolution`."""
    west = math.floor(min(s.bounds[0] for s in sources) / resolution) * resolution
    south = math.floor(min(s.bounds[1] for s in sources) / resolution) * resolution
    east = math.ceil(max(s.bounds[2] for s in sources) / resolution) * resolution
    north = math.ceil(max(s.bounds[3] for s in sources) / resolution) * resolution
    width, height = round((east - west) / resolution), round((north - south) / resolution)
    wkt = spatial_reference(crs).ExportToWkt()
    return Grid(wkt, (west, resolution, 0.0, north, 0.0, -resolution), width, height)


def _window_bounds(grid: Grid, window: Window) -> tuple[float, float, float, float]:
    x0, dx, _, y0, _, dy = grid.transform
    west, north = x0 + window.col * dx, y0 + window.row * dy
    return west, north + window.height * dy, west + window.width * dx, north


def _interpolated(
    lattice: np.ndarray, lattice_r: np.ndarray, lattice_c: np.ndarray, r: np.ndarray, c: np.ndarray
) -> np.ndarray:
    """Values at pixels (r, c), bilinear between the lattice points around each."""
    k, j = r // CELL, c // CELL
    tr = ((r - lattice_r[k]) / np.maximum(lattice_r[k + 1] - lattice_r[k], 1))[:, None]
    tc = ((c - lattice_c[j]) / np.maximum(lattice_c[j + 1] - lattice_c[j], 1))[:, None]
    top = lattice[k, j] * (1 - tc) + lattice[k, j + 1] * tc
    bottom = lattice[k + 1, j] * (1 - tc) + lattice[k + 1, j + 1] * tc
    return top * (1 - tr) + bottom * tr


def _overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


CELL = 16  # lattice spacing, in pixels, of the owner decision


def _lattice(size: int) -> np.ndarray:
    """Positions every CELL pixels along a side of `size` pixels, the last pixel included."""
    return np.minimum(np.arange(-(-size // CELL) + 1) * CELL, size - 1)


class Mosaicker:
    """Fills windows of the target grid from the sources by the owner rule."""

    def __init__(self, sources: Sequence[Source], grid: Grid) -> None:
        self.sources = list(sources)
        self.grid = grid
        target = spatial_reference(grid.crs_wkt)
        self.to_geographic = _transform(target, spatial_reference("EPSG:4326"))
        self.codes = {i: mgrs.key_code(s.key) for i, s in enumerate(self.sources) if s.key}
        self.to_utm = {
            zone: _transform(target, spatial_reference(f"EPSG:{32600 + zone}"))
            for zone in {code // 1000 for code in self.codes.values()}
        }

    def _zones(self, candidates: list[int]) -> list[int]:
        return sorted({self.codes[i] // 1000 for i in candidates if i in self.codes})

    def _coordinates(self, xs: np.ndarray, ys: np.ndarray, zones: list[int]) -> np.ndarray:
        """(n, 1 + 2 zones): each point's longitude, then its x and y in each zone's UTM."""
        points = np.column_stack([xs, ys])
        columns = [np.array(self.to_geographic.TransformPoints(points))[:, 0]]
        for zone in zones:
            xy = np.array(self.to_utm[zone].TransformPoints(points))
            columns += [xy[:, 0], xy[:, 1]]
        return np.column_stack(columns)

    def _owners_at(self, coords: np.ndarray, candidates: list[int], zones: list[int]):
        """Index of the source that owns each point (`_coordinates`) by its MGRS square; -1
        where none of the candidates is named after that square."""
        owners = np.full(len(coords), -1, np.int32)
        zone_of_point = mgrs.zone_of(coords[:, 0])
        for k, zone in enumerate(zones):
            pick = np.flatnonzero(zone_of_point == zone)
            if not len(pick):
                continue
            codes = mgrs.square_codes(zone, coords[pick, 1 + 2 * k], coords[pick, 2 + 2 * k])
            for i in candidates:
                code = self.codes.get(i)
                if code is not None and code // 1000 == zone:
                    owners[pick[codes == code]] = i
        return owners

    def _owners(self, xs: np.ndarray, ys: np.ndarray, candidates: list[int]) -> np.ndarray:
        zones = self._zones(candidates)
        return self._owners_at(self._coordinates(xs, ys, zones), candidates, zones)

    def _owner_map(self, cols: np.ndarray, rows: np.ndarray, candidates: list[int]) -> np.ndarray:
        """Owners of every pixel: decided on a lattice every CELL pixels, and pixel by pixel
        only in cells whose corners disagree and their neighbours. Owner boundaries are
        straight at this scale and meet at near right angles, so a boundary crossing a cell
        separates its corners, and a corner of two boundaries shows in a neighbouring cell.
        Inside a cell the pixels' coordinates are interpolated between its corners: over a
        few hundred metres the projections are linear to far below a millimetre."""
        h, w = len(rows), len(cols)
        lattice_r, lattice_c = _lattice(h), _lattice(w)
        gx, gy = np.meshgrid(cols[lattice_c], rows[lattice_r])
        zones = self._zones(candidates)
        lattice = self._coordinates(gx.ravel(), gy.ravel(), zones)
        corners = self._owners_at(lattice, candidates, zones).reshape(gx.shape)
        mixed = (corners[:-1, :-1] != corners[1:, :-1]) | (corners[:-1, :-1] != corners[:-1, 1:])
        mixed |= corners[:-1, :-1] != corners[1:, 1:]
        grown = mixed.copy()  # and their neighbours
        grown[1:] |= mixed[:-1]
        grown[:-1] |= mixed[1:]
        grown[:, 1:] |= grown[:, :-1].copy()
        grown[:, :-1] |= grown[:, 1:].copy()
        expand = lambda a: np.repeat(np.repeat(a, CELL, 0), CELL, 1)[:h, :w]  # noqa: E731
        owners = expand(corners[:-1, :-1])
        exact = expand(grown)
        if exact.any():
            r, c = np.nonzero(exact)
            owners[r, c] = self._owners_at(
                _interpolated(lattice.reshape(*gx.shape, -1), lattice_r, lattice_c, r, c),
                candidates,
                zones,
            )
        return owners

    def _warped(self, source: Source, window: Window) -> np.ndarray:
        west, south, east, north = _window_bounds(self.grid, window)
        try:
            ds = gdal.Warp("", source.ds, format="MEM", outputBounds=(west, south, east, north),
                           width=window.width, height=window.height, dstSRS=self.grid.crs_wkt,
                           resampleAlg="near", srcNodata=source.nodata, dstNodata=source.nodata,
                           multithread=True)  # fmt: skip
        except RuntimeError as exc:
            raise TileInputError(f"{source.path}: warping failed ({gdal_reason(exc)})") from None
        return ds.GetRasterBand(1).ReadAsArray()

    def window(self, window: Window, nodata: float, dtype: np.dtype) -> np.ndarray:
        box = _window_bounds(self.grid, window)
        candidates = [i for i, s in enumerate(self.sources) if _overlaps(s.bounds, box)]
        out = np.full((window.height, window.width), nodata, dtype)
        if not candidates:
            return out
        x0, dx, _, y0, _, dy = self.grid.transform
        cols = x0 + (np.arange(window.col, window.col + window.width) + 0.5) * dx
        rows = y0 + (np.arange(window.row, window.row + window.height) + 0.5) * dy
        # Owner boundaries are long, nearly straight lines (100 km squares, zone meridians):
        # one that enters a window separates two of its border points taken every CELL
        # pixels, corners included (a line that cuts off a corner separates the corner). A
        # window whose border points share one owner has it throughout (the owner map's rule).
        h, w = window.height, window.width
        along_r, along_c = _lattice(h), _lattice(w)
        border_r = np.concatenate([np.zeros_like(along_c), np.full_like(along_c, h - 1),
                                   along_r, along_r])  # fmt: skip
        border_c = np.concatenate([along_c, along_c, np.zeros_like(along_r),
                                   np.full_like(along_r, w - 1)])  # fmt: skip
        border = self._owners(cols[border_c], rows[border_r], candidates)
        if (border == border[0]).all():
            owners, met = None, [int(border[0])] if border[0] >= 0 else []
        else:
            owners = self._owner_map(cols, rows, candidates)
            met = np.flatnonzero(np.bincount(owners.ravel() + 1)[1:]).tolist()
        # Owners first; the other tiles are warped only where some pixel is still undecided.
        values: dict[int, np.ndarray] = {}
        valid: dict[int, np.ndarray] = {}

        def load(i: int) -> None:
            values[i] = self._warped(self.sources[i], window)
            valid[i] = values[i] != self.sources[i].nodata

        decided = np.zeros(out.shape, bool)
        for i in met:
            load(i)
            take = valid[i] if owners is None else (owners == i) & valid[i]
            np.copyto(out, values[i], where=take)
            decided |= take
        if decided.all():
            return out
        for i in candidates:
            if i not in values:
                load(i)
        # Unowned or no data at the owner: the nearest centre among tiles with data there,
        # decided over the rows and columns that hold such pixels.
        todo = ~decided & np.logical_or.reduce([valid[i] for i in candidates])
        some_rows, some_cols = np.flatnonzero(todo.any(1)), np.flatnonzero(todo.any(0))
        if not len(some_rows):
            return out
        part_r = slice(some_rows[0], some_rows[-1] + 1)
        part_c = slice(some_cols[0], some_cols[-1] + 1)
        todo, part = todo[part_r, part_c], out[part_r, part_c]
        best = np.full(todo.shape, np.inf)
        for i in candidates:
            cx, cy = self.sources[i].centre
            distance = np.hypot(cols[part_c] - cx, (rows[part_r] - cy)[:, None])
            better = todo & valid[i][part_r, part_c] & (distance < best)
            np.copyto(part, values[i][part_r, part_c], where=better)
            np.copyto(best, distance, where=better)
        return out


def mosaic_windows(
    sources: Sequence[Source],
    grid: Grid,
    windows: Iterable[Window],
    nodata: float,
    dtype: np.dtype,
    threads: int,
) -> Iterator[tuple[Window, np.ndarray]]:
    """The windows filled by `threads` threads side by side and yielded in order, with at most
    2 x `threads` filled or waiting besides the one the caller holds. Each thread reads through
    its own dataset handles and coordinate transformations: neither may be used by two threads
    at once."""
    local = threading.local()

    def fill(window: Window) -> np.ndarray:
        mosaicker = getattr(local, "mosaicker", None)
        if mosaicker is None:
            own = [replace(s, ds=open_raster(s.path)) for s in sources]
            mosaicker = local.mosaicker = Mosaicker(own, grid)
        return mosaicker.window(window, nodata, dtype)

    todo = iter(windows)
    pending: deque[tuple[Window, Future[np.ndarray]]] = deque()
    with ThreadPoolExecutor(threads, initializer=task_thread_initializer()) as pool:
        try:
            while True:
                while len(pending) < 2 * threads and (window := next(todo, None)) is not None:
                    pending.append((window, pool.submit(fill, window)))
                if not pending:
                    return
                window, future = pending.popleft()
                yield window, future.result()
        finally:
            for _, future in pending:
                future.cancel()
