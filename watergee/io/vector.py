"""The one place that writes and reads vector layers (OGR): GeoPackage points."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from osgeo import gdal, ogr, osr

from watergee.core.atomic import atomic_path
from watergee.core.errors import OutputError, TileInputError
from watergee.io.raster import transformer

ogr.UseExceptions()


def _field_type(values: np.ndarray) -> int:
    return ogr.OFTInteger64 if np.issubdtype(values.dtype, np.integer) else ogr.OFTReal


def write_points(
    final: Path,
    layer_name: str,
    crs_wkt: str,
    xs: np.ndarray,
    ys: np.ndarray,
    fields: Mapping[str, np.ndarray],
) -> None:
    """Write points with attribute columns as one GeoPackage layer, atomically."""
    srs = osr.SpatialReference()
    srs.ImportFromWkt(crs_wkt)
    with atomic_path(final) as tmp:
        try:
            ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp))
            layer = ds.CreateLayer(layer_name, srs, ogr.wkbPoint)
            for name, values in fields.items():
                layer.CreateField(ogr.FieldDefn(name, _field_type(values)))
            definition = layer.GetLayerDefn()
            ds.StartTransaction()
            for start in range(0, len(xs), 50_000):  # Python lists for a chunk at a time
                end = start + 50_000
                columns = [values[start:end].tolist() for values in fields.values()]
                for n, (x, y) in enumerate(
                    zip(xs[start:end].tolist(), ys[start:end].tolist(), strict=True)
                ):
                    feature = ogr.Feature(definition)
                    for i, values in enumerate(columns):
                        value = values[n]
                        if value == value:  # NaN stays null
                            feature.SetField(i, value)
                    point = ogr.Geometry(ogr.wkbPoint)
                    point.AddPoint_2D(x, y)
                    feature.SetGeometry(point)
                    layer.CreateFeature(feature)
            ds.CommitTransaction()
            ds = None
        except RuntimeError as exc:
            raise OutputError(f"{final}: cannot write layer {layer_name} ({exc})") from None


def read_points(
    path: Path, attributes: Sequence[str]
) -> tuple[str, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(CRS WKT, x, y, {attribute: values}) of every feature of a vector file's first layer,
    read in one pass; polygons give their centroid."""
    _source, layer = open_layer(path)
    for attribute in attributes:
        require_field(path, layer, attribute)
    srs = layer.GetSpatialRef()
    xs, ys = [], []
    values: dict[str, list] = {attribute: [] for attribute in attributes}
    number = 0
    try:
        for number, feature in enumerate(layer, start=1):
            geometry = feature.GetGeometryRef()
            if geometry is None or geometry.IsEmpty():
                raise TileInputError(
                    f"{path}: feature {number} has no geometry (a CSV needs x,y or WKT columns)"
                )
            point = geometry if geometry.GetGeometryType() == ogr.wkbPoint else geometry.Centroid()
            xs.append(point.GetX())
            ys.append(point.GetY())
            for attribute in attributes:
                values[attribute].append(feature.GetField(attribute))
    except RuntimeError as exc:
        reason = " ".join(str(exc).split()) or "unreadable geometry or attribute"
        raise TileInputError(f"{path}: feature {number + 1}: {reason}") from None
    wkt = srs.ExportToWkt() if srs is not None else ""
    columns = {attribute: np.array(column) for attribute, column in values.items()}
    return wkt, np.array(xs), np.array(ys), columns


def open_layer(path: Path) -> tuple[ogr.DataSource, ogr.Layer]:
    """A vector file and its first layer (the layer lives only as long as the source)."""
    if not path.exists():
        raise TileInputError(f"{path}: file not found")
    options = CSV_POINTS if path.suffix.lower() == ".csv" else []
    try:
        source = gdal.OpenEx(str(path), gdal.OF_VECTOR, open_options=options)
    except RuntimeError as exc:
        raise TileInputError(f"{path}: not a readable vector file ({exc})") from None
    if source is None or source.GetLayerCount() == 0:
        raise TileInputError(f"{path}: not a vector file GDAL can read (no layer)")
    return source, source.GetLayer(0)


