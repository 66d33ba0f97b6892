"""denoise: correct a noisy water label raster, per tile.

method nir_split (default): from a seeded sample of the labelled water, drop its bright mode in
the near infrared when Otsu's split is clear, and add every pixel as close to the kept water's
features as most of it (watergee.nirsplit).

method water_gee: per round, draw as many non-water as water samples (without replacement,
seeded), train a fresh pixel CNN, predict the whole tile densely, and keep as water only pixels
predicted with a probability above the threshold whose features lie within mean +- k sd of the
current water in most features (and below the elevation cut-off). The last round's water is the
corrected label.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from watergee.core import layout
from watergee.core.config import DenoiseSettings, Settings
from watergee.core.errors import TileInputError
from watergee.core.records import write_json_atomic
from watergee.core.stage import StageResult
from watergee.core.tiles import Tile
from watergee.denoising import agreement, spectrally_consistent
from watergee.features import FeatureReader, extract_patches
from watergee.io.labels import check_labels, label_raster_for
from watergee.io.raster import (
    class_band,
    create_geotiff,
    grid_of,
    iter_windows,
    on_grid,
    open_raster,
    read_codes,
)
from watergee.metrics import RunningMoments
from watergee.models.fitting import fit_arrays
from watergee.models.inference import Predict, predict_windows
from watergee.models.pixelcnn import HALO, PATCH, build_pixelcnn
from watergee.models.predictor import compiled_forward
from watergee.models.runtime import tensorflow
from watergee.nirsplit import (
    MINIMUM_WATER,
    Split,
    WaterModel,
    correct,
    darkness_channel,
    split_darkness,
)
from watergee.sampling import Candidates, patch_fits, pixel_keys

WATER, LAND, NODATA = 1, 0, 255
#: Fewest training steps per epoch.
STEPS = 40
log = logging.getLogger(__name__)


def _reader(ds, opts: DenoiseSettings, grid) -> FeatureReader:
    reader = FeatureReader.open(ds, opts.bands, opts.indices)
    if opts.dem is None:
        if opts.max_elevation is not None:
            raise TileInputError("denoise.max_elevation needs denoise.dem (an elevation raster)")
        return reader
    dem, _ = on_grid(opts.dem, grid)
    return FeatureReader(ds, reader.bands, reader.indices, ((dem, opts.dem_scale, "DEM"),))


def _draw(
    water: np.ndarray,
    usable: np.ndarray,
    limit: int,
    seed: int,
    tile: str,
    round_: int,
    window: int,
    classes: tuple[int, ...] = (WATER, LAND),
):
    """Keyed draw of up to `limit` water and as many non-water pixels (with `classes` of
    WATER alone: up to `limit` water pixels)."""
    pools = {cls: Candidates(limit) for cls in classes}
    for w in iter_windows(water.shape[1], water.shape[0], window):
        block_water, block_usable = water[w.slices], usable[w.slices]
        for cls, pool in pools.items():
            mask = (block_water if cls == WATER else ~block_water) & block_usable
            rows, cols = np.nonzero(mask)
            rows, cols = rows + w.row, cols + w.col
            keys = pixel_keys(seed, tile, rows, cols, round_, cls)
            pool.offer(keys, rows, cols, np.full(len(rows), cls))
    count = min(len(pool.keys) for pool in pools.values())
    rows, cols, drawn = [], [], []
    for cls, pool in pools.items():
        _, r, c, _ = pool.ordered()
        rows.append(r[:count])
        cols.append(c[:count])
        drawn.append(np.full(count, cls))
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(drawn)


def _window_predictor(model, mean: np.ndarray, std: np.ndarray) -> Predict:
    forward = compiled_forward(model)
    return lambda x, rows, cols: forward((np.moveaxis(x, 0, -1)[None] - mean) / std)[0]


def training_arrays(
    patches: np.ndarray, classes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(standardised patches, one-hot targets, channel mean, channel sd) of a round's samples;
    output channel 0 is water, as in water_gee."""
    mean = patches.reshape(-1, patches.shape[-1]).mean(0).astype(np.float32)
    std = patches.reshape(-1, patches.shape[-1]).std(0)
    std = np.where(std > 0, std, 1).astype(np.float32)
    target = np.eye(2, dtype=np.float32)[(classes == LAND).astype(int)][:, None, None, :]
    return (patches - mean) / std, target, mean, std


