"""classify: a class map per tile, per pixel or per superpixel, from a model artifact."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from osgeo import gdal

from watergee.core import layout
from watergee.core.config import ClassifySettings, Settings
from watergee.core.errors import MissingBandError, ModelError, OutputError, TileInputError
from watergee.core.records import sidecar
from watergee.core.stage import StageResult
from watergee.core.tiles import Tile
from watergee.features import FeatureReader, extract_patches
from watergee.io.quicklook import write_quicklook
from watergee.io.raster import (
    BandSpec,
    Window,
    band_index,
    class_band,
    count_valid,
    create_geotiff,
    grid_of,
    iter_windows,
    open_raster,
    read_codes,
    read_window,
)
from watergee.io.stac import write_item
from watergee.io.vector import read_points
from watergee.models.artifact import check_channels, check_model_folder, read_metadata
from watergee.models.inference import predict_windows
from watergee.models.predictor import Predictor, load_predictor
from watergee.spectral import INDEX_BANDS
from watergee.stacks import band_stack
from watergee.waterchecks import (
    WaterCheck,
    configured_checks,
    reflectance_problem,
    water_class_problem,
)

log = logging.getLogger(__name__)

NODATA = 255
_PREDICTORS: dict[tuple, Predictor] = {}


def predictor_for(opts: ClassifySettings, threads: int = 0) -> Predictor:
    """The model, loaded once per worker process and reused for every tile it classifies
    (reloaded when its files change)."""
    if opts.model is None:
        raise ModelError("no model given (--model FOLDER)")
    metadata = read_metadata(opts.model)
    files = [opts.model / "model.json", opts.model / metadata.file]
    key = (
        opts.model,
        opts.batch_size,
        threads,
        opts.precision,
        *((f.stat().st_mtime_ns, f.stat().st_size) for f in files),
    )
    if key not in _PREDICTORS:
        _PREDICTORS.clear()
        _PREDICTORS[key] = load_predictor(opts.model, opts.batch_size, threads, opts.precision)
    return _PREDICTORS[key]


def feature_reader(ds, predictor: Predictor, source: Path, model: Path) -> FeatureReader:
    """Read the model's channels from the stack: stack bands by description, then indices."""
    channels = predictor.metadata.channels
    indices = [c for c in channels if c in INDEX_BANDS]
    bands = [c for c in channels if c not in INDEX_BANDS]
    described = [ds.GetRasterBand(i).GetDescription() for i in range(1, ds.RasterCount + 1)]
    missing = [b for b in bands if b not in described]
    if missing or channels != bands + indices:
        check_channels(predictor.metadata, described + indices, str(source), str(model))
    return FeatureReader.open(ds, bands, indices)


def window_side(predictor: Predictor, memory_mb: int, width: int, height: int) -> int:
    side = int(math.sqrt(memory_mb * 2**20 / predictor.bytes_per_pixel()))
    side = max(64, min(side, 4096)) // 64 * 64
    return min(side, max(width, height))


def predict_tile(
    predictor: Predictor, reader: FeatureReader, side: int
) -> Iterator[tuple[Window, np.ndarray, np.ndarray, np.ndarray]]:
    """(window, probabilities (rows, cols, classes), valid, features) over the tile."""
    return predict_windows(predictor.window, reader, predictor.field, side, len(predictor.classes))


