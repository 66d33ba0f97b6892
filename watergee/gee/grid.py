"""The global grid of square cells in longitude/latitude that water_gee downloads by.

A cell's id is its row (counted south from 90 N) and column (counted east from 180 W) in one
global lattice of `cell` degrees, so the same cell has the same id whatever area asked for it:
a bigger area keeps the ids of a smaller one inside it. Only cells whose interior meets the
area are kept (a cell that merely touches the boundary is not). The search descends a quadtree
of blocks of cells, so a country's boundary is tested against a few thousand blocks rather
than every cell of its bounding box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from osgeo import ogr, osr

from watergee.core.atomic import atomic_path
from watergee.core.errors import OutputError, TileInputError
from watergee.io.raster import spatial_reference
from watergee.io.vector import open_layer

ogr.UseExceptions()

WGS84 = "EPSG:4326"
LAYER = "cells"


@dataclass(frozen=True)
class Cell:
    row: int
    col: int
    cell: float

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in degrees, clipped to the globe."""
        west = -180.0 + self.col * self.cell
        north = 90.0 - self.row * self.cell
        return (west, max(north - self.cell, -90.0), min(west + self.cell, 180.0), north)

    def id(self, digits: int) -> str:
        return f"r{self.row:0{digits}d}c{self.col:0{digits}d}"


def id_digits(cell: float) -> int:
    """Digits of the row and column numbers: enough for the whole globe at this cell size."""
    return len(str(math.ceil(360.0 / cell) - 1))


def _box(west: float, south: float, east: float, north: float) -> ogr.Geometry:
    ring = ogr.Geometry(ogr.wkbLinearRing)
    for x, y in ((west, south), (east, south), (east, north), (west, north), (west, south)):
        ring.AddPoint_2D(x, y)
    polygon = ogr.Geometry(ogr.wkbPolygon)
    polygon.AddGeometry(ring)
    return polygon


def parse_bbox(text: str) -> ogr.Geometry | None:
    """`west,south,east,north` in degrees as a polygon; None when `text` is not four numbers."""
    parts = text.split(",")
    if len(parts) != 4:
        looks_numeric = len(parts) > 1 and all(
            p.strip().lstrip("+-").replace(".", "", 1).isdigit() for p in parts
        )
        if looks_numeric:
            raise TileInputError(
                f"{text}: a bounding box needs four numbers west,south,east,north in degrees"
            )
        return None
    try:
        west, south, east, north = (float(p) for p in parts)
    except ValueError:
        return None
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise TileInputError(f"{text}: not a bounding box west,south,east,north in degrees")
    return _box(west, south, east, north)


def read_area(path: Path, where: str | None = None) -> ogr.Geometry:
    """The union of a vector file's features (those `where` selects), in WGS84 degrees."""
    source, layer = open_layer(path)
    if where:
        try:
            layer.SetAttributeFilter(where)
        except RuntimeError as exc:
            raise TileInputError(f"{path}: bad attribute filter {where!r} ({exc})") from None
    srs = layer.GetSpatialRef()
    if srs is None:
        raise TileInputError(f"{path}: no coordinate reference system")
    srs = srs.Clone()
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    transform = osr.CoordinateTransformation(srs, spatial_reference(WGS84))
    union = ogr.Geometry(ogr.wkbMultiPolygon)
    count = 0
    for feature in layer:
        geometry = feature.GetGeometryRef()
        if geometry is None:
            continue
        geometry = geometry.Clone()
        geometry.Transform(transform)
        union = union.Union(geometry)
        count += 1
    del source
    if count == 0:
        selected = f" matching {where!r}" if where else ""
        raise TileInputError(f"{path}: no features{selected}")
    return union