def _fit(patches: np.ndarray, classes: np.ndarray, opts: DenoiseSettings, seed: int):
    tensorflow()
    import keras

    keras.utils.set_random_seed(seed)
    x, target, mean, std = training_arrays(patches, classes)
    model = build_pixelcnn(patches.shape[-1], 2)
    # a small sample set gets STEPS updates per epoch (batches of 64 at least), at a rate
    # scaled to its batch
    batch = int(np.clip(len(patches) // STEPS, min(64, opts.batch_size), opts.batch_size))
    rate = opts.learning_rate * float(np.sqrt(batch / opts.batch_size))
    losses = fit_arrays(model, x, target, epochs=opts.epochs, batch_size=batch,
                        learning_rate=rate, seed=seed, settle=opts.settle)  # fmt: skip
    log.debug("round trained for %d epochs, loss %.4f", len(losses), losses[-1])
    return model, mean, std


def check(settings: Settings) -> None:
    """The one noisy label raster every tile reads, opened before any tile runs."""
    check_labels(settings.denoise.labels)


def _self_training(
    tile: Tile,
    reader: FeatureReader,
    water: np.ndarray,
    usable: np.ndarray,
    moments: RunningMoments,
    opts: DenoiseSettings,
    window_size: int,
) -> tuple[np.ndarray, dict[str, Any]]:
    """water_gee's rounds; returns the last round's water and the rounds' figures."""
    rounds: list[dict[str, Any]] = []
    for number in range(opts.rounds):
        if not water.any() or water.sum() == usable.sum():
            rounds.append({"round": number + 1, "stopped": "only one class left"})
            break
        rows, cols, classes = _draw(
            water, usable, opts.max_samples, opts.seed, tile.id, number, window_size
        )
        patches = extract_patches(reader, rows, cols, PATCH)
        model, mean, std = _fit(patches, classes, opts, opts.seed + number)
        updated = np.zeros_like(water)
        updated_moments = RunningMoments(len(reader.names))
        predict = _window_predictor(model, mean, std)
        for w, probabilities, valid, features in predict_windows(
            predict, reader, PATCH, window_size, 2
        ):
            keep = (probabilities[..., 0] > opts.threshold) & valid & usable[w.slices]
            keep &= spectrally_consistent(
                features, moments.mean, moments.std, opts.sd_range, opts.majority
            )
            keep &= _below_cut_off(features, reader, opts)
            updated[w.slices] = keep
            updated_moments.add(features, keep)
        rounds.append({
            "round": number + 1,
            "samples_per_class": int(len(rows) // 2),
            "water_before": int(water.sum()),
            "water_after": int(updated.sum()),
            "changed": int((updated != water).sum()),
            "agreement_with_previous": round(agreement(updated, water), 6),
        })  # fmt: skip
        water, moments = updated, updated_moments
    return water, {"rounds": rounds}


def _nir_split(
    tile: Tile,
    reader: FeatureReader,
    labelled: np.ndarray,
    usable: np.ndarray,
    opts: DenoiseSettings,
    window_size: int,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The NIR split and the extension from the kept water; returns the water and figures."""
    # Spectral channels only: elevation (the DEM extra, or a features band named DEM/4000) and
    # LINE (a river's shape: a lake has none) would keep the water to the places and shapes the
    # labels already have.
    own = [
        i for i, name in enumerate(reader.names)
        if not name.casefold().startswith("dem") and name != "LINE"
    ]  # fmt: skip
    names = [reader.names[i] for i in own]
    try:
        channel = darkness_channel(names)
    except ValueError as exc:
        raise TileInputError(
            f"{reader.ds.GetDescription()}: denoise.method nir_split: {exc}"
        ) from None
    rows, cols, _ = _draw(
        labelled, usable, opts.max_samples, opts.seed, tile.id, 0, window_size, (WATER,)
    )
    samples = extract_patches(reader, rows, cols, 1)[:, 0, 0, own].astype(np.float64)
    model: WaterModel | None = None
    stopped: dict[str, str] = {}
    if len(rows) < MINIMUM_WATER:
        # The labels stay as they are (the elevation cut-off still applies).
        stopped = {"stopped": f"{len(rows)} labelled water samples: too few to model"}
        split = Split(np.inf, 0.0, False)
    else:
        split = split_darkness(samples[:, channel], opts.separability, MINIMUM_WATER)
    kept = samples[samples[:, channel] <= split.limit]
    if not stopped and opts.extend_quantile is not None:
        model = WaterModel.fit(kept, opts.extend_quantile)
    water = np.zeros_like(labelled)
    for w in iter_windows(labelled.shape[1], labelled.shape[0], window_size):
        inside = usable[w.slices]
        if not inside.any():
            continue
        features = reader.read(w)
        block = np.zeros(inside.shape, bool)
        pixels = features[own][:, inside].astype(np.float64)
        block[inside] = correct(pixels, labelled[w.slices][inside], channel, split, model)
        water[w.slices] = block & _below_cut_off(features, reader, opts)
    return water, {
        "nir_split": {
            "channel": names[channel],
            "samples": len(rows),
            **split.report(),
            "kept_samples": len(kept),
            "water_mean": {n: round(float(v), 5) for n, v in zip(names, kept.mean(0), strict=True)}
            if len(kept)
            else {},
        },
        "removed": int((labelled & ~water).sum()),
        "added": int((water & ~labelled).sum()),
        **stopped,
    }


def _below_cut_off(
    features: np.ndarray, reader: FeatureReader, opts: DenoiseSettings
) -> np.ndarray:
    """Where the elevation is not above denoise.max_elevation (everywhere without one)."""
    if opts.max_elevation is None:
        return np.ones(features.shape[1:], bool)
    return features[reader.names.index("DEM")] * opts.dem_scale <= opts.max_elevation


def denoise(tile: Tile, settings: Settings, out: Path) -> StageResult:
    opts = settings.denoise
    work = opts.work or out
    stack_path = layout.require_stack(work, tile)
    ds = open_raster(stack_path)
    grid = grid_of(ds)
    reader = _reader(ds, opts, grid)
    label_path = label_raster_for(tile, opts.labels)
    labels, warped = on_grid(label_path, grid)
    window_size = settings.output.window
    # The CNN reads 7 x 7 patches; the NIR split looks at one pixel.
    patch = PATCH if opts.method == "water_gee" else 1

    # The noisy labels, and where the features a pixel needs exist.
    water = np.zeros((grid.height, grid.width), bool)
    usable = np.zeros_like(water)
    # Feature statistics of the current water, for water_gee's spectral check.
    moments = RunningMoments(len(reader.names))
    for w in iter_windows(grid.width, grid.height, window_size):
        codes = read_codes(labels, w)
        # Feature channels are NaN wherever they lack data, LINE's own reach included.
        features = reader.read(w, halo=HALO)
        inner = (slice(HALO, HALO + w.height), slice(HALO, HALO + w.width))
        fits = patch_fits(~np.isnan(features).any(axis=0), patch)[inner]
        usable[w.slices] = fits & (codes >= 0) & ~np.isin(codes, opts.nodata_codes)
        water[w.slices] = np.isin(codes, opts.water_codes) & usable[w.slices]
        moments.add(features[:, inner[0], inner[1]], water[w.slices])
    initial = water.copy()
    if opts.method == "nir_split":
        water, details = _nir_split(tile, reader, water, usable, opts, window_size)
    else:
        water, details = _self_training(tile, reader, water, usable, moments, opts, window_size)

    target = layout.denoised(out, tile)
    metadata = {"TILE": tile.id, "WATERGEE_STAGE": "denoise", "SOURCE_LABELS": label_path.name,
                "CLASSES": "1 water, 0 not water, 255 no data"}  # fmt: skip
    band = class_band("water", {WATER: "water", LAND: "not water"})
    with create_geotiff(
        target,
        grid,
        [band],
        np.uint8,
        NODATA,
        settings.output,
        metadata,
        overviews="NEAREST",
        product=False,
    ) as writer:
        for w in iter_windows(grid.width, grid.height, window_size):
            block = np.where(water[w.slices], WATER, LAND).astype(np.uint8)
            block[~usable[w.slices]] = NODATA
            writer.write(w, block)
    report = {
        "tile": tile.id,
        "labels": {"path": str(label_path), "warped": warped},
        "features": reader.names,
        "usable_pixels": int(usable.sum()),
        "water_initial": int(initial.sum()),
        "water_final": int(water.sum()),
        "changed_from_initial": int((water != initial).sum()),
        "agreement_with_initial": round(agreement(water, initial), 6),
        "method": opts.method,
        **details,
    }
    report_path = layout.denoise_report(out, tile)
    write_json_atomic(report_path, report)
    inputs = [stack_path, label_path, *([opts.dem] if opts.dem else [])]
    log.info("%s: water %d -> %d pixels (%s)", tile.id, int(initial.sum()), int(water.sum()),
             opts.method)  # fmt: skip
    return StageResult(inputs, [target, report_path], {"water": int(water.sum())})