#: A CSV of points: coordinates from x/y (lon/lat, easting/northing) or WKT columns.
CSV_POINTS = [
    "X_POSSIBLE_NAMES=x,lon,long,longitude,easting",
    "Y_POSSIBLE_NAMES=y,lat,latitude,northing",
    "GEOM_POSSIBLE_NAMES=wkt,geometry,geom",
    "KEEP_GEOM_COLUMNS=NO",
]


def require_field(path: Path, layer: ogr.Layer, field: str) -> None:
    definition = layer.GetLayerDefn()
    names = [definition.GetFieldDefn(i).GetName() for i in range(definition.GetFieldCount())]
    if field not in names:
        raise TileInputError(f"{path}: no attribute '{field}' (has {', '.join(names) or 'none'})")


def class_code(path: Path, value: object, number: int, field: str) -> int:
    """An integer class code from an attribute value, or an error naming the feature."""
    try:
        code = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        code = float("nan")
    if not code.is_integer() or code < 0:
        raise TileInputError(f"{path}: feature {number}: {field} {value!r} is not a class code")
    return int(code)


def class_codes(
    path: Path, values: np.ndarray, field: str, numbers: Sequence[int] | None = None
) -> np.ndarray:
    """`class_code` of every value; `numbers` are their features' (default 1, 2, ...)."""
    numbers = range(1, len(values) + 1) if numbers is None else numbers
    pairs = zip(values.tolist(), numbers, strict=True)
    return np.array([class_code(path, v, int(k), field) for v, k in pairs], np.int64)


class PolygonMask:
    """Polygons from a vector file, burnt onto any pixel grid window by window: a pixel is
    inside when its centre is (GDAL's rasterisation rule). Reprojected to the grid's CRS by
    GDAL as needed; held in memory, so a boundary file is read once. Polygons may be chosen by
    an attribute (`field` in `match`) and may carry a class code (`value`) to burn."""

    def __init__(
        self,
        path: Path,
        field: str | None = None,
        match: str | None = None,
        value: str | None = None,
    ) -> None:
        _source, layer = open_layer(path)
        for name in (field, value):
            if name is not None:
                require_field(path, layer, name)
        self.path = path
        srs = layer.GetSpatialRef()
        self.crs_wkt = srs.ExportToWkt() if srs is not None else ""
        self.memory = ogr.GetDriverByName("Memory").CreateDataSource("")
        self.layer = self.memory.CreateLayer("polygons", srs, ogr.wkbMultiPolygon)
        if value is not None:
            self.layer.CreateField(ogr.FieldDefn("code", ogr.OFTInteger64))
        kept = 0
        for number, feature in enumerate(layer, start=1):
            geometry = feature.GetGeometryRef()
            if geometry is None or (
                field is not None and str(feature.GetField(field)) not in (match or "")
            ):
                continue
            copy = ogr.Feature(self.layer.GetLayerDefn())
            if value is not None:
                copy.SetField("code", class_code(path, feature.GetField(value), number, value))
            copy.SetGeometry(geometry.Clone())
            self.layer.CreateFeature(copy)
            kept += 1
        if kept == 0:
            what = f"no polygon whose {field} is part of '{match}'" if field else "no polygons"
            raise TileInputError(f"{path}: {what}")

    def envelope(self, crs_wkt: str) -> tuple[float, float, float, float]:
        """(west, south, east, north) of the polygons in `crs_wkt`: their extent's outline,
        densified, reprojected (a curved outline is still bounded)."""
        west, east, south, north = self.layer.GetExtent()
        if not (self.crs_wkt and crs_wkt):
            return west, south, east, north
        box = ogr.CreateGeometryFromWkt(
            f"POLYGON (({west} {south}, {east} {south}, {east} {north}, {west} {north}, "
            f"{west} {south}))"
        )
        box.Segmentize(_densify_step(box))
        box.Transform(transformer(self.crs_wkt, crs_wkt))
        west, east, south, north = box.GetEnvelope()
        return west, south, east, north

    def _rasterise(self, crs_wkt, transform, width, height, kind, fill, options) -> np.ndarray:
        from osgeo import gdal

        raster = gdal.GetDriverByName("MEM").Create("", width, height, 1, kind)
        raster.SetGeoTransform(tuple(transform))
        raster.SetProjection(crs_wkt)
        raster.GetRasterBand(1).Fill(fill)
        gdal.RasterizeLayer(raster, [1], self.layer, burn_values=[1], options=options)
        return raster.ReadAsArray()

    def burn(
        self, crs_wkt: str, transform: tuple[float, ...], width: int, height: int
    ) -> np.ndarray:
        """True where a pixel centre of the window (its geotransform and size) is inside."""
        from osgeo import gdal

        data = self._rasterise(crs_wkt, transform, width, height, gdal.GDT_Byte, 0, [])
        return data.astype(bool)

    def codes(
        self,
        crs_wkt: str,
        transform: tuple[float, ...],
        width: int,
        height: int,
        all_touched: bool = False,
    ) -> np.ndarray:
        """The class code (`value`) of the polygon over each pixel centre (every pixel touched
        with `all_touched`); -1 outside."""
        from osgeo import gdal

        options = ["ATTRIBUTE=code", *(["ALL_TOUCHED=TRUE"] if all_touched else [])]
        data = self._rasterise(crs_wkt, transform, width, height, gdal.GDT_Int32, -1, options)
        return data.astype(np.int64)


