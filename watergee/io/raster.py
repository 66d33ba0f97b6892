"""The one place that opens, reads and writes rasters (GDAL).

Reads are windowed with an optional halo and never load more than a window; writes go to a
temporary name in the final folder and are renamed into place only when complete, so a
killed run never leaves a file that looks finished. Every error names the file.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from osgeo import gdal, gdal_array, osr

from watergee.core.atomic import atomic_path
from watergee.core.config import OutputSettings, Settings
from watergee.core.errors import GridMismatchError, OutputError, TileInputError
from watergee.core.records import sidecar
from watergee.io import overviews
from watergee.io.palette import class_colours

gdal.UseExceptions()
osr.UseExceptions()
# Metadata lives inside the GeoTIFF, never in a side-car .aux.xml that a rename would lose; only
# category names and attribute tables, which GeoTIFF cannot hold, go to one (`write_categories`).
gdal.SetConfigOption("GDAL_PAM_ENABLED", "NO")


def spatial_reference(definition: str, origin: str = "") -> osr.SpatialReference:
    """A CRS from WKT or any definition GDAL knows (EPSG:3035), axes in x/y (lon/lat) order;
    one GDAL does not know is an error naming `origin` (a setting) or the definition."""
    srs = osr.SpatialReference()
    try:
        srs.SetFromUserInput(definition)
    except RuntimeError as exc:
        raise TileInputError(f"{origin or definition}: not a CRS GDAL knows ({exc})") from None
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def transformer(source: str, target: str) -> osr.CoordinateTransformation:
    """Coordinates from one CRS to another (WKT or EPSG:n), x/y order on both sides."""
    return osr.CoordinateTransformation(spatial_reference(source), spatial_reference(target))


_THREAD = threading.local()


def cached_transformer(source: str, target: str) -> osr.CoordinateTransformation:
    """`transformer`, made once per thread: OGR's transformations are not thread-safe, and
    the tasks of one Dask worker run in threads side by side."""
    cache = _THREAD.__dict__.setdefault("transformers", {})
    if (source, target) not in cache:
        cache[(source, target)] = transformer(source, target)
    return cache[(source, target)]


@contextlib.contextmanager
def gdal_environment(settings: Settings) -> Iterator[None]:
    """GDAL's block cache and decoder threads for one task, set on the worker that runs it
    (remote and Slurm workers never see the driver's environment). The cache is per process
    and stays as set (tasks of one worker may overlap); the threads are per thread and are
    restored after. A GDAL_CACHEMAX in the worker's environment wins."""
    if "GDAL_CACHEMAX" not in os.environ:
        cache = settings.cluster.gdal_cache_mb * 2**20
        if gdal.GetCacheMax() != cache:
            gdal.SetCacheMax(cache)
    previous_notes = getattr(_THREAD, "notes", None)
    _THREAD.notes = notes = {}
    previous = gdal.GetThreadLocalConfigOption("GDAL_NUM_THREADS", None)
    gdal.SetThreadLocalConfigOption("GDAL_NUM_THREADS", gdal_threads(settings.output))
    try:
        yield notes
    finally:
        gdal.SetThreadLocalConfigOption("GDAL_NUM_THREADS", previous)
        _THREAD.notes = previous_notes


def task_thread_initializer() -> Callable[[], None]:
    """For a helper thread of the current task (a read-ahead): the task's GDAL threads and
    notes carried over, as thread-local settings are not inherited."""
    notes = getattr(_THREAD, "notes", None)
    threads = gdal.GetThreadLocalConfigOption("GDAL_NUM_THREADS", None)

    def initialise() -> None:
        _THREAD.notes = notes
        gdal.SetThreadLocalConfigOption("GDAL_NUM_THREADS", threads)

    return initialise


def note(key: str, value: object, add: bool = False) -> None:
    """Something the tile's record should hold (a count of invalid values, a warning): kept
    for the task running in this thread, if any, and merged into its record's info."""
    notes = getattr(_THREAD, "notes", None)
    if notes is None:
        return
    if add:
        notes[key] = notes.get(key, 0) + value
    elif isinstance(value, str):
        notes.setdefault(key, [])
        if value not in notes[key]:
            notes[key].append(value)
    else:
        notes[key] = value


#: Before GDAL 3.7.3 the GeoTIFF driver's multithreaded encoder and decoder share one pool
#: with other datasets and can leave tiles unwritten or read them as no data (OSGeo/gdal#8470,
#: fixed by #8561): seen here as class maps and clipped tiles read back all no data, by one
#: task alone and by two side by side, and once as a mosaic that lost one of two clipped
#: tiles while a mosaic of the same files made a moment later was whole. On such a GDAL every
#: GeoTIFF is compressed and decoded in the thread that uses it; JPEG2000 keeps its threads.
_GTIFF_POOL_UNSAFE = int(gdal.VersionInfo()) < 3070300


def gdal_threads(settings: OutputSettings) -> str:
    """GDAL's NUM_THREADS for this task's decoding (JPEG2000, GeoTIFF): the setting."""
    return str(settings.threads or "ALL_CPUS")


def encoder_threads(settings: OutputSettings) -> str:
    """NUM_THREADS for writing GeoTIFFs: the setting, or 1 on a GDAL whose pool is unsafe."""
    return "1" if _GTIFF_POOL_UNSAFE else gdal_threads(settings)


@dataclass(frozen=True)
class Grid:
    """A pixel grid: CRS, geotransform and size."""

    crs_wkt: str
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int

    @property
    def resolution(self) -> tuple[float, float]:
        return abs(self.transform[1]), abs(self.transform[5])

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of a north-up grid."""
        x0, dx, _, y0, _, dy = self.transform
        xs = (x0, x0 + dx * self.width)
        ys = (y0, y0 + dy * self.height)
        return min(xs), min(ys), max(xs), max(ys)

    def same_crs(self, other: Grid) -> bool:
        if not self.crs_wkt or not other.crs_wkt:
            return self.crs_wkt == other.crs_wkt
        a, b = osr.SpatialReference(), osr.SpatialReference()
        a.ImportFromWkt(self.crs_wkt)
        b.ImportFromWkt(other.crs_wkt)
        return bool(a.IsSame(b))

    def coarsening(self, fine: Grid) -> int | None:
        """f when this grid is `fine` with pixels f times larger and the same origin (a
        Sentinel-2 20 m band against the 10 m grid), else None."""
        a, b = self.transform, fine.transform
        if not self.same_crs(fine) or a[2] or a[4] or b[2] or b[4]:
            return None
        factor = round(a[1] / b[1])
        sizes = ((a[1], b[1]), (a[5], b[5]))
        if factor < 2 or any(abs(x - factor * y) > 1e-6 * abs(x) for x, y in sizes):
            return None
        if abs(a[0] - b[0]) > 0.01 * abs(b[1]) or abs(a[3] - b[3]) > 0.01 * abs(b[5]):
            return None
        return factor

    def matches(self, other: Grid) -> bool:
        """Same size, same CRS, and geotransforms equal to a hundredth of a pixel."""
        if (self.width, self.height) != (other.width, other.height):
            return False
        tol = 0.01 * min(self.resolution)
        if any(abs(a - b) > tol for a, b in zip(self.transform, other.transform, strict=True)):
            return False
        return self.same_crs(other)

    def pixel_area_m2(self) -> float | None:
        """Square metres of one pixel in a projected CRS; None in a geographic one."""
        if not self.crs_wkt:
            return None
        srs = osr.SpatialReference()
        srs.ImportFromWkt(self.crs_wkt)
        if not srs.IsProjected():
            return None
        rx, ry = self.resolution
        return rx * ry * srs.GetLinearUnits() ** 2

    def crs_name(self) -> str:
        if not self.crs_wkt:
            return "no CRS"
        srs = osr.SpatialReference()
        srs.ImportFromWkt(self.crs_wkt)
        code = srs.GetAuthorityCode(None)
        return f"EPSG:{code}" if code else (srs.GetName() or "unnamed CRS")

    def describe(self) -> str:
        rx, ry = self.resolution
        x0, y0 = self.transform[0], self.transform[3]
        return (
            f"{self.width}x{self.height} px at {rx:.10g}x{ry:.10g}, "
            f"origin {x0:.10g},{y0:.10g}, {self.crs_name()}"
        )


@dataclass(frozen=True)
class Window:
    col: int
    row: int
    width: int
    height: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """(rows, cols) slices of this window in an array of the whole raster."""
        return slice(self.row, self.row + self.height), slice(self.col, self.col + self.width)

    def inside(self, outer: Window) -> tuple[slice, slice]:
        """(rows, cols) slices of this window in an array read over `outer`."""
        row, col = self.row - outer.row, self.col - outer.col
        return slice(row, row + self.height), slice(col, col + self.width)


def iter_windows(width: int, height: int, size: int) -> Iterator[Window]:
    """Square windows covering a raster row by row; edge windows are cut to the raster."""
    for row in range(0, height, size):
        for col in range(0, width, size):
            yield Window(col, row, min(size, width - col), min(size, height - row))


#: Words in a GDAL warning that mean the file is damaged rather than merely unusual.
_DAMAGE_WORDS = ("io error", "truncat", "read error", "cannot read", "corrupt", "premature")


@contextlib.contextmanager
def _collect_gdal_warnings() -> Iterator[list[str]]:
    messages: list[str] = []

    def handler(level: int, number: int, message: str) -> None:
        if level == gdal.CE_Warning:
            messages.append(message)

    gdal.PushErrorHandler(handler)
    try:
        yield messages
    finally:
        gdal.PopErrorHandler()


def _open_options(path: Path) -> list[str]:
    """NUM_THREADS=1 for a GeoTIFF on a GDAL whose GeoTIFF thread pool is unsafe."""
    if not _GTIFF_POOL_UNSAFE:
        return []
    try:
        driver = gdal.IdentifyDriverEx(str(path), gdal.OF_RASTER)
    except RuntimeError:
        return []
    return ["NUM_THREADS=1"] if driver is not None and driver.ShortName == "GTiff" else []


def open_raster(path: Path | str, update: bool = False) -> gdal.Dataset:
    """Open a raster, refusing damaged files (GDAL opens some truncated files with only a
    warning, and their georeferencing silently missing)."""
    path = Path(path)
    if not path.exists():
        raise TileInputError(f"{path}: file not found")
    flags = gdal.OF_RASTER | (gdal.OF_UPDATE if update else gdal.OF_READONLY)
    with _collect_gdal_warnings() as warnings:
        try:
            ds = gdal.OpenEx(str(path), flags, open_options=_open_options(path))
        except RuntimeError as exc:
            raise TileInputError(f"{path}: not a readable raster ({gdal_reason(exc)})") from None
    damage = [w for w in warnings if any(word in w.lower() for word in _DAMAGE_WORDS)]
    if damage:
        reason = gdal_reason(RuntimeError(damage[0].replace(str(path), "").lstrip(": ")))
        raise TileInputError(f"{path}: damaged or truncated raster ({reason})")
    if ds is None or ds.RasterCount == 0:
        raise TileInputError(f"{path}: not a readable raster (no bands)")
    return ds


def gdal_reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] if text else "GDAL error"


def grid_of(ds: gdal.Dataset) -> Grid:
    return Grid(ds.GetProjection(), tuple(ds.GetGeoTransform()), ds.RasterXSize, ds.RasterYSize)


def raster_grid(path: Path) -> Grid:
    """The grid of a band file, which must be georeferenced (a tile's pixels are placed by it)."""
    ds = open_raster(path)
    if ds.GetGeoTransform(can_return_null=True) is None or not ds.GetProjection():
        raise TileInputError(f"{path}: no CRS / geotransform")
    return grid_of(ds)


def require_same_grid(paths: Sequence[Path]) -> Grid:
    """The shared grid of `paths`; a mismatch is an error naming both files."""
    reference = raster_grid(paths[0])
    for path in paths[1:]:
        grid = raster_grid(path)
        if not grid.matches(reference):
            what = "CRS" if not grid.same_crs(reference) else "grid"
            raise GridMismatchError(
                f"{path}: {what} differs from {paths[0]} "
                f"({grid.describe()} vs {reference.describe()})"
            )
    return reference


def band_index(ds: gdal.Dataset, description: str) -> int:
    """1-based index of the band whose description is `description`."""
    for i in range(1, ds.RasterCount + 1):
        if ds.GetRasterBand(i).GetDescription() == description:
            return i
    raise TileInputError(f"{ds.GetDescription()}: no band described as {description}")


def resolve_band(ds: gdal.Dataset, ref: str | int) -> int:
    """1-based index of a band given by description or by index."""
    if isinstance(ref, int):
        if not 1 <= ref <= ds.RasterCount:
            raise TileInputError(
                f"{ds.GetDescription()}: band {ref} requested, raster has {ds.RasterCount}"
            )
        return ref
    return band_index(ds, ref)


def band_descriptions(ds: gdal.Dataset) -> list[str]:
    """Each band's description, or b1, b2, ... where a band has none."""
    return [ds.GetRasterBand(i).GetDescription() or f"b{i}" for i in range(1, ds.RasterCount + 1)]


def read_band(ds: gdal.Dataset, index: int, *args: int, **kwargs: int) -> np.ndarray:
    """One band's pixels (ReadAsArray arguments), failures naming the file and band."""
    try:
        return ds.GetRasterBand(index).ReadAsArray(*args, **kwargs)
    except RuntimeError as exc:
        raise TileInputError(
            f"{ds.GetDescription()}: read failed in band {index} ({gdal_reason(exc)})"
        ) from None


def _as_values(
    band: gdal.Band, data: np.ndarray, scaled: bool, counted: tuple[slice, slice] | None = None
) -> np.ndarray:
    """float32 with the band's nodata as NaN, optionally scaled to physical values. Values
    that are not finite (NaN, +-inf) or do not fit float32 are no data too, never a value;
    those inside `counted` (a window without its halo) are counted for the tile's record."""
    with np.errstate(over="ignore"):
        values = data.astype(np.float32)
    nodata = band.GetNoDataValue()
    is_nodata = None
    if nodata is not None:
        is_nodata = np.isnan(data) if np.isnan(nodata) else data == nodata
        values[is_nodata] = np.nan
    if data.dtype.kind == "f":
        invalid = ~np.isfinite(values)
        if is_nodata is not None:
            invalid &= ~is_nodata
        if counted is not None and (count := int(invalid[counted].sum())):
            note("invalid_values", count, add=True)
        values[invalid] = np.nan
    if scaled:
        values *= np.float32(band.GetScale() or 1.0)
        values += np.float32(band.GetOffset() or 0.0)
    return values


def overview_sample(ds: gdal.Dataset, bands: Sequence[int], max_side: int = 1024) -> np.ndarray:
    """Bands read decimated to at most `max_side` pixels a side (NaN = nodata, scaled): cheap
    whole-tile statistics such as stretch percentiles."""
    factor = max(1, -(-max(ds.RasterXSize, ds.RasterYSize) // max_side))
    width, height = -(-ds.RasterXSize // factor), -(-ds.RasterYSize // factor)
    out = np.empty((len(bands), height, width), np.float32)
    for k, b in enumerate(bands):
        data = read_band(ds, b, buf_xsize=width, buf_ysize=height)
        out[k] = _as_values(ds.GetRasterBand(b), data, scaled=True)
    return out


def read_window(
    ds: gdal.Dataset,
    window: Window,
    bands: Sequence[int] | None = None,
    halo: int = 0,
    scaled: bool = False,
) -> np.ndarray:
    """Bands of `window` grown by `halo` pixels on each side, as float32 (bands, rows, cols).

    Pixels outside the raster or equal to a band's nodata are NaN; with `scaled`, each band's
    scale and offset are applied (DN -> physical value).
    """
    bands = list(bands or range(1, ds.RasterCount + 1))
    x0, y0 = window.col - halo, window.row - halo
    w, h = window.width + 2 * halo, window.height + 2 * halo
    out = np.full((len(bands), h, w), np.nan, dtype=np.float32)
    rx0, ry0 = max(x0, 0), max(y0, 0)
    rx1, ry1 = min(x0 + w, ds.RasterXSize), min(y0 + h, ds.RasterYSize)
    if rx1 <= rx0 or ry1 <= ry0:
        return out
    readers = getattr(ds, "_readers", {})
    for k, b in enumerate(bands):
        if b in readers:
            data = readers[b].read(rx0, ry0, rx1 - rx0, ry1 - ry0)
        else:
            data = read_band(ds, b, rx0, ry0, rx1 - rx0, ry1 - ry0)
        # the window proper, without its halo: windows tile the raster once
        counted = (slice(max(window.row - ry0, 0), window.row - ry0 + window.height),
                   slice(max(window.col - rx0, 0), window.col - rx0 + window.width))  # fmt: skip
        values = _as_values(ds.GetRasterBand(b), data, scaled, counted)
        outside = _outside(ds, b, rx0, ry0, rx1 - rx0, ry1 - ry0)
        if outside is not None:
            values[outside] = np.nan
        out[k, ry0 - y0 : ry1 - y0, rx0 - x0 : rx1 - x0] = values
    return out


def count_valid(path: Path, side: int = 2048) -> int:
    """Pixels of band 1 that are not its nodata, read back window by window."""
    ds = open_raster(path)
    band = ds.GetRasterBand(1)
    nodata = band.GetNoDataValue()
    count = 0
    for w in iter_windows(ds.RasterXSize, ds.RasterYSize, side):
        data = read_band(ds, 1, w.col, w.row, w.width, w.height)
        count += data.size if nodata is None else int((data != nodata).sum())
    return count


def _outside(ds: gdal.Dataset, band: int, *args: int) -> np.ndarray | None:
    """Where a warped raster (`on_grid`) has no source pixel, from its alpha band."""
    flags = ds.GetRasterBand(band).GetMaskFlags()
    if not flags & gdal.GMF_ALPHA or not flags & gdal.GMF_PER_DATASET:
        return None
    alpha = ds.GetRasterBand(band).GetMaskBand()
    try:
        return alpha.ReadAsArray(*args) == 0
    except RuntimeError as exc:
        raise TileInputError(f"{ds.GetDescription()}: read failed ({gdal_reason(exc)})") from None


def read_codes(ds: gdal.Dataset, window: Window, band: int = 1) -> np.ndarray:
    """Integer codes of one band in `window` (label rasters); nodata and outside are -1."""
    out = np.full((window.height, window.width), -1, dtype=np.int64)
    x1 = min(window.col + window.width, ds.RasterXSize)
    y1 = min(window.row + window.height, ds.RasterYSize)
    if x1 <= window.col or y1 <= window.row:
        return out
    data = read_band(ds, band, window.col, window.row, x1 - window.col, y1 - window.row)
    codes = data.astype(np.int64)
    nodata = ds.GetRasterBand(band).GetNoDataValue()
    if nodata is not None:
        codes[data == nodata] = -1
    outside = _outside(ds, band, window.col, window.row, x1 - window.col, y1 - window.row)
    if outside is not None:
        codes[outside] = -1
    out[: codes.shape[0], : codes.shape[1]] = codes
    return out


def warp(
    destination: str,
    ds: gdal.Dataset,
    origin: Path,
    grid: Grid,
    method: str,
    nodata: float | None = None,
    **options: object,
) -> gdal.Dataset:
    """GDAL's warper onto `grid` (the one call every resampling goes through); failures name
    `origin`. Without `nodata` the source's own nodata, if any, is kept."""
    if nodata is not None:
        options.update(srcNodata=nodata, dstNodata=nodata)
    try:
        return gdal.Warp(
            destination,
            ds,
            outputBounds=grid.bounds,
            width=grid.width,
            height=grid.height,
            dstSRS=grid.crs_wkt,
            resampleAlg=method,
            **options,
        )
    except RuntimeError as exc:
        raise TileInputError(
            f"{origin}: resampling to the tile grid failed ({gdal_reason(exc)})"
        ) from None


def on_grid(path: Path, grid: Grid) -> tuple[gdal.Dataset, bool]:
    """`path` read on `grid`: as it is when it already matches, else warped with nearest
    neighbour (codes are never blended) into a virtual raster. Returns (dataset, warped)."""
    ds = open_raster(path)
    own = grid_of(ds)
    if own.matches(grid):
        return ds, False
    if not own.crs_wkt:
        raise GridMismatchError(f"{path}: has no CRS, cannot be aligned to the tile grid")
    a, b = own.bounds, grid.bounds
    if not own.same_crs(grid):
        # geographic rasters may reach the poles or the antimeridian, where transformed
        # bounds say nothing: there the warp's alpha band tells outside from inside
        a = b
        if not spatial_reference(own.crs_wkt).IsGeographic():
            with contextlib.suppress(RuntimeError):
                a = cached_transformer(own.crs_wkt, grid.crs_wkt).TransformBounds(*own.bounds, 21)
    if a[2] <= b[0] or a[0] >= b[2] or a[3] <= b[1] or a[1] >= b[3]:
        raise GridMismatchError(f"{path}: does not overlap the tile ({a} vs {b})")
    # an alpha band marks what lies outside `path`: never read as code 0 or value 0
    return warp("", ds, path, grid, "near", format="VRT", dstAlpha=True), True


def _tiled_options(settings: OutputSettings) -> list[str]:
    return [
        "TILED=YES",
        f"BLOCKXSIZE={settings.blocksize}",
        f"BLOCKYSIZE={settings.blocksize}",
        "BIGTIFF=IF_SAFER",
        f"NUM_THREADS={encoder_threads(settings)}",
    ]


def _codec(settings: OutputSettings, product: bool) -> tuple[str, bool]:
    """(compression, whether at its fastest level): a product's is `output.compress`; an
    intermediate's, read back only by watergee, `output.intermediate_compress`, ZSTD at level 1."""
    compress = settings.compress if product else settings.intermediate_compress
    return compress, compress == "ZSTD" and not product


def creation_options(settings: OutputSettings, dtype: int, product: bool = True) -> list[str]:
    compress, fastest = _codec(settings, product)
    options = [*_tiled_options(settings), f"COMPRESS={compress}"]
    if compress != "NONE":
        floating = dtype in (gdal.GDT_Float32, gdal.GDT_Float64)
        options.append(f"PREDICTOR={3 if floating else 2}")
    if fastest:
        options.append("ZSTD_LEVEL=1")
    return options


def scratch_options(settings: OutputSettings) -> list[str]:
    """A GeoTIFF read once, by the COG rewrite: compressed fast (ZSTD level 1, no predictor),
    as its encoding and decoding are paid on top of the COG's own."""
    return [*_tiled_options(settings), "COMPRESS=ZSTD", "ZSTD_LEVEL=1"]


@dataclass(frozen=True)
class BandSpec:
    """What a written band carries besides its pixels."""

    description: str
    scale: float | None = None
    offset: float | None = None
    metadata: dict[str, str] | None = None


def describe_bands(ds: gdal.Dataset, specs: Sequence[BandSpec], nodata: float | None) -> None:
    for i, spec in enumerate(specs, start=1):
        band = ds.GetRasterBand(i)
        band.SetDescription(spec.description)
        if nodata is not None:
            band.SetNoDataValue(nodata)
        if spec.scale is not None:
            band.SetScale(spec.scale)
        if spec.offset is not None:
            band.SetOffset(spec.offset)
        if spec.metadata:
            band.SetMetadata(dict(spec.metadata))


class RasterWriter:
    """A GeoTIFF being written window by window under a temporary name."""

    def __init__(self, ds: gdal.Dataset, path: Path) -> None:
        self.ds = ds
        self.path = path

    def band(self, index: int = 1) -> gdal.Band:
        """A band of the file being written, for GDAL algorithms that write whole bands."""
        return self.ds.GetRasterBand(index)

    def write(self, window: Window, data: np.ndarray) -> None:
        """Write (bands, rows, cols) or (rows, cols) `data` at `window`."""
        planes = data[None] if data.ndim == 2 else data
        try:
            for i, plane in enumerate(planes, start=1):
                self.ds.GetRasterBand(i).WriteArray(plane, window.col, window.row)
        except RuntimeError as exc:
            raise OutputError(f"{self.path}: write failed ({gdal_reason(exc)})") from None


def builds_overviews(settings: OutputSettings, overviews: bool | str, product: bool) -> bool:
    """Whether a raster gets overviews: it names a resampling for them, and `output.overviews`
    covers it (products by default, intermediates only with 'all')."""
    if not overviews or settings.overviews == "none":
        return False
    return product or settings.overviews == "all"


def cog_options(settings: OutputSettings, resampling: str, product: bool = True) -> list[str]:
    compress, fastest = _codec(settings, product)
    options = [
        f"COMPRESS={compress}",
        f"BLOCKSIZE={settings.blocksize}",
        f"OVERVIEW_RESAMPLING={resampling}",
        "BIGTIFF=IF_SAFER",
        f"NUM_THREADS={encoder_threads(settings)}",
    ]
    if compress != "NONE":
        options.append("PREDICTOR=YES")  # horizontal for integers, floating point for floats
    if fastest:
        options.append("LEVEL=1")
    return options


def pre_cog(tmp: Path) -> Path:
    """Where a raster is written before it is rewritten as a COG at `tmp` (`to_cog`)."""
    return tmp.with_name(f"{tmp.stem}.pre-cog{tmp.suffix}")


def to_cog(
    scratch: Path,
    tmp: Path,
    final: Path,
    settings: OutputSettings,
    resampling: str,
    product: bool = True,
) -> None:
    """Rewrite the finished GeoTIFF `scratch` as a Cloud Optimized GeoTIFF `tmp` with
    overviews by `resampling`; `scratch` goes either way."""
    options = cog_options(settings, resampling, product)
    mode = resampling == "MODE"  # its overviews are computed here (`overviews`), not by GDAL
    source = None
    try:
        flags = gdal.OF_RASTER | (gdal.OF_UPDATE if mode else gdal.OF_READONLY)
        source = gdal.OpenEx(str(scratch), flags, open_options=_open_options(scratch))
        if mode and overviews.fill_mode_overviews(source, settings.blocksize):
            options.append("OVERVIEWS=FORCE_USE_EXISTING")
        gdal.Translate(str(tmp), source, format="COG", creationOptions=options)
    except RuntimeError as exc:
        raise OutputError(f"{final}: cannot write COG ({gdal_reason(exc)})") from None
    except MemoryError:  # the MODE overviews' windows, or GDAL's own buffers
        raise OutputError(f"{final}: cannot write COG (out of memory)") from None
    finally:
        source = None  # closed before its file goes
        scratch.unlink(missing_ok=True)


@contextlib.contextmanager
def create_geotiff(
    final: Path,
    grid: Grid,
    bands: Sequence[BandSpec],
    dtype: np.dtype | type,
    nodata: float | None,
    settings: OutputSettings,
    metadata: dict[str, str] | None = None,
    colours: dict[int, tuple[int, int, int]] | None = None,
    overviews: bool | str = False,
    product: bool = True,
) -> Iterator[RasterWriter]:
    """Create `final` as a tiled, compressed GeoTIFF; it appears only when the block ends well.

    `overviews` names how its overviews are resampled (True: NEAREST, as class maps must never
    be averaged); a `product` gets them unless `output.overviews` is 'none', an intermediate
    only with 'all', and the file is then a Cloud Optimized GeoTIFF. A single band with class
    names (`class_band`) also gets category names (`write_categories`) and, unless `colours`
    are given, the palette's colours as its colour table.
    """
    gdal_type = gdal_array.NumericTypeCodeToGDALTypeCode(np.dtype(dtype))
    resampling = overviews if isinstance(overviews, str) else "NEAREST"
    cog = builds_overviews(settings, overviews, product)
    names = class_names(bands[0]) if len(bands) == 1 else {}
    colours = colours or (class_colours(names) if names else None)
    with atomic_path(final) as tmp:
        scratch = pre_cog(tmp) if cog else tmp
        try:
            ds = gdal.GetDriverByName("GTiff").Create(
                str(scratch),
                grid.width,
                grid.height,
                len(bands),
                gdal_type,
                scratch_options(settings)
                if cog
                else creation_options(settings, gdal_type, product),
            )
        except RuntimeError as exc:
            raise OutputError(f"{final}: cannot create ({gdal_reason(exc)})") from None
        ds.SetProjection(grid.crs_wkt)
        ds.SetGeoTransform(grid.transform)
        if metadata:
            ds.SetMetadata(dict(metadata))
        describe_bands(ds, bands, nodata)
        if colours and gdal_type in (gdal.GDT_Byte, gdal.GDT_UInt16):  # GeoTIFF allows no other
            table = gdal.ColorTable()
            for value, rgb in colours.items():
                table.SetColorEntry(int(value), (*rgb, 255))
            if nodata is not None and 0 <= nodata < 256:
                table.SetColorEntry(int(nodata), (0, 0, 0, 0))
            ds.GetRasterBand(1).SetRasterColorTable(table)
            ds.GetRasterBand(1).SetRasterColorInterpretation(gdal.GCI_PaletteIndex)
        writer = RasterWriter(ds, final)
        try:
            yield writer
            try:
                ds.FlushCache()
            except RuntimeError as exc:
                raise OutputError(f"{final}: write failed ({gdal_reason(exc)})") from None
        finally:
            writer.ds = None
            ds = None
        if cog:
            to_cog(scratch, tmp, final, settings, resampling, product)
    if names:
        write_categories(final, names, colours or {})
    else:
        sidecar(final).unlink(missing_ok=True)


def class_band(description: str, names: dict[int, str]) -> BandSpec:
    """A class band: its names kept as CLASS_<code> metadata (the inverse of `class_names`)."""
    return BandSpec(description, metadata={f"CLASS_{code}": name for code, name in names.items()})


def class_names(band: BandSpec) -> dict[int, str]:
    """Class code -> name, from a band's CLASS_<code> metadata (how watergee keeps them)."""
    items = (band.metadata or {}).items()
    return {int(k[6:]): v for k, v in items if k.startswith("CLASS_") and k[6:].isdigit()}


#: Category names are a list indexed by code: past this code only the attribute table is written.
MAX_CATEGORIES = 4096
#: GDAL raster attribute table field types and usages (gdal.GFT_*, gdal.GFU_*).
_RAT_FIELDS = (
    ("Value", gdal.GFT_Integer, gdal.GFU_MinMax),
    ("Class", gdal.GFT_String, gdal.GFU_Name),
    ("Red", gdal.GFT_Integer, gdal.GFU_Red),
    ("Green", gdal.GFT_Integer, gdal.GFU_Green),
    ("Blue", gdal.GFT_Integer, gdal.GFU_Blue),
)


def write_categories(
    path: Path, names: dict[int, str], colours: dict[int, tuple[int, int, int]]
) -> None:
    """Category names and a thematic raster attribute table (value, class, colour) for band 1
    of `path`, so QGIS, ArcGIS and gdalinfo show a legend. The GeoTIFF driver of GDAL before
    3.9 keeps these only in a side-car, written here atomically like every output. Classes
    without a colour get theirs from the palette."""
    import xml.etree.ElementTree as ET

    root = ET.Element("PAMDataset")
    band = ET.SubElement(root, "PAMRasterBand", band="1")
    if min(names) >= 0 and max(names) < MAX_CATEGORIES:  # one entry per code from 0 on
        categories = ET.SubElement(band, "CategoryNames")
        for code in range(max(names) + 1):
            ET.SubElement(categories, "Category").text = names.get(code, "")
    table = ET.SubElement(band, "GDALRasterAttributeTable", tableType="thematic")
    for i, (name, kind, usage) in enumerate(_RAT_FIELDS):
        field_defn = ET.SubElement(table, "FieldDefn", index=str(i))
        ET.SubElement(field_defn, "Name").text = name
        ET.SubElement(field_defn, "Type").text = str(kind)
        ET.SubElement(field_defn, "Usage").text = str(usage)
    colours = {**class_colours(names), **colours}
    for i, code in enumerate(sorted(names)):
        row = ET.SubElement(table, "Row", index=str(i))
        for value in (code, names[code], *colours[code]):
            ET.SubElement(row, "F").text = str(value)
    ET.indent(root)
    with atomic_path(sidecar(path)) as tmp:
        tmp.write_text(ET.tostring(root, encoding="unicode") + "\n", encoding="utf-8")


@dataclass(frozen=True)
class ClassStyle:
    """What a class map carries besides its pixels: band description and metadata (class
    names), colour table, dataset metadata, nodata."""

    band: BandSpec
    colours: dict[int, tuple[int, int, int]]
    metadata: dict[str, str]
    nodata: float | None
    dtype: np.dtype

    @classmethod
    def of(cls, ds: gdal.Dataset) -> ClassStyle:
        band = ds.GetRasterBand(1)
        colours = {}
        table = band.GetColorTable()
        nodata = band.GetNoDataValue()
        if table is not None:
            for value in range(table.GetCount()):
                r, g, b, a = table.GetColorEntry(value)
                if value != nodata and (a or r or g or b):
                    colours[value] = (r, g, b)
        spec = BandSpec(band.GetDescription(), metadata=band.GetMetadata() or None)
        dtype = np.dtype(gdal_array.GDALTypeCodeToNumericTypeCode(band.DataType))
        return cls(spec, colours, ds.GetMetadata() or {}, nodata, dtype)

    @property
    def names(self) -> dict[int, str]:
        """Class code -> name, from the band's CLASS_<code> metadata."""
        return class_names(self.band)


def write_array(
    path: Path,
    array: np.ndarray,
    grid: Grid,
    nodata: float | None = None,
    driver: str | None = None,
) -> None:
    """Write a small in-memory array (rows, cols) or (bands, rows, cols) as a whole file.

    For test scenes and the demo; stages stream windows through `create_geotiff` instead.
    JPEG2000 (by a .jp2 suffix) is written losslessly, as Sentinel-2 band files are read.
    """
    planes = array[None] if array.ndim == 2 else array
    gdal_type = gdal_array.NumericTypeCodeToGDALTypeCode(planes.dtype)
    mem = gdal.GetDriverByName("MEM").Create("", grid.width, grid.height, len(planes), gdal_type)
    mem.SetGeoTransform(grid.transform)
    mem.SetProjection(grid.crs_wkt)
    for i, plane in enumerate(planes, start=1):
        band = mem.GetRasterBand(i)
        band.WriteArray(plane)
        if nodata is not None:
            band.SetNoDataValue(nodata)
    driver = driver or ("JP2OpenJPEG" if path.suffix.lower() == ".jp2" else "GTiff")
    options = ["CODEC=JP2", "REVERSIBLE=YES", "QUALITY=100"] if driver == "JP2OpenJPEG" else []
    if driver == "GTiff":
        options = ["COMPRESS=DEFLATE", "TILED=YES"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        gdal.GetDriverByName(driver).CreateCopy(str(tmp), mem, options=options)


def utm_grid(epsg: int, origin: tuple[float, float], pixel: float, width: int, height: int) -> Grid:
    """A north-up grid in an EPSG-coded CRS."""
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    return Grid(srs.ExportToWkt(), (origin[0], pixel, 0.0, origin[1], 0.0, -pixel), width, height)
