"""MGRS facts for Sentinel-2 tiles: which 100 km grid square a tile is named after, where that
square lies in its UTM zone, and which tile owns a point on the ground.

A Sentinel-2 tile (e.g. T33UUU: UTM zone 33, latitude band U, 100 km square UU) is a 109.8 km
square whose upper-left corner lies 40 m west and 40 m north of its square's upper-left corner,
so it overlaps its neighbours by 9.8 km. The owner rule that gives every point on the ground to
exactly one tile: a point belongs to the UTM zone whose central meridian is nearest (the zone it
lies in), and inside that zone to the tile named after the 100 km square that contains it. Squares
tile a zone without gaps, and their edges fall on pixel edges of the 10, 20 and 60 m grids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from osgeo import osr

from watergee.io.raster import cached_transformer

osr.UseExceptions()

COLUMN_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # 24: no I, O; eight per zone set
ROW_LETTERS = "ABCDEFGHJKLMNPQRSTUV"  # 20: no I, O; the cycle repeats every 2000 km
BAND_LETTERS = "CDEFGHJKLMNPQRSTUVWX"  # 8 degree bands from 80 S (X: 72-84 N)
SQUARE = 100_000.0
#: A tile's upper-left corner lies this far west and north of its square's corner.
TILE_OFFSET = 40.0
TILE_SIZE = 109_800.0
_NAME = re.compile(
    r"T?(?P<zone>\d{2})(?P<band>[C-HJ-NP-X])(?P<col>[A-HJ-NP-Z])(?P<row>[A-HJ-NP-V])"
)


@dataclass(frozen=True)
class GridSquare:
    """One MGRS 100 km square: its zone, latitude band and letters, and its bounds in the
    zone's UTM coordinates (metres)."""

    zone: int
    band: str
    column: str
    row: str
    west: float
    south: float

    @property
    def name(self) -> str:
        return f"{self.zone:02d}{self.band}{self.column}{self.row}"

    @property
    def key(self) -> str:
        """Zone and square letters, e.g. '33UU': what the owner rule compares."""
        return f"{self.zone:02d}{self.column}{self.row}"

    @property
    def north(self) -> bool:
        return self.band >= "N"

    @property
    def epsg(self) -> int:
        return (32600 if self.north else 32700) + self.zone

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in UTM metres."""
        return self.west, self.south, self.west + SQUARE, self.south + SQUARE

    @property
    def tile_bounds(self) -> tuple[float, float, float, float]:
        """The bounds of the Sentinel-2 tile named after this square."""
        left, top = self.west - TILE_OFFSET, self.south + SQUARE + TILE_OFFSET
        return left, top - TILE_SIZE, left + TILE_SIZE, top


def central_meridian(zone: int) -> float:
    return zone * 6.0 - 183.0


def band_latitudes(band: str) -> tuple[float, float]:
    south = -80.0 + 8.0 * BAND_LETTERS.index(band)
    return south, (84.0 if band == "X" else south + 8.0)


def _column_letters(zone: int) -> str:
    start = 8 * ((zone - 1) % 3)
    return COLUMN_LETTERS[start : start + 8]


def _row_offset(zone: int) -> int:
    return 0 if zone % 2 else 5  # even zones start their row letters at F


def _to_utm(zone: int, north: bool) -> osr.CoordinateTransformation:
    return cached_transformer("EPSG:4326", f"EPSG:{(32600 if north else 32700) + zone}")


def parse(name: str) -> GridSquare:
    """The grid square a tile id names (T33UUU, T33UUU_20170216T102101, 33UUU)."""
    match = _NAME.search(name)
    if match is None:
        raise ValueError(f"{name}: not an MGRS tile name (like T33UUU)")
    zone, band = int(match["zone"]), match["band"]
    column, row = match["col"], match["row"]
    if not 1 <= zone <= 60 or column not in _column_letters(zone):
        raise ValueError(f"{name}: column letter {column} does not exist in zone {zone}")
    west = (_column_letters(zone).index(column) + 1) * SQUARE
    cycle = (ROW_LETTERS.index(row) - _row_offset(zone)) % 20 * SQUARE
    # The 2000 km cycle that puts the square in its latitude band: nearest the band's middle.
    lat = sum(band_latitudes(band)) / 2
    _, middle, _ = _to_utm(zone, band >= "N").TransformPoint(central_meridian(zone), lat)
    k = round((middle - cycle - SQUARE / 2) / 2_000_000.0)
    return GridSquare(zone, band, column, row, west, cycle + k * 2_000_000.0)


def zone_of(lon: np.ndarray) -> np.ndarray:
    """The UTM zone whose central meridian is nearest each longitude (no Norway exceptions)."""
    return (np.floor((np.asarray(lon, float) + 180.0) / 6.0).astype(int) % 60) + 1


def _code(zone: int, column: int | np.ndarray, row: int | np.ndarray) -> int | np.ndarray:
    return zone * 1000 + column * 20 + row


def key_code(key: str) -> int:
    """A square key ('33UU', `GridSquare.key`) as a number: zone x 1000 + the letters' places."""
    zone = int(key[:2])
    return _code(zone, _column_letters(zone).index(key[2]), ROW_LETTERS.index(key[3]))


def square_codes(zone: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The key, as a number (`key_code`), of the square of `zone` holding each point
    (x, y) in that zone's northern UTM coordinates. Row letters repeat every 2000 km, so the
    southern zones' false northing (10,000 km) changes none of them."""
    column = np.clip(np.floor(np.asarray(x) / SQUARE).astype(int) - 1, 0, 7)
    row = (np.floor(np.asarray(y) / SQUARE).astype(int) + _row_offset(zone)) % 20
    return _code(zone, column, row)