class _CheckPlan:
    """A tile's checks on water and where they read their bands: the model's features when a
    band is one of them (pixel mode: no second read), else a dataset handle of their own (the
    prediction reads the next window of the tile's handle in another thread meanwhile)."""

    def __init__(
        self,
        checks: list[WaterCheck],
        bands: dict[str, int],
        channels: dict[str, int],
        reopen: Callable[[], gdal.Dataset],
    ) -> None:
        self.checks, self.bands, self.channels = checks, bands, channels
        self.water = checks[0].water
        self._reopen, self._ds = reopen, None

    def apply(
        self, window: Window, labels: np.ndarray, probabilities: np.ndarray, valid: np.ndarray,
        features: np.ndarray | None, classes: np.ndarray,
    ) -> None:  # fmt: skip
        if not np.any(valid & (labels == classes[self.water])):
            return
        values = {} if features is None else {n: features[c] for n, c in self.channels.items()}
        missing = [name for name in self.bands if name not in values]
        if missing:
            self._ds = self._ds or self._reopen()
            read = read_window(self._ds, window, [self.bands[n] for n in missing], scaled=True)
            values.update(zip(missing, read, strict=True))
        for check in self.checks:
            check.apply(labels, probabilities, valid, values, classes)


def check_plan(
    ds: gdal.Dataset,
    predictor: Predictor,
    reader: FeatureReader,
    opts: ClassifySettings,
    source: Path,
    reopen: Callable[[], gdal.Dataset],
) -> tuple[_CheckPlan | None, dict[str, str]]:
    """The tile's checks on water (None: none applies) and, per check, its rule or the reason
    it is off."""
    info = predictor.metadata.classes
    bands = {"swir": opts.swir_band, "red": opts.red_band, "nir": opts.nir_band}
    checks, rules = configured_checks([c.name for c in info], [c.id for c in info], opts, bands,
                                      lambda needed: _unusable(ds, needed, source))  # fmt: skip
    if not checks:
        return None, rules
    indices = {name: band_index(ds, name) for check in checks for name in check.bands}
    channels = {n: reader.names.index(n) for n in indices if n in reader.names}
    return _CheckPlan(checks, indices, channels, reopen), rules


def _unusable(ds: gdal.Dataset, names: tuple[str, ...], source: Path) -> str | None:
    """Why a check on these stack bands is off, or None."""
    for name in names:
        try:
            index = band_index(ds, name)
        except TileInputError:
            return f"off ({source} has no band {name})"
        problem = reflectance_problem(ds, index)
        if problem is not None:
            log.warning("%s: band %s %s: water check on it off", source, name, problem)
            return f"off (band {name} {problem})"
    return None


def check(settings: Settings) -> None:
    """The model folder every tile reads, checked before any tile runs (no model loaded)."""
    opts = settings.classify
    if opts.model is None:
        return
    metadata = check_model_folder(opts.model)
    problem = water_class_problem([c.id for c in metadata.classes], opts)
    if problem is not None:
        raise ModelError(f"{opts.model / 'model.json'}: {problem}")


def check_written(targets: list[Path], classified: int, source: Path) -> None:
    """Never a finished class map that is wrong: its valid pixels, read back, must be those
    classified; else it goes, with the probabilities written beside it."""
    written = count_valid(targets[0])
    if written != classified:
        for path in targets:
            path.unlink(missing_ok=True)
            sidecar(path).unlink(missing_ok=True)
        raise OutputError(
            f"{targets[0]}: holds {written} classified pixels, {classified} were computed "
            "(written wrongly, removed)"
        )
    if classified == 0:
        log.warning("%s: no pixel could be classified (no data within the model's reach)", source)


