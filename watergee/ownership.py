"""Which pixels of a tile it alone owns, so that neighbouring tiles contribute every pixel of a
mosaic exactly once: by its MGRS square (see `watergee.mgrs`), by a footprint polygon, or by a
mask raster; and, on top, which pixels lie inside a boundary (area of interest).

Every region answers two questions about a pixel grid: its bounds there (to crop to), and, for a
window, which pixel centres lie inside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
from osgeo import osr

from watergee import mgrs
from watergee.core.config import ClipSettings
from watergee.core.errors import GridMismatchError, TileInputError
from watergee.io.raster import Grid, Window, cached_transformer, on_grid, read_codes
from watergee.io.vector import PolygonMask

Bounds = tuple[float, float, float, float]


class Region(Protocol):
    def bounds(self, grid: Grid) -> Bounds | None:
        """(west, south, east, north) in the grid's CRS, or None: not known cheaply."""

    def inside(self, grid: Grid, window: Window) -> np.ndarray:
        """True where a pixel centre of `window` lies in the region."""


def centres(grid: Grid, window: Window) -> tuple[np.ndarray, np.ndarray]:
    """Map coordinates of the pixel centres of a window: x per column, y per row."""
    x0, dx, _, y0, _, dy = grid.transform
    xs = x0 + (np.arange(window.col, window.col + window.width) + 0.5) * dx
    ys = y0 + (np.arange(window.row, window.row + window.height) + 0.5) * dy
    return xs, ys


@lru_cache(maxsize=32)
def _epsg(crs_wkt: str) -> int | None:
    srs = osr.SpatialReference()
    srs.ImportFromWkt(crs_wkt)
    srs.AutoIdentifyEPSG()
    code = srs.GetAuthorityCode(None)
    return int(code) if code else None


@dataclass(frozen=True)
class SquareRegion:
    """The 100 km MGRS square a tile is named after, within its UTM zone."""

    square: mgrs.GridSquare
    origin: str  # the raster, for messages

    def _check(self, grid: Grid) -> None:
        if _epsg(grid.crs_wkt) != self.square.epsg:
            raise GridMismatchError(
                f"{self.origin}: tile T{self.square.name} is in EPSG:{self.square.epsg}, the "
                f"raster in {grid.crs_name()}; an overlap clip needs the tile's own UTM grid"
            )

    def bounds(self, grid: Grid) -> Bounds:
        self._check(grid)
        return self.square.bounds

    def inside(self, grid: Grid, window: Window) -> np.ndarray:
        self._check(grid)
        xs, ys = centres(grid, window)
        west, south, east, north = self.square.bounds
        cols = (xs >= west) & (xs < east)
        rows = (ys >= south) & (ys < north)
        out = rows[:, None] & cols[None, :]
        if out.any() and not self._wholly_in_zone(xs[cols], ys[rows]):
            # Along a row longitude grows with easting, so the zone's pixels are one run of
            # columns: its two ends are found by bisection, a few points per row.
            west_edge = mgrs.central_meridian(self.square.zone) - 3.0
            first = self._columns_west_of(xs, ys, west_edge)
            stop = self._columns_west_of(xs, ys, west_edge + 6.0)
            index = np.arange(len(xs))[None, :]
            out &= (index >= first[:, None]) & (index < stop[:, None])
        return out

    def _columns_west_of(self, xs: np.ndarray, ys: np.ndarray, lon: float) -> np.ndarray:
        """For each row (ys), how many of the ascending pixel centres xs lie west of `lon`."""
        lo = np.zeros(len(ys), np.int64)
        hi = np.full(len(ys), len(xs), np.int64)
        while (lo < hi).any():
            mid = (lo + hi) // 2
            probe = np.minimum(mid, len(xs) - 1)
            west = self._longitudes(xs[probe], ys) < lon
            open_ = lo < hi
            lo = np.where(open_ & west, mid + 1, lo)
            hi = np.where(open_ & ~west, mid, hi)
        return lo

    def _longitudes(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        to_geographic = _from_utm(self.square.epsg)
        return np.array(to_geographic.TransformPoints(np.column_stack([xs, ys])))[:, 0]

    def _wholly_in_zone(self, xs: np.ndarray, ys: np.ndarray) -> bool:
        """Zone edges are meridians, monotone in UTM: corners inside means all inside."""
        corners = np.array([[xs.min(), ys.min()], [xs.min(), ys.max()],
                            [xs.max(), ys.min()], [xs.max(), ys.max()]])  # fmt: skip
        lon = self._longitudes(corners[:, 0], corners[:, 1])
        return bool((mgrs.zone_of(lon) == self.square.zone).all())


def _from_utm(epsg: int) -> osr.CoordinateTransformation:
    return cached_transformer(f"EPSG:{epsg}", "EPSG:4326")


@dataclass(frozen=True)
class PolygonRegion:
    """Polygons of a vector file: a tile's footprint, or a boundary."""

    polygons: PolygonMask

    def bounds(self, grid: Grid) -> Bounds:
        return self.polygons.envelope(grid.crs_wkt)

    def inside(self, grid: Grid, window: Window) -> np.ndarray:
        x0, dx, _, y0, _, dy = grid.transform
        transform = (x0 + window.col * dx, dx, 0.0, y0 + window.row * dy, 0.0, dy)
        return self.polygons.burn(grid.crs_wkt, transform, window.width, window.height)


@dataclass(frozen=True)
class MaskRegion:
    """Non-zero pixels of a mask raster (on any grid: nearest neighbour)."""

    path: Path
    _on_grid: dict = field(default_factory=dict, compare=False, repr=False)

    def bounds(self, grid: Grid) -> None:
        return None

    def inside(self, grid: Grid, window: Window) -> np.ndarray:
        if grid not in self._on_grid:  # warped (or opened) once per grid, not per window
            self._on_grid[grid] = on_grid(self.path, grid)[0]
        return read_codes(self._on_grid[grid], window) > 0


def require_clip_inputs(opts: ClipSettings) -> None:
    """The clip settings name what the rule needs, and something to clip by."""
    if opts.rule == "footprints" and opts.footprints is None:
        raise TileInputError("clip.footprints is not set (clip.rule: footprints)")
    if opts.rule == "mask" and opts.mask is None:
        raise TileInputError("clip.mask is not set (clip.rule: mask)")
    if opts.rule == "none" and opts.aoi is None:
        raise TileInputError("nothing to clip by: clip.rule is none and no clip.aoi is given")


def owned_regions(tile_id: str, opts: ClipSettings, origin: Path) -> list[Region]:
    """The regions a tile's pixels must lie in: the part it owns, and the boundary."""
    require_clip_inputs(opts)
    regions: list[Region] = []
    if opts.rule == "mgrs":
        try:
            regions.append(SquareRegion(mgrs.parse(tile_id), str(origin)))
        except ValueError as exc:
            raise TileInputError(
                f"{origin}: {exc}; use clip.rule footprints or mask for other tiles"
            ) from None
    elif opts.rule == "footprints":
        regions.append(PolygonRegion(PolygonMask(opts.footprints, opts.footprint_field, tile_id)))
    elif opts.rule == "mask":
        regions.append(MaskRegion(opts.mask))
    if opts.aoi is not None:
        regions.append(PolygonRegion(PolygonMask(opts.aoi)))
    return regions
