"""Multi-band stacks of single-band files: block-row reads, exact on-the-fly upsampling of
coarser bands, a virtual stack with nothing written, and a streamed GeoTIFF stack."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from osgeo import gdal, gdal_array

from watergee.core.atomic import atomic_path
from watergee.core.config import OutputSettings
from watergee.core.errors import TileInputError
from watergee.io.raster import (
    BandSpec,
    Grid,
    builds_overviews,
    cog_options,
    create_geotiff,
    creation_options,
    describe_bands,
    gdal_reason,
    grid_of,
    iter_windows,
    open_raster,
    pre_cog,
    read_band,
    to_cog,
    warp,
)
from watergee.io.upsample import METHODS as UPSAMPLE_METHODS
from watergee.io.upsample import native_span, upsample


class BlockRows:
    """Reads windows of a single-band raster from whole decoded rows of blocks.

    A JPEG2000 band decodes a whole 1024 x 1024 block for any pixel of it, and the halo of a
    window reaches into the blocks of its neighbours; through GDAL's block cache, ten bands'
    worth of such blocks do not stay cached and get decoded again and again. Here each row
    of blocks is decoded once, full width, and kept while windows still read it: windows
    coming row by row (as `iter_windows` gives them) decode every block once, in memory
    bounded by the block rows one window spans. Not for concurrent use.
    """

    def __init__(self, ds: gdal.Dataset) -> None:
        self.ds = ds
        self.block_height = max(1, ds.GetRasterBand(1).GetBlockSize()[1])
        self._rows: dict[int, np.ndarray] = {}

    def read(self, col: int, row: int, width: int, height: int) -> np.ndarray:
        """Pixels of a window inside the raster (ReadAsArray's order of arguments)."""
        bh = self.block_height
        first, last = row // bh, (row + height - 1) // bh
        for k in range(first, last + 1):
            if k not in self._rows:
                top = k * bh
                rows = min(bh, self.ds.RasterYSize - top)
                self._rows[k] = read_band(self.ds, 1, 0, top, self.ds.RasterXSize, rows)
                self.ds.FlushCache()  # the decoded blocks are held here, not twice
            self._rows[k] = self._rows.pop(k)  # most recently used last
        while len(self._rows) > last - first + 1:
            del self._rows[next(iter(self._rows))]
        parts = []
        for k in range(first, last + 1):
            top, bottom = max(row, k * bh) - k * bh, min(row + height, (k + 1) * bh) - k * bh
            parts.append(self._rows[k][top:bottom, col : col + width])
        return parts[0].copy() if len(parts) == 1 else np.concatenate(parts)


@dataclass
class UpsampledBand:
    """A single-band raster on a grid `factor` times coarser than the one it is read on,
    interpolated window by window from its native pixels (see `watergee.upsample`)."""

    ds: gdal.Dataset
    factor: int
    method: str
    nodata: float | None

    def __post_init__(self) -> None:
        self.native = BlockRows(self.ds)
        self.dtype = gdal_array.GDALTypeCodeToNumericTypeCode(self.ds.GetRasterBand(1).DataType)

    @classmethod
    def of(cls, ds: gdal.Dataset, grid: Grid, method: str, nodata: float | None):
        """The band on `grid` when it is an aligned coarsening and `method` allows, else None."""
        factor = grid_of(ds).coarsening(grid)
        if factor is None or method not in UPSAMPLE_METHODS:
            return None
        if nodata is None:
            nodata = ds.GetRasterBand(1).GetNoDataValue()
        return cls(ds, factor, method, nodata)

    def read(self, col: int, row: int, width: int, height: int) -> np.ndarray:
        """Values of a window of the fine grid; no data (and beyond the band) as `nodata`."""
        r0, r1 = native_span(row, height, self.factor)
        c0, c1 = native_span(col, width, self.factor)
        block = np.zeros((r1 - r0, c1 - c0), self.dtype)
        valid = np.zeros(block.shape, bool)
        y0, y1 = max(r0, 0), min(r1, self.ds.RasterYSize)
        x0, x1 = max(c0, 0), min(c1, self.ds.RasterXSize)
        if y1 > y0 and x1 > x0:
            data = self.native.read(x0, y0, x1 - x0, y1 - y0)
            inside = (slice(y0 - r0, y1 - r0), slice(x0 - c0, x1 - c0))
            block[inside] = data
            valid[inside] = True if self.nodata is None else data != self.nodata
        values, ok = upsample(block, valid, self.factor, self.method, (r0, c0),
                              (row, col, height, width))  # fmt: skip
        if self.nodata is not None:
            values[~ok] = self.nodata
        return values


def warp_to_grid(
    src: Path,
    final: Path,
    grid: Grid,
    method: str,
    nodata: float | None,
    settings: OutputSettings,
    band: BandSpec,
    metadata: dict[str, str] | None = None,
) -> None:
    """Resample the single-band raster `src` onto `grid`: an aligned coarser band by
    `UpsampledBand` (what `virtual_stack` reads, so both give the same values), any other by
    GDAL's warper."""
    src_ds = open_raster(src)
    data_type = src_ds.GetRasterBand(1).DataType
    upsampled = UpsampledBand.of(src_ds, grid, method, nodata)
    if upsampled is not None:
        with create_geotiff(final, grid, [band], upsampled.dtype, upsampled.nodata, settings,
                            metadata, overviews="AVERAGE", product=False) as writer:  # fmt: skip
            for w in iter_windows(grid.width, grid.height, settings.window):
                writer.write(w, upsampled.read(w.col, w.row, w.width, w.height))
        return
    cog = builds_overviews(settings, "AVERAGE", product=False)
    with atomic_path(final) as tmp:
        scratch = pre_cog(tmp) if cog else tmp
        out = warp(
            str(scratch),
            src_ds,
            src,
            grid,
            method,
            nodata,
            format="GTiff",
            outputType=data_type,
            creationOptions=creation_options(settings, data_type, product=False),
        )
        if metadata:
            out.SetMetadata(dict(metadata))
        describe_bands(out, [band], nodata)
        out.FlushCache()
        out = None
        if cog:
            to_cog(scratch, tmp, final, settings, "AVERAGE", product=False)


def _first_unreadable(paths: Sequence[Path]) -> Path | None:
    """The first of `paths` whose pixels cannot be decoded (used only after a failure)."""
    for path in paths:
        try:
            ds = open_raster(path)
            for i in range(1, ds.RasterCount + 1):
                ds.GetRasterBand(i).Checksum()
        except (RuntimeError, TileInputError):
            return path
    return None


def virtual_stack(
    sources: Sequence[Path],
    grid: Grid,
    method: str,
    specs: Sequence[BandSpec],
    nodata: float | None,
) -> gdal.Dataset:
    """Single-band rasters as one virtual multi-band raster on `grid`, nothing written.

    `read_window` reads its bands through whole decoded block rows (`BlockRows`), and bands on
    an aligned coarser grid through `UpsampledBand` (the values `resample` writes); GDAL itself
    sees other grids warped on the fly (`method`). Windows must come from one thread at a time.
    """
    members, readers = [], {}
    for index, path in enumerate(sources, start=1):
        ds = open_raster(path)
        if grid_of(ds).matches(grid):
            members.append(ds)
            readers[index] = BlockRows(ds)
            continue
        members.append(warp("", ds, path, grid, method, nodata, format="VRT"))
        band = UpsampledBand.of(ds, grid, method, nodata)
        if band is not None:
            readers[index] = band
    vrt = gdal.BuildVRT("", members, separate=True)
    vrt._members = members  # the in-memory warped bands live as long as the stack
    vrt._readers = readers  # what `read_window` reads these bands through
    describe_bands(vrt, specs, nodata)
    return vrt


def stack_type(sources: Sequence[Path]) -> int:
    """The GDAL type of a stack of `sources`: the widest of their types, provided every band
    widens into it without loss (a Byte band in a UInt16 stack); a band that would be rounded
    or clipped, or a float band among integer DN, is an error naming it and both types."""
    types = {}
    for path in sources:  # also fails early, naming the file, on missing or corrupt inputs
        types[path] = open_raster(path).GetRasterBand(1).DataType
    dtypes = {
        path: np.dtype(gdal_array.GDALTypeCodeToNumericTypeCode(t)) for path, t in types.items()
    }
    kinds = {d.kind == "f" for d in dtypes.values()}
    widest = functools.reduce(np.promote_types, dtypes.values())  # Int16 + UInt16: Int32
    for path, dtype in dtypes.items():
        if len(kinds) > 1 and dtype.kind == "f":
            others = sorted(
                {gdal.GetDataTypeName(types[p]) for p, d in dtypes.items() if d.kind != "f"}
            )
            raise TileInputError(
                f"{path}: {gdal.GetDataTypeName(types[path])} band among {'/'.join(others)} "
                "bands: stacking would round or clip it (write it as integer DN like the others)"
            )
        if not np.can_cast(dtype, widest, casting="safe"):
            raise TileInputError(
                f"{path}: {gdal.GetDataTypeName(types[path])} does not fit a "
                f"{widest} stack without clipping"
            )
    return gdal_array.NumericTypeCodeToGDALTypeCode(widest)


def stack_bands(
    sources: Sequence[Path],
    final: Path,
    specs: Sequence[BandSpec],
    nodata: float | None,
    settings: OutputSettings,
    metadata: dict[str, str] | None = None,
) -> None:
    """Stack single-band rasters on one grid into one GeoTIFF, streamed by GDAL via a VRT."""
    data_type = stack_type(sources)
    members = [open_raster(p) for p in sources]  # with the open options GeoTIFFs need here
    vrt = gdal.BuildVRT("", members, separate=True)
    describe_bands(vrt, specs, nodata)
    if metadata:
        vrt.SetMetadata(dict(metadata))
    if builds_overviews(settings, "AVERAGE", product=False):  # straight to a COG: no rewrite
        driver, options = "COG", cog_options(settings, "AVERAGE", product=False)
    else:
        driver, options = "GTiff", creation_options(settings, data_type, product=False)
    with atomic_path(final) as tmp:
        try:
            out = gdal.Translate(
                str(tmp), vrt, format=driver, outputType=data_type, creationOptions=options
            )
        except RuntimeError as exc:
            culprit = _first_unreadable(sources)
            where = f"{culprit}: read failed" if culprit else f"{final}: stacking failed"
            raise TileInputError(f"{where} ({gdal_reason(exc)})") from None
        out.FlushCache()
        out = None