def classify(tile: Tile, settings: Settings, out: Path) -> StageResult:
    opts = settings.classify
    work = opts.work or out
    predictor = predictor_for(opts, settings.output.threads)
    direct = opts.source == "bands" and tile.source.is_dir()
    if direct:
        ds, band_paths = band_stack(tile, settings)
        source, sources = tile.source, band_paths
    else:
        source = layout.require_stack(work, tile)
        ds, sources = open_raster(source), [source]
    grid = grid_of(ds)
    reader = feature_reader(ds, predictor, source, opts.model)
    if grid.width < predictor.field or grid.height < predictor.field:
        raise ModelError(
            f"{source}: {grid.width}x{grid.height} px is smaller than the model's receptive "
            f"field of {predictor.field} px"
        )
    classes = np.array(predictor.classes)
    side = opts.window or window_side(predictor, opts.memory_mb, grid.width, grid.height)
    inputs = [*sources, opts.model / "model.json", opts.model / predictor.metadata.file]

    if opts.mode == "superpixel":
        segments_path = layout.segments(work, tile)
        if not segments_path.exists():
            raise MissingBandError(
                f"{segments_path}: segments not found (run `watergee superpixel` first)"
            )
        segment_class, segment_probabilities = _classify_segments(
            predictor, reader, segments_path, layout.centroids(work, tile), opts, side
        )
        inputs.append(segments_path)
        if opts.superpixel_rule == "seed":
            inputs.append(layout.centroids(work, tile))
        painted = _paint(segments_path, segment_class, segment_probabilities)
    else:
        painted = (
            (w, classes[p.argmax(-1)], p, v, f)
            for w, p, v, f in predict_tile(predictor, reader, side)
        )

    def reopen() -> gdal.Dataset:
        return band_stack(tile, settings)[0] if direct else open_raster(source)

    plan, rules = check_plan(ds, predictor, reader, opts, source, reopen)
    painted = _checked(painted, plan, classes)

    names = {str(c.id): c.name for c in predictor.metadata.classes}
    metadata = {"TILE": tile.id, "WATERGEE_STAGE": "classify", "MODE": opts.mode,
                "MODEL": str(opts.model), "CLASSES": ",".join(f"{k}:{v}" for k, v in names.items()),
                "NODATA": str(NODATA), "WATER_SWIR_CHECK": rules["swir"],
                "WATER_VEGETATION_CHECK": rules["vegetation"]}  # fmt: skip
    target = layout.classes(out, tile, opts.mode)
    outputs = [target]
    band = class_band("class", {c.id: c.name for c in predictor.metadata.classes})
    probability_path = layout.probabilities(out, tile, opts.mode)
    # uint8 probabilities are stored x250: GDAL's scale gives 0-1 back to every reader
    scale = 1 / 250 if opts.probabilities == "uint8" else None
    probability_specs = [
        BandSpec(f"p_{c.name or c.id}", scale, 0.0 if scale else None)
        for c in predictor.metadata.classes
    ]
    classified = 0  # pixels given a class: the file written must hold exactly these
    with create_geotiff(target, grid, [band], np.uint8, NODATA, settings.output, metadata,
                        overviews=True) as writer:  # fmt: skip
        if opts.probabilities == "none":
            for window, labels, _, valid in painted:
                writer.write(window, np.where(valid, labels, NODATA).astype(np.uint8))
                classified += int(valid.sum())
        else:
            dtype = np.uint8 if opts.probabilities == "uint8" else np.float32
            nodata = NODATA if dtype is np.uint8 else float("nan")
            with create_geotiff(probability_path, grid, probability_specs, dtype, nodata,
                                settings.output, metadata,
                                overviews="AVERAGE") as prob_writer:  # fmt: skip
                for window, labels, probabilities, valid in painted:
                    writer.write(window, np.where(valid, labels, NODATA).astype(np.uint8))
                    classified += int(valid.sum())
                    planes = np.moveaxis(probabilities, -1, 0)
                    if dtype is np.uint8:
                        planes = np.where(valid, np.rint(planes * 250), NODATA).astype(np.uint8)
                    else:
                        planes = np.where(valid, planes, np.nan).astype(np.float32)
                    prob_writer.write(window, planes)
            outputs.append(probability_path)
    check_written(outputs, classified, source)
    if opts.quicklook:
        look = layout.quicklook(out, tile, opts.mode)
        write_quicklook(target, look, ds)
        outputs.append(look)
    outputs.append(write_item(target, sources, "classify"))
    details = {"mode": opts.mode, "window": side, "water_swir_check": rules["swir"],
               "water_vegetation_check": rules["vegetation"]}  # fmt: skip
    for check in plan.checks if plan is not None else []:
        details[f"not_water_by_{check.name}"] = check.changed
        details[f"unclassified_by_{check.name}"] = check.unclassified
        log.info("%s: %d px called water failed %s: %d given their next class, %d no data",
                 tile.id, check.changed + check.unclassified, check.rule, check.changed,
                 check.unclassified)  # fmt: skip
    log.info("%s: classified (%s, %s, window %d px)", tile.id, opts.mode,
             predictor.metadata.kind, side)  # fmt: skip
    return StageResult(inputs, outputs, details)


