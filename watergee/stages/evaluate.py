"""evaluate: the accuracy of a class map against reference data, as JSON and an HTML report;
or, with evaluate.sample_design, the stratified random sample of points to label."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np

from watergee.accuracy import Matrix, allocate, area_adjusted, sample_accuracy
from watergee.classmaps import open_class_raster
from watergee.core import layout
from watergee.core.config import Settings
from watergee.core.errors import ConfigError, TileInputError
from watergee.core.records import write_json_atomic
from watergee.core.stage import StageResult
from watergee.core.tiles import Tile
from watergee.io.raster import ClassStyle, Grid, grid_of, read_band
from watergee.io.report import write_figure, write_html
from watergee.io.vector import write_points
from watergee.reference import (
    Comparison,
    PointReference,
    Reference,
    class_counts,
    open_reference,
    stratified_sample,
    total_counts,
)

log = logging.getLogger(__name__)

RULE = (
    "Reference rasters are warped onto the map grid by nearest neighbour; a polygon gives its "
    "class to the pixels whose centre it contains; a point is compared with the map pixel it "
    "falls in. Units where the map or the reference has no data are left out."
)
FIGURE_SIDE = 800  # pixels of the figure's longer side


def _decimated(ds, grid: Grid) -> tuple[np.ndarray, Grid]:
    """The map read at most FIGURE_SIDE pixels a side, and that coarse grid."""
    factor = max(1, -(-max(grid.width, grid.height) // FIGURE_SIDE))
    width, height = -(-grid.width // factor), -(-grid.height // factor)
    data = read_band(ds, 1, buf_xsize=width, buf_ysize=height).astype(np.int64)
    nodata = ds.GetRasterBand(1).GetNoDataValue()
    if nodata is not None:
        data[data == nodata] = -1
    x0, dx, rx, y0, ry, dy = grid.transform
    transform = (x0, dx * grid.width / width, rx, y0, ry, dy * grid.height / height)
    coarse = Grid(grid.crs_wkt, transform, width, height)
    return data, coarse


def _relabelled(codes: np.ndarray, relabel: dict[int, int]) -> np.ndarray:
    out = codes.copy()
    for old, new in relabel.items():
        out[codes == old] = new
    return out


def _figure(
    final: Path,
    ds,
    grid: Grid,
    reference: Reference,
    comparison: Comparison,
    style: ClassStyle,
    relabel: dict[int, int],
) -> None:
    map_codes, coarse = _decimated(ds, grid)
    if isinstance(reference, PointReference):
        found = comparison.map_codes
        rows, cols = reference.pixels(coarse)
        keep = (rows >= 0) & (found >= 0)
        agrees = found == _relabelled(reference.values, relabel)
        points = (rows[keep], cols[keep], agrees[keep])
        write_figure(final, map_codes, None, points, style.colours, style.names)
    else:
        codes = _relabelled(reference.codes(coarse), relabel)
        write_figure(final, map_codes, codes, None, style.colours, style.names)


def check(settings: Settings) -> None:
    """The reference, opened (and its class field found) before the map is read."""
    opts = settings.evaluate
    if opts.reference is not None and not opts.sample_design:
        open_reference(opts.reference, opts.field, opts.all_touched)


def evaluate(run: Tile, settings: Settings, out: Path) -> StageResult:
    """`run.source` is the class map; `run.id` names the report."""
    if settings.evaluate.sample_design:
        return sample_design(run, settings, out)
    opts = settings.evaluate
    if opts.reference is None:
        raise ConfigError("evaluate needs a reference (--reference), or --sample-design")
    ds, style = open_class_raster(run.source)
    grid = grid_of(ds)
    reference = open_reference(opts.reference, opts.field, opts.all_touched)
    comparison = reference.compare(ds, grid, settings.output.window)
    if not comparison.pairs:
        raise TileInputError(
            f"{opts.reference}: no reference unit falls on data of {run.source} "
            f"({comparison.left_out} left out)"
        )
    names = style.names
    relabel = opts.reference_classes
    pairs: Counter = Counter()
    for (m, r), n in comparison.pairs.items():
        pairs[(m, relabel.get(r, r))] += n
    matrix = Matrix.from_pairs(pairs)
    design = opts.design
    if design == "auto":
        design = "stratified" if reference.kind == "points" else "simple"
    report = {
        "map": str(run.source),
        "reference": str(opts.reference),
        "reference_kind": reference.kind,
        "rule": RULE,
        "design": design,
        "confidence": opts.confidence,
        "left_out": comparison.left_out,
        "unlabelled": comparison.unlabelled,
        "classes": list(matrix.classes),
        "class_names": {c: names[c] for c in matrix.classes if c in names},
        "confusion_matrix": matrix.counts.tolist(),
        "sample": sample_accuracy(matrix, opts.confidence),
    }
    if design == "stratified":
        mapped = total_counts(class_counts(ds, settings.output.window))
        try:
            report["area_adjusted"] = area_adjusted(
                matrix, mapped, grid.pixel_area_m2(), opts.confidence
            )
        except ValueError as exc:
            raise TileInputError(
                f"{opts.reference}: {exc} (or set evaluate.design=simple)"
            ) from None
    json_path, html_path, png_path = (
        layout.report(out, run, s) for s in (".json", ".html", ".png")
    )
    _figure(png_path, ds, grid, reference, comparison, style, relabel)
    write_json_atomic(json_path, report)
    write_html(html_path, report, png_path)
    overall = report.get("area_adjusted", report["sample"])["overall_accuracy"]
    log.info("%s: overall accuracy %.4f over %d units; report %s", run.id, overall,
             matrix.total, html_path)  # fmt: skip
    return StageResult([run.source, opts.reference], [json_path, html_path, png_path],
                       {"overall_accuracy": overall, "units": matrix.total,
                        "report": str(html_path)})  # fmt: skip


def sample_design(run: Tile, settings: Settings, out: Path) -> StageResult:
    """Stratified random points over the map classes, with an empty class field to fill in."""
    opts = settings.evaluate
    ds, style = open_class_raster(run.source)
    grid = grid_of(ds)
    counts = class_counts(ds, settings.output.window)
    mapped = total_counts(counts)
    if not mapped:
        raise TileInputError(f"{run.source}: no mapped pixels to sample")
    allocation = allocate(mapped, opts.sample_size, opts.min_per_class)
    drawn = sorted(stratified_sample(ds, counts, allocation, opts.seed))
    rows, cols, strata = (np.array(v, np.int64) for v in zip(*drawn, strict=True))
    x0, dx, _, y0, _, dy = grid.transform
    xs, ys = x0 + (cols + 0.5) * dx, y0 + (rows + 0.5) * dy
    target = layout.report(out, run, "-sample.gpkg")
    unlabelled = np.full(len(rows), np.nan)
    fields = {"id": np.arange(1, len(rows) + 1), "stratum": strata, opts.field: unlabelled}
    write_points(target, "sample", grid.crs_wkt, xs, ys, fields)
    design_path = layout.report(out, run, "-sample.json")
    write_json_atomic(design_path, {
        "map": str(run.source), "seed": opts.seed,
        "strata": {c: {"mapped_pixels": mapped[c], "points": allocation.get(c, 0),
                       "name": style.names.get(c, "")} for c in mapped},
    })  # fmt: skip
    log.info("%s: %d points over %d classes in %s", run.id, len(rows), len(allocation), target)
    return StageResult([run.source], [target, design_path],
                       {"points": len(rows), "allocation": allocation})  # fmt: skip