def _densify_step(geometry: ogr.Geometry) -> float:
    """A vertex spacing that keeps a reprojected envelope true (1/64 of the extent)."""
    west, east, south, north = geometry.GetEnvelope()
    return max(east - west, north - south) / 64 or 1.0


def polygonise(
    band: gdal.Band,
    final: Path,
    crs_wkt: str,
    classes: Sequence[int] | None,
    min_area: float,
    names: Mapping[int, str],
) -> tuple[int, float]:
    """Polygons of equal class from a raster band (no data left out) with GDAL's polygonize,
    kept when their class is in `classes` (all when None) and their area is at least
    `min_area` (m2), with `class`, `name`, `area_m2` and `perimeter_m`. The format follows the
    suffix (.gpkg, .fgb). Written atomically; returns (polygons, total area)."""
    from osgeo import gdal

    driver = "FlatGeobuf" if final.suffix.lower() == ".fgb" else "GPKG"
    srs = osr.SpatialReference()
    srs.ImportFromWkt(crs_wkt)
    wanted = None if classes is None else {int(c) for c in classes}
    count, total = 0, 0.0
    with atomic_path(final) as tmp:
        scratch_path = tmp.with_name(f"{tmp.stem}.scratch.gpkg")
        try:
            scratch = ogr.GetDriverByName("GPKG").CreateDataSource(str(scratch_path))
            raw = scratch.CreateLayer("raw", srs, ogr.wkbPolygon)
            raw.CreateField(ogr.FieldDefn("class", ogr.OFTInteger))
            # GDAL walks the raster line by line; memory follows the open polygons only.
            gdal.Polygonize(band, band.GetMaskBand(), raw, 0, ["8CONNECTED=8"])
            ds = ogr.GetDriverByName(driver).CreateDataSource(str(tmp))
            layer = ds.CreateLayer(final.stem, srs, ogr.wkbMultiPolygon)
            for name, kind in (("class", ogr.OFTInteger), ("name", ogr.OFTString),
                               ("area_m2", ogr.OFTReal), ("perimeter_m", ogr.OFTReal)):  # fmt: skip
                layer.CreateField(ogr.FieldDefn(name, kind))
            definition = layer.GetLayerDefn()
            if driver == "GPKG":
                ds.StartTransaction()
            for feature in raw:
                code = feature.GetField("class")
                geometry = feature.GetGeometryRef()
                area = geometry.GetArea()
                if (wanted is not None and code not in wanted) or area < min_area:
                    continue
                out = ogr.Feature(definition)
                out.SetField("class", code)
                out.SetField("name", names.get(code, ""))
                out.SetField("area_m2", area)
                out.SetField("perimeter_m", geometry.Boundary().Length())
                out.SetGeometry(ogr.ForceToMultiPolygon(geometry))
                layer.CreateFeature(out)
                count, total = count + 1, total + area
            if driver == "GPKG":
                ds.CommitTransaction()
            ds = layer = scratch = raw = None
        except RuntimeError as exc:
            raise OutputError(f"{final}: polygonize failed ({exc})") from None
        finally:
            scratch_path.unlink(missing_ok=True)
    return count, total