def _checked(
    painted: Iterator[tuple[Window, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]],
    plan: _CheckPlan | None,
    classes: np.ndarray,
) -> Iterator[tuple[Window, np.ndarray, np.ndarray, np.ndarray]]:
    """(window, labels, probabilities, valid) with the checks on water applied."""
    for window, labels, probabilities, valid, features in painted:
        if plan is not None:
            plan.apply(window, labels, probabilities, valid, features, classes)
        yield window, labels, probabilities, valid


def _classify_segments(
    predictor: Predictor,
    reader: FeatureReader,
    segments_path: Path,
    centroids: Path,
    opts: ClassifySettings,
    side: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(class per segment id, mean probabilities per segment id); index 0 is no segment."""
    segments_ds = open_raster(segments_path)
    count = _segment_count(segments_ds)
    classes = np.array(predictor.classes)
    k = len(classes)
    if opts.superpixel_rule == "seed":
        _, _, _, seeds = read_points(centroids, ["segment_id", "seed_row", "seed_col"])
        ids, rows, cols = seeds["segment_id"], seeds["seed_row"], seeds["seed_col"]
        patches = extract_patches(
            reader, rows.astype(np.int64), cols.astype(np.int64), predictor.field
        )
        ok = ~np.isnan(patches).any(axis=(1, 2, 3))
        probabilities = np.zeros((count + 1, k), np.float32)
        if ok.any():
            probabilities[ids[ok].astype(np.int64)] = predictor.patches(patches[ok])
        known = np.zeros(count + 1, bool)
        known[ids[ok].astype(np.int64)] = True
    else:
        sums = np.zeros((count + 1, k))
        pixels = np.zeros(count + 1)
        for window, probs, valid, _ in predict_tile(predictor, reader, side):
            seg = np.maximum(read_codes(segments_ds, window), 0)
            use = valid & (seg > 0)
            ids = seg[use]
            if opts.superpixel_rule == "majority":
                votes = np.eye(k, dtype=np.float32)[probs[use].argmax(-1)]
            else:
                votes = probs[use]
            for c in range(k):
                sums[:, c] += np.bincount(ids, weights=votes[:, c], minlength=count + 1)
            pixels += np.bincount(ids, minlength=count + 1)
        known = pixels > 0
        probabilities = (sums / np.maximum(pixels, 1)[:, None]).astype(np.float32)
    segment_class = np.where(known, classes[probabilities.argmax(1)], NODATA).astype(np.int64)
    segment_class[0] = NODATA
    return segment_class, probabilities


def _segment_count(ds) -> int:
    """The largest segment id: from the superpixel stage's metadata, else by a scan."""
    recorded = ds.GetMetadataItem("SEGMENTS")
    if recorded is not None:
        return int(recorded)
    windows = iter_windows(ds.RasterXSize, ds.RasterYSize, 2048)
    return max((int(read_codes(ds, window).max()) for window in windows), default=0)


def _paint(segments_path: Path, segment_class: np.ndarray, probabilities: np.ndarray):
    """Segment classes and probabilities onto the segment raster, window by window, through
    one lookup each: never a scan of the raster per segment."""
    ds = open_raster(segments_path)
    for window in iter_windows(ds.RasterXSize, ds.RasterYSize, 2048):
        ids = np.maximum(read_codes(ds, window), 0)
        labels = segment_class[ids]
        yield window, labels, probabilities[ids], labels != NODATA, None