def cells_over(area: ogr.Geometry, cell: float) -> list[Cell]:
    """The cells whose interior meets `area` (WGS84 degrees), in row then column order."""
    if not cell > 0 or cell > 90:
        raise TileInputError(f"cell size {cell} deg: must be > 0 and <= 90")
    west, east, south, north = area.GetEnvelope()
    last_row, last_col = math.ceil(180.0 / cell) - 1, math.ceil(360.0 / cell) - 1
    top, bottom = int((90.0 - north) // cell), min(int((90.0 - south) // cell), last_row)
    left, right = int((west + 180.0) // cell), min(int((east + 180.0) // cell), last_col)
    #: An overlap smaller than this (square degrees) is rounding, not area: a cell whose edge
    #: lies on the boundary, computed from a lattice line that floats cannot hit exactly.
    tolerance = 1e-9 * cell * cell
    polygonal = area.GetDimension() == 2
    found: list[Cell] = []

    def meets(box: ogr.Geometry) -> bool:
        if not area.Intersects(box):
            return False
        if not polygonal:
            return not area.Touches(box)
        return area.Intersection(box).GetArea() > tolerance

    def visit(r0: int, r1: int, c0: int, c1: int) -> None:  # inclusive ranges
        corner_nw, corner_se = Cell(r0, c0, cell).bounds, Cell(r1, c1, cell).bounds
        box = _box(corner_nw[0], corner_se[1], corner_se[2], corner_nw[3])
        if not meets(box):
            return
        if (r0 == r1 and c0 == c1) or area.Contains(box):
            found.extend(Cell(r, c, cell) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1))
            return
        rm, cm = (r0 + r1) // 2, (c0 + c1) // 2
        for a, b in ((r0, rm), (rm + 1, r1)):
            for c, d in ((c0, cm), (cm + 1, c1)):
                if a <= b and c <= d:
                    visit(a, b, c, d)

    visit(top, bottom, left, right)
    return sorted(found, key=lambda c: (c.row, c.col))


def write_grid(cells: list[Cell], path: Path, cell: float) -> Path:
    """The cells as polygons with their ids, in a GeoPackage (or any OGR format by suffix)."""
    driver_name = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".fgb": "FlatGeobuf",
                   ".shp": "ESRI Shapefile"}.get(path.suffix.lower())  # fmt: skip
    if driver_name is None:
        raise OutputError(f"{path}: unknown vector format (use .gpkg, .geojson, .fgb or .shp)")
    digits = id_digits(cell)
    with atomic_path(path) as tmp:
        try:
            source = ogr.GetDriverByName(driver_name).CreateDataSource(str(tmp))
        except RuntimeError as exc:
            raise OutputError(f"{path}: cannot write grid ({exc})") from None
        layer = source.CreateLayer(LAYER, spatial_reference(WGS84), ogr.wkbPolygon)
        for name, kind in (("id", ogr.OFTString), ("row", ogr.OFTInteger),
                           ("col", ogr.OFTInteger), ("cell_deg", ogr.OFTReal)):  # fmt: skip
            layer.CreateField(ogr.FieldDefn(name, kind))
        definition = layer.GetLayerDefn()
        layer.StartTransaction()
        for c in cells:
            feature = ogr.Feature(definition)
            for name, value in (("id", c.id(digits)), ("row", c.row), ("col", c.col),
                                ("cell_deg", cell)):  # fmt: skip
                feature.SetField(name, value)
            feature.SetGeometry(_box(*c.bounds))
            layer.CreateFeature(feature)
        layer.CommitTransaction()
        del layer, source
    return path


def read_grid(
    path: Path, cell: float | None = None
) -> list[tuple[str, tuple[float, float, float, float]]]:
    """(id, (west, south, east, north)) of every cell in a grid file written by `write_grid`;
    with `cell`, the file's cells must be of that size (the pixel grids are built from it)."""
    source, layer = open_layer(path)
    definition = layer.GetLayerDefn()
    names = [definition.GetFieldDefn(i).GetName() for i in range(definition.GetFieldCount())]
    if "id" not in names or "cell_deg" not in names:
        raise TileInputError(f"{path}: no attributes 'id' and 'cell_deg' (not a watergee grid)")
    cells = []
    for feature in layer:
        size, geometry = feature.GetField("cell_deg"), feature.GetGeometryRef()
        if size is None or geometry is None:
            raise TileInputError(f"{path}: cell {feature.GetField('id')} has no size or "
                                 "geometry (not a watergee grid)")  # fmt: skip
        if cell is not None and not math.isclose(size, cell, rel_tol=1e-12):
            raise TileInputError(f"{path}: cell {feature.GetField('id')} is {size:g} deg, the "
                                 f"settings say gee.cell {cell:g}")  # fmt: skip
        west, east, south, north = geometry.GetEnvelope()
        cells.append((feature.GetField("id"), (west, south, east, north)))
    del source
    if not cells:
        raise TileInputError(f"{path}: the grid has no cells")
    return cells


def grid_bounds(
    cells: list[tuple[str, tuple[float, float, float, float]]],
) -> tuple[float, float, float, float]:
    """(west, south, east, north) around every cell of `read_grid`."""
    west, south, east, north = zip(*(bounds for _, bounds in cells), strict=True)
    return min(west), min(south), max(east), max(north)
