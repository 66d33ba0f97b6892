"""Typed settings for every stage, resolved once at the edge and handed to workers whole.

Precedence: built-in defaults, then a YAML file, then `--set section.key=value` overrides.
Unknown keys are rejected with their dotted name, so a typo never silently falls back to a
default. A stage's settings hash covers only the science fields of the sections it reads: speed,
storage and placement knobs (marked with `knob`) and the cluster section never make a finished
tile look stale.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from watergee import __version__
from watergee.core.atomic import atomic_path
from watergee.core.errors import ConfigError
from watergee.core.text import read_text

ResampleMethod = Literal["near", "bilinear", "cubic", "cubicspline", "lanczos", "average", "mode"]
IndexName = Literal["NDWI", "MNDWI", "NDVI", "LINE"]


#: Field marker of a knob: a setting that changes speed, memory, storage or placement but
#: never a result, and so stays out of every settings hash.
KNOB = {"knob": True}


#: Field marker of a setting added after outputs were made without it, whose default is what
#: they were made with: at its default it stays out of the hash, so they stay current.
LATER = {"later": True}


def knob(default: Any = ..., **kwargs: Any) -> Any:
    """A `Field` that is a knob (see KNOB)."""
    return Field(default, json_schema_extra=KNOB, **kwargs)


def later(default: Any, **kwargs: Any) -> Any:
    """A `Field` added later whose default changes nothing (see LATER)."""
    return Field(default, json_schema_extra=LATER, **kwargs)


def _marked(section: type[BaseModel], name: str, marker: str) -> bool:
    extra = section.model_fields[name].json_schema_extra
    return isinstance(extra, dict) and bool(extra.get(marker))


def is_knob(section: type[BaseModel], name: str) -> bool:
    return bool(getattr(section, "placement_only", False)) or _marked(section, name, "knob")


def is_later(section: type[BaseModel], name: str) -> bool:
    return _marked(section, name, "later")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sentinel2Settings(Section):
    nodata: int = Field(
        0, ge=0, le=65535, description="DN that marks no data in Sentinel-2 band files."
    )
    quantification: float = Field(
        10000.0, gt=0, description="Reflectance = (DN + offset) / quantification."
    )
    offset: Literal["auto"] | float = Field(
        "auto",
        description=(
            "DN offset added before scaling. 'auto' reads BOA_ADD_OFFSET / RADIO_ADD_OFFSET "
            "from the product metadata (-1000 from processing baseline 04.00 on) and uses 0 "
            "when the input has no metadata file."
        ),
    )


class OutputSettings(Section):
    compress: Literal["DEFLATE", "ZSTD", "LZW", "NONE"] = knob(
        "DEFLATE",
        description="GeoTIFF compression of the products (class maps, probabilities, mosaics, "
        "maps cut to a boundary, transferred, sieved, extracted): DEFLATE is read by every GIS "
        "tool.",
    )
    intermediate_compress: Literal["ZSTD", "DEFLATE", "LZW", "NONE"] = knob(
        "ZSTD",
        description="GeoTIFF compression of the rasters watergee reads back itself (resampled "
        "bands, the band stack, indices, segments, denoised labels, tiles cut to what they "
        "own, Earth Engine download cells); ZSTD is written at level 1: a 10-band stack in "
        "half DEFLATE's time, 2 % larger on a synthetic tile.",
    )
    blocksize: int = knob(
        512, ge=16, multiple_of=16, description="Internal GeoTIFF tile size in pixels."
    )
    window: int = knob(
        2048,
        ge=64,
        description="Side of the square windows, in pixels, that stages read and write at "
        "a time; bounds memory per worker independently of the tile size.",
    )
    threads: int = knob(
        0,
        ge=0,
        description="Threads each task may use: JPEG2000 and GeoTIFF decoding, GeoTIFF "
        "compression (GDAL NUM_THREADS; compression stays in one thread on GDAL before 3.7.3), "
        "random-forest prediction, the windows of a mosaic; 0: all CPUs. Set 1 when many "
        "workers share a node.",
    )
    overviews: Literal["products", "all", "none"] = knob(
        "products",
        description="Which rasters get overviews (Cloud Optimized GeoTIFF): the products (class "
        "maps, probabilities, merged, cut to a boundary, sieved, extracted), all (also the band "
        "stack, resampled bands, indices, segments, denoised labels, tiles cut to what they "
        "own) or none. Overviews add about a "
        "third to the file size; writing time is in the README (Overviews).",
    )


class ResampleSettings(Section):
    method: ResampleMethod = Field(
        "bilinear",
        description="GDAL resampling used to bring the 20 m bands to 10 m. Bilinear keeps "
        "reflectance within the range of its neighbours; 'near' replicates pixels.",
    )
    bands: list[Literal["B05", "B06", "B07", "B8A", "B11", "B12"]] = Field(
        default_factory=lambda: ["B05", "B06", "B07", "B8A", "B11", "B12"],
        min_length=1,
        description="20 m bands to resample to the tile's 10 m grid.",
    )


class IndicesSettings(Section):
    indices: list[IndexName] = Field(
        default_factory=lambda: ["NDWI", "MNDWI", "NDVI", "LINE"],
        min_length=1,
        description="Indices written, in this band order: NDWI (green, NIR), MNDWI (green, "
        "SWIR1), NDVI (NIR, red), LINE (max of four directional 5x5 line filters of MNDWI).",
    )

    @field_validator("indices")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("indices must not repeat")
        return value


BandRef = str | int
#: Paths are made absolute where the run is resolved: workers may run elsewhere (Slurm).
AbsolutePath = Annotated[Path, AfterValidator(lambda p: p.expanduser().resolve())]
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]
ClassCode = Annotated[int, Field(ge=0, le=254)]


def _matching(pattern: str, what: str):
    """A validator of strings in a format other programs parse later (Slurm, Dask): a typo is
    caught here, naming the format, not in a job that never starts."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value.strip()):
            raise ValueError(f"{value!r} is not {what}")
        return value.strip()

    return AfterValidator(check)


def _minutes_as_text(value: object) -> object:
    """A bare number is Slurm's minutes: YAML reads `walltime: 90` as an integer."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


SlurmTime = Annotated[
    str,
    BeforeValidator(_minutes_as_text),
    _matching(
        r"\d+|\d+:\d{1,2}(:\d{1,2})?|\d+-\d+(:\d{1,2}){0,2}",
        "a Slurm time (minutes, HH:MM:SS or D-HH:MM:SS)",
    ),
]
Duration = Annotated[
    str,
    _matching(
        r"\d+(\.\d+)?\s*(ms|s|m|h|d|seconds?|minutes?|hours?|days?)",
        "a duration such as 55m, 2h or 90s",
    ),
]
ByteSize = Annotated[
    str, _matching(r"\d+(\.\d+)?\s*([kKMGTP]i?B|B)?", "a size such as 16GB or 500MiB")
]


class SuperpixelSettings(Section):
    bands: list[BandRef] = Field(
        default_factory=lambda: ["B04", "B03", "B02"],
        min_length=1,
        description="Bands segmented, by description (B04) or 1-based index; three bands in "
        "red, green, blue order are converted to CIELAB.",
    )
    region_size: int = Field(
        15, ge=2, description="Mean superpixel side in pixels (segments = pixels / size^2)."
    )
    compactness: float = Field(
        10.0, gt=0, description="SLIC compactness: higher gives squarer, more regular segments."
    )
    stretch: tuple[float, float] = Field(
        (1.0, 99.0),
        description="Percentiles of each band (over the whole tile) mapped to 0 and 1.",
    )
    lab: bool = Field(True, description="Convert three-band input to CIELAB before SLIC.")
    sigma: float = Field(0.0, ge=0, description="Gaussian smoothing before SLIC, in pixels.")
    max_iter: int = Field(10, ge=1, description="SLIC k-means iterations.")
    block: int = Field(
        2048,
        ge=64,
        description="Tiles are segmented in blocks of this side (plus a margin) to bound "
        "memory; a segment belongs to the block holding its centroid, so blocks leave no seams.",
    )
    margin: int | None = Field(
        None, ge=0, description="Block margin in pixels; default three region sizes."
    )

    @field_validator("stretch")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= value[0] < value[1] <= 100:
            raise ValueError("stretch must be two percentiles, low < high, within 0..100")
        return value


class SampleSettings(Section):
    labels: AbsolutePath | None = Field(
        None,
        description="Label raster for every tile, or a folder of label rasters named by tile id "
        "or MGRS tile (T33UUU). A label raster on another grid is warped to the tile's grid with "
        "nearest neighbour, so codes are never blended.",
    )
    work: AbsolutePath | None = knob(
        None,
        description="Folder holding the tiles' stacks (and segments) from earlier stages; "
        "default: the output folder.",
    )
    classes: dict[int, int] = Field(
        default_factory=dict,
        description="Label code -> class id, e.g. {11: 1, 5: 12}. Empty: every code is its "
        "own class.",
    )
    class_names: dict[int, str] = knob(
        default_factory=dict,
        description="Class id -> name, for reports and model metadata (classify's checks "
        "on water apply to the class named 'water').",
    )
    ignore: list[int] = Field(
        default_factory=lambda: [0],
        description="Label codes never sampled (unlabelled, no data).",
    )
    unmapped: Literal["error", "ignore"] = Field(
        "error",
        description="A label code that is neither in 'classes' nor in 'ignore': fail the tile, "
        "or skip those pixels.",
    )
    quota: int | dict[int, int] = Field(
        1000,
        description="Samples per class per tile, drawn without replacement: one number for "
        "every class or a class id -> number table.",
    )
    required: list[int] = knob(
        default_factory=list,
        description="Class ids that must get samples; `sample validate` fails if one has none.",
    )
    mode: Literal["pixel", "superpixel", "points"] = Field(
        "pixel",
        description="pixel: any labelled pixel; superpixel: one candidate per segment, at its "
        "seed pixel (run `superpixel` first); points: the points of 'points' with their class "
        "attribute.",
    )
    points: AbsolutePath | None = Field(
        None, description="Vector file of labelled points (mode: points)."
    )
    attribute: str = Field("ValValue", description="Class attribute of 'points'.")
    min_distance: int = Field(
        0, ge=0, description="Minimum distance in pixels between two samples of a tile."
    )
    patch: int = Field(
        7,
        ge=1,
        description="Patch side in pixels. The sample pixel is at row and column patch // 2 "
        "of its patch: the exact centre for odd sizes, the lower right of the central 2 x 2 "
        "for even sizes. Classification uses the same convention.",
    )
    bands: list[BandRef] = Field(
        default_factory=list,
        description="Bands of the stack in each patch, by description or index; empty: all.",
    )
    indices: list[IndexName] = Field(
        default_factory=lambda: ["NDWI", "MNDWI", "NDVI"],
        description="Index channels appended after the bands (NDWI, MNDWI, NDVI, LINE), "
        "computed from the stack's B03 B04 B08 B11 as the indices stage does. Band ratios do "
        "not change with a scene's brightness: with them models transfer between scenes.",
    )
    validation: float = Field(
        0.2,
        ge=0,
        lt=1,
        description="Share held out for validation: of the samples (split: pixels), of each "
        "class's blocks (split: blocks; the share of samples varies with the blocks drawn).",
    )
    split: Literal["blocks", "pixels"] = Field(
        "blocks",
        description="How validation samples are held out. blocks: per class, every sample in a "
        "keyed share of square blocks of `block` pixels, because neighbouring pixels of one "
        "field or polygon are not independent and a pixel-wise split overstates accuracy "
        "(North Carolina Landsat, pixel CNN: validation OA 0.97 by pixels, 0.87 by blocks, "
        "0.52-0.56 on independent points). "
        "pixels: each sample on its own, as the published water_gee and OSMLULC code did.",
    )
    block: int = Field(
        64, ge=2, description="Side in pixels of the blocks held out together (split: blocks)."
    )
    seed: Seed = Field(0, description="Seed of every random choice: same seed, same samples.")
    shard_size: int = knob(4096, ge=1, description="Samples per shard file.")
    water_class: int | None = Field(
        None,
        description="Class id of water. When set, samples of other classes whose MNDWI exceeds "
        "'water_guard' are dropped: incomplete water labels (OpenStreetMap) leave unmapped "
        "lakes in the background classes. Named 'water' in the model unless class_names "
        "names it (classify's checks on water look for that name).",
    )
    water_guard: float = Field(
        0.2,
        ge=-1,
        le=1,
        description="MNDWI above which a non-water sample is taken for unmapped water.",
    )
    water_separability: float | None = Field(
        0.7,
        gt=0,
        lt=1,
        description="When water_class is set, water samples in the bright near-infrared mode "
        "of the tile's water samples (shore, sand, trees inside water polygons) are dropped, "
        "if Otsu's split there explains at least this share of the variance (the label-noise "
        "correction's rule, denoise.separability). null: never.",
    )

    def class_of(self, code: int) -> int | None:
        """Class id of a label code: None when ignored; KeyError when unmapped."""
        if code in self.ignore:
            return None
        if not self.classes:
            return code
        return self.classes[code]

    @field_validator("quota")
    @classmethod
    def _quota_not_negative(cls, quota: int | dict[int, int]) -> int | dict[int, int]:
        counts = quota.values() if isinstance(quota, dict) else [quota]
        if any(c < 0 for c in counts):
            raise ValueError("samples per class must be 0 or more")
        return quota

    def quota_of(self, class_id: int) -> int:
        return self.quota if isinstance(self.quota, int) else self.quota.get(class_id, 0)


ModelKind = Literal["pixelcnn", "dense-resnet", "resnet", "svm", "rf"]


class TrainSettings(Section):
    model: ModelKind = Field("pixelcnn", description="Model kind to train.")
    samples: AbsolutePath | None = knob(
        None, description="Sample set folder to train from (`watergee run`: its samples)."
    )
    epochs: int = Field(30, ge=1, description="Most training epochs (CNNs).")
    batch_size: int = Field(256, ge=1, description="Samples per gradient step (CNNs).")
    learning_rate: float = Field(1e-3, gt=0, description="Adam learning rate (CNNs).")
    patience: int = Field(
        5, ge=1, description="Epochs without a better validation loss before stopping."
    )
    class_weights: Literal["balanced", "none"] = Field(
        "balanced",
        description="balanced: weight each class by the inverse of its share of the training "
        "samples, so rare classes such as water count as much as common ones.",
    )
    shuffle_buffer: int = Field(
        20000,
        ge=1,
        description="CNNs: samples shuffled together when the training patches take more "
        "than 1 GiB and are read from their shards every epoch (smaller sets are held in "
        "memory and shuffled whole).",
    )
    seed: Seed = Field(0, description="Seed of weights, shuffling and forests.")
    mixed_precision: bool = Field(False, description="float16 compute on a GPU (CNNs).")
    features: Literal["centre", "patch-stats"] = Field(
        "centre",
        description="SVM / RF inputs: the sample pixel's channels, or those plus the mean and "
        "standard deviation of each channel over the patch.",
    )
    svm_c: float = Field(10.0, gt=0, description="SVM regularisation C (RBF kernel).")
    svm_max_samples: int = Field(
        20000, ge=1, description="SVM training samples at most (kernel SVMs scale as n^2)."
    )
    resnet_depth: int = Field(29, ge=11, description="Patch ResNet depth, 9n + 2 (OSMLULC: 29).")
    resnet_kernel: int = Field(5, ge=1, description="Patch ResNet kernel side (OSMLULC: 5).")
    dense_blocks: int = Field(
        4, ge=0, description="Dense ResNet residual blocks; receptive field 3 + 2 per block."
    )
    dense_width: int = Field(64, ge=1, description="Dense ResNet channels per layer.")
    rf_trees: int = Field(300, ge=1, description="Random forest trees.")
    rf_max_depth: int | None = Field(None, ge=1, description="Random forest depth limit.")
    augment_gain: float = Field(
        3.0,
        ge=1,
        description="Photometric augmentation: each training patch's reflectance times a "
        "brightness gain drawn log-uniformly in [1/gain, gain], so that a model learns band "
        "ratios rather than one scene's brightness; 1: none.",
    )
    augment_haze: float = Field(
        0.1,
        ge=0,
        description="Photometric augmentation: each training patch's reflectance plus a haze "
        "offset drawn uniformly in [-haze, haze] in blue and falling as wavelength^-4 (path "
        "radiance: top-of-atmosphere against surface reflectance); 0: none.",
    )
    augment_jitter: float = Field(
        0.2,
        ge=0,
        description="Photometric augmentation of CNNs: each band of each training patch times "
        "a factor of its own, exp(N(0, jitter^2)) (about +-20 % at 0.2): the shape of a "
        "spectrum differs between sensors and processing levels, not only its brightness. "
        "Not applied to SVM / RF copies; 0: none.",
    )
    augment_copies: int = Field(
        4,
        ge=0,
        description="SVM / RF: augmented copies of each training sample added to the originals "
        "(CNNs draw a new augmentation every epoch instead).",
    )


class DenoiseSettings(Section):
    labels: AbsolutePath | None = Field(
        None,
        description="Noisy water label raster for every tile, or a folder / .txt list of them "
        "named by tile (warped to the tile grid by nearest neighbour when needed).",
    )
    work: AbsolutePath | None = knob(
        None, description="Folder holding the tiles' stacks; default: the output folder."
    )
    water_codes: list[int] = Field(
        default_factory=lambda: [1],
        min_length=1,
        description="Label codes meaning water (Landsat QA water bit: 1; Sentinel-2 SCL: 6).",
    )
    nodata_codes: list[int] = Field(
        default_factory=list, description="Label codes meaning no data (never trained on)."
    )
    bands: list[BandRef] = Field(
        default_factory=lambda: ["B02", "B03", "B04", "B08", "B11"],
        description="Stack bands used as features (water_gee: blue, green, red, NIR, SWIR1).",
    )
    indices: list[IndexName] = Field(
        default_factory=lambda: ["MNDWI", "LINE"],
        description="Index features appended after the bands.",
    )
    dem: AbsolutePath | None = Field(
        None, description="Elevation raster (m), appended as a feature divided by dem_scale."
    )
    dem_scale: float = Field(4000.0, gt=0, description="Elevation divisor (water_gee: 4000).")
    max_elevation: float | None = Field(
        None, description="Water above this elevation (m) is not taken as water (needs dem)."
    )
    method: Literal["nir_split", "water_gee"] = Field(
        "nir_split",
        description="nir_split: drop the labelled water's bright mode in the near infrared "
        "(Otsu's split, when clear) and add pixels close to the kept water's features; removes "
        "whole land covers labelled water and finds water the labels miss, in seconds. "
        "water_gee: the paper's self-training of a pixel CNN; removes scattered errors only.",
    )
    separability: float = Field(
        0.7,
        gt=0,
        lt=1,
        description="nir_split: the labelled water's bright NIR mode (SWIR without a NIR "
        "band) is dropped only when Otsu's split explains at least this share of the variance "
        "and leaves 100 samples at least. One normal mode gives 2/pi (0.64) and is kept whole; "
        "a flat, uniform spread gives 0.75 and is split.",
    )
    extend_quantile: float | None = Field(
        0.05,
        gt=0,
        lt=1,
        description="nir_split: a pixel labelled land becomes water when its Mahalanobis "
        "distance to the kept water is within that of all but this share of the kept water "
        "(null: never).",
    )
    rounds: int = Field(3, ge=1, description="water_gee: self-training rounds.")
    epochs: int = Field(
        5,
        ge=1,
        description="water_gee: training epochs of each round's fresh CNN (the paper: 20 at "
        "batch 64): it must train to confidence, or few pixels pass the probability "
        "threshold and the water collapses.",
    )
    max_samples: int = Field(
        20000,
        ge=10,
        description="water_gee: water samples per round at most, as many non-water. "
        "nir_split: labelled water samples split and modelled (100 at least, or the labels "
        "are kept as they are).",
    )
    threshold: float = Field(
        0.95,
        gt=0,
        lt=1,
        description="water_gee: water probability a pixel needs to stay or become water.",
    )
    sd_range: float = Field(
        3.0,
        gt=0,
        description="water_gee: features must lie within mean +- this many sd of the water.",
    )
    majority: float = Field(
        0.5,
        gt=0,
        le=1,
        description="water_gee: share of features that must lie in that range ('most bands': "
        "over half).",
    )
    batch_size: int = Field(
        1024,
        ge=1,
        description="water_gee: training batch size at most (the paper: 64; with a larger "
        "learning rate, large batches agree with water_gee's training on 99 % of pixels in a "
        "tenth of the time on a CPU). Fewer samples get smaller batches (40 to an epoch, 64 at "
        "least) and a learning rate scaled by the square root of the ratio.",
    )
    learning_rate: float = Field(0.01, gt=0, description="water_gee: Adam learning rate.")
    settle: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="water_gee: a round's training stops once an epoch lowers the loss by less "
        "than this share of the epoch before (0: always train every epoch).",
    )
    seed: Seed = Field(0, description="Seed of sampling and training.")


class ClassifySettings(Section):
    model: AbsolutePath | None = Field(None, description="Model folder (from `watergee train`).")
    work: AbsolutePath | None = knob(
        None,
        description="Folder holding the tiles' stacks (and segments); default: the output folder.",
    )
    mode: Literal["pixel", "superpixel"] = Field(
        "pixel",
        description="pixel: a class per pixel; superpixel: one class per segment of the "
        "superpixel stage, painted back onto its pixels (the checks on water, "
        "water_max_swir and water_max_ndvi, can still change single pixels).",
    )
    source: Literal["stack", "bands"] = Field(
        "stack",
        description="stack: read the 10-band stack written by combine; bands: read a Sentinel-2 "
        "tile's band files directly, resampling the 20 m bands on the fly (no resample or "
        "combine needed, nothing intermediate written, every band decoded once).",
    )
    superpixel_rule: Literal["mean", "majority", "seed"] = Field(
        "mean",
        description="How a segment gets its class: the highest mean probability of its "
        "pixels, the majority of its pixel classes, or the class of the patch at its seed "
        "pixel (one prediction per segment: fastest for patch models).",
    )
    probabilities: Literal["none", "uint8", "float32"] = Field(
        "none",
        description="Also write per-class probabilities: uint8 (probability x 250, 255 = no "
        "data) or float32 (NaN = no data).",
    )
    precision: Literal["float32", "bfloat16", "float16"] = later(
        "float32",
        description="Arithmetic of a CNN's inference: float32, or bfloat16 / float16 with the "
        "weights kept in float32 (Keras mixed precision), faster where the hardware has it "
        "(GPU tensor cores; CPUs with AVX512-BF16 or AMX) but it can change the class of "
        "pixels near a tie between classes: `benchmarks/classify.py --precision` counts them. "
        "SVM / RF and Earth Engine's predict: unused.",
    )
    memory_mb: int = knob(
        1024,
        ge=64,
        description="Memory for one window's features and network activations; sets the "
        "window size of dense inference.",
    )
    window: int | None = knob(
        None, ge=16, description="Window side in pixels; unset: chosen from memory_mb."
    )
    batch_size: int = knob(
        4096, ge=1, description="Patches (patch models) or pixels (SVM, RF) per model call."
    )
    quicklook: bool = Field(
        True,
        description="Also write a PNG quicklook: the classes with a legend, beside the tile in "
        "true colour.",
    )
    water_max_swir: float | None = Field(
        0.15,
        gt=0,
        description="A pixel the model calls water whose reflectance in swir_band exceeds this "
        "gets its next most probable class (no data where the model gave the others none): "
        "open water absorbs the short-wave infrared (real scenes' water at most 0.11), bright "
        "roofs a model extrapolates to do not (0.2-0.5). Per pixel, in superpixel mode too. "
        "null: off. Off for a tile whose stack lacks swir_band or holds it without a scale to "
        "reflectance, and for a model without a water class.",
    )
    swir_band: str = Field(
        "B11",
        description="Stack band (by description) the water_max_swir check reads: Sentinel-2 "
        "B11 (1.61 um); the 1.5-1.7 um band of another sensor.",
    )
    water_max_ndvi: float | None = Field(
        0.25,
        gt=-1,
        lt=1,
        description="A pixel the model calls water whose NDVI (red_band, nir_band) exceeds "
        "this while its nir_band reflectance exceeds vegetation_min_nir is vegetation: it gets "
        "its next most probable class, as for water_max_swir. Catches land as dark as water in "
        "the SWIR (winter top-of-atmosphere conifers: NDVI 0.28-0.49, NIR 0.11-0.19; the real "
        "scenes' water: NDVI below 0.07). null: off. Off for a tile whose stack lacks either "
        "band or holds it without a scale to reflectance.",
    )
    vegetation_min_nir: float = Field(
        0.1,
        ge=0,
        description="Near-infrared reflectance below which water_max_ndvi leaves water alone: "
        "shore and narrow-river water with an NDVI up to 0.4 from the vegetation around it "
        "stays dark in the NIR (0.05-0.07 in the Aberystwyth rivers).",
    )
    red_band: str = Field("B04", description="Stack band of red for water_max_ndvi.")
    nir_band: str = Field("B08", description="Stack band of the near infrared for water_max_ndvi.")
    water_class: int | None = Field(
        None,
        description="Class id the water_max_swir and water_max_ndvi checks apply to; unset: the "
        "model's class named 'water'.",
    )


class ProductSettings(Section):
    mode: Literal["pixel", "superpixel"] = Field(
        "pixel",
        description="Which class maps of the tiles the product stages (clip, merge) read: the "
        "per-pixel or the per-superpixel ones. A tile list entry that is itself a raster is "
        "read as it is.",
    )
    work: AbsolutePath | None = knob(
        None, description="Folder holding the tiles' class maps; default: the output folder."
    )
    input: Literal["classes", "clipped", "transferred", "sieved"] = Field(
        "classes",
        description="Which raster of each tile the product stages read: the class map of "
        "'mode', or what clip, label-transfer or sieve made of it.",
    )


class ClipSettings(Section):
    rule: Literal["mgrs", "footprints", "mask", "none"] = Field(
        "mgrs",
        description="Which part of a tile it alone owns. mgrs: the 100 km MGRS square it is "
        "named after, within its UTM zone (the zone whose central meridian is nearest); "
        "footprints: its polygon in 'footprints'; mask: where 'mask' is non-zero; none: all "
        "of it (with 'aoi' only).",
    )
    footprints: AbsolutePath | None = Field(
        None, description="Vector file of tile footprints (rule: footprints), any OGR format."
    )
    footprint_field: str = Field(
        "Name",
        description="Attribute of 'footprints' naming each tile (e.g. 33UUU); a tile matches "
        "when its id contains the value.",
    )
    mask: AbsolutePath | None = Field(
        None, description="Mask raster (rule: mask): non-zero keeps; any grid (nearest)."
    )
    aoi: AbsolutePath | None = Field(
        None,
        description="Boundary to clip to as well (any OGR vector, reprojected as needed): a "
        "pixel is kept when its centre lies inside.",
    )


class MergeSettings(Section):
    name: str = Field("mosaic", description="Product name: <out>/<name>/<name>.tif.")
    crs: str = Field("EPSG:3035", description="CRS of the mosaic (any GDAL definition).")
    resolution: float = Field(10.0, gt=0, description="Pixel size of the mosaic in CRS units.")
    overviews: Literal["MODE", "NEAREST"] = Field(
        "MODE",
        description="Overview resampling: MODE keeps the most frequent class (never averaged).",
    )


class SieveSettings(Section):
    min_size: int = Field(
        64,
        ge=2,
        description="Patches smaller than this many pixels are merged into their "
        "largest neighbour (OSMLULC: 64 px, 8-connected).",
    )
    min_area: float | None = Field(
        None,
        gt=0,
        description="Minimum patch area in square metres (5000 = 0.5 ha), "
        "converted with the raster's pixel area; overrides min_size.",
    )
    connectivity: Literal[4, 8] = Field(
        8, description="Pixels touching at corners (8) or at edges only (4) belong to one patch."
    )


class ExtractSettings(Section):
    class_id: ClassCode | None = Field(None, description="The class to extract (e.g. 12: water).")
    value: Literal["one", "code"] = Field(
        "one", description="Value of the class's pixels: 1, or the class code itself; others 0."
    )
    quicklook: bool = Field(True, description="Also write a PNG quicklook with a legend.")


class TransferSettings(Section):
    table_file: AbsolutePath | None = Field(
        None,
        description="YAML file with 'table', 'default' and 'names' (as below); its "
        "entries take precedence over the ones set here.",
    )
    table: dict[int, int] = Field(
        default_factory=dict, description="Class code -> new code, e.g. {12: 5} for water."
    )
    default: int | None = Field(
        None,
        description="New code of a class missing from the table; unset: such a class "
        "fails the tile, naming the code and the file.",
    )
    names: dict[int, str] = Field(
        default_factory=dict, description="New code -> class name written in the product."
    )


class PolygoniseSettings(Section):
    classes: list[int] | None = Field(
        None, description="Classes turned into polygons (e.g. [12] for water); unset: all."
    )
    min_area: float = Field(
        0.0, ge=0, description="Polygons smaller than this many square metres are left out."
    )
    format: Literal["gpkg", "fgb"] = Field("gpkg", description="GeoPackage or FlatGeobuf.")


class EvaluateSettings(Section):
    name: str = Field("evaluation", description="Report name: <out>/<name>/<name>.json, .html.")
    classified: AbsolutePath | None = Field(None, description="The class map to evaluate.")
    reference: AbsolutePath | None = Field(
        None,
        description="Reference classes: a raster (warped onto the map grid by nearest), "
        "polygons (a pixel takes a polygon's class when its centre is inside) or points (a "
        "point takes the class of the map pixel it falls in), in any CRS.",
    )
    field: str = Field("class", description="Class attribute of a vector reference.")
    reference_classes: dict[int, int] = Field(
        default_factory=dict,
        description="Reference code -> map class where the legends differ, e.g. {0: 2, 1: 1}; "
        "codes not listed are compared as they are.",
    )
    all_touched: bool = Field(
        False, description="Polygons burn every pixel they touch, not only those whose centre."
    )
    design: Literal["auto", "simple", "stratified"] = Field(
        "auto",
        description="simple: the reference units as a simple random sample; stratified: a "
        "stratified random sample whose strata are the map classes, for area-adjusted accuracy "
        "and area (Olofsson et al. 2014); auto: stratified for points, simple otherwise.",
    )
    confidence: float = Field(0.95, gt=0, lt=1, description="Level of confidence intervals.")
    sample_design: bool = Field(
        False,
        description="Draw a stratified random sample of points from the map for labelling "
        "instead of evaluating: <out>/<name>/<name>-sample.gpkg.",
    )
    sample_size: int = Field(500, ge=1, description="Sample points in all (sample_design).")
    min_per_class: int = Field(
        50, ge=2, description="Fewest points of a rare class (sample_design); capped by its pixels."
    )
    seed: Seed = Field(0, description="Seed of the sample design's draw.")


ClusterKind = Literal["local", "scheduler", "slurm", "slurm-runner"]


class GeeSettings(Section):
    project: str | None = knob(None, description="Earth Engine project id; unset: EE_PROJECT.")
    service_account: str | None = knob(
        None, description="Service account e-mail; unset: the user's stored credentials."
    )
    key_file: AbsolutePath | None = knob(
        None, description="The service account's JSON key file (never printed or logged)."
    )
    high_volume: bool = knob(
        False, description="Use the high-volume endpoint (for many small automated requests)."
    )
    grid: AbsolutePath | None = knob(
        None, description="Cell grid (from `watergee gee grid`) that the gee-download step fetches."
    )
    name: str = knob("cells", min_length=1, description="Name of a download: its record and log.")
    model: AbsolutePath | None = knob(
        None,
        description="Model folder the gee-export step turns into an Earth Engine expression "
        "(`watergee run`: the model trained last).",
    )
    sensor: Literal["landsat", "sentinel2"] = Field(
        "landsat",
        description="landsat: Landsat 8/9 Collection 2 Level 2 (water_gee); sentinel2: "
        "Sentinel-2 surface reflectance, harmonized.",
    )
    years: list[int] = Field(
        default_factory=lambda: [2021], min_length=1, description="Years pooled in one composite."
    )
    months: tuple[int, int] = Field(
        (6, 8), description="First and last month of the season (June-August: 6, 8)."
    )
    reducer: Literal["median", "mean"] = Field(
        "median", description="How the clear observations of a pixel are combined."
    )
    label_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="A pixel's noisy label is water when at least this share of its clear "
        "observations is flagged water (QA_PIXEL bit 7, or SCL class 6).",
    )
    cell: float = Field(0.135, gt=0, le=90, description="Grid cell side in degrees.")
    cell_pixels: int = Field(
        512,
        ge=16,
        le=1_000_000,
        description="Pixels along a cell's side (512: about 29 m at 0.135 deg, Landsat; "
        "1536: about 10 m, Sentinel-2).",
    )
    concurrency: int = knob(
        40, ge=1, le=1000, description="Requests in flight at once (the default project quota)."
    )
    retries: int = knob(
        8,
        ge=0,
        le=50,
        description="Retries of a request refused for quota (429) or failing "
        "on the server (5xx), with exponential backoff and jitter.",
    )
    backoff: float = knob(1.0, gt=0, description="First wait before a retry, in seconds.")
    request_bytes: int = knob(
        48 * 1024 * 1024,
        ge=4096,
        le=48 * 1024 * 1024,
        description="Uncompressed bytes per request; cells are split to stay within it "
        "(Earth Engine refuses more than 48 MiB).",
    )

    @model_validator(mode="after")
    def _season(self) -> GeeSettings:
        first, last = self.months
        if not (1 <= first <= 12 and 1 <= last <= 12):
            raise ValueError(f"months {self.months}: each must be 1 to 12")
        return self


class ClusterSettings(Section):
    """Where tiles run. `local`: an embedded cluster on this machine; `scheduler`: a running
    Dask scheduler; `slurm`: workers submitted as Slurm jobs (dask-jobqueue); `slurm-runner`:
    scheduler, driver and workers as the tasks of one `srun` inside an allocation."""

    placement_only: ClassVar[bool] = True
    kind: ClusterKind = Field(
        "local",
        description="local, scheduler, slurm or slurm-runner (giving 'scheduler' an address "
        "implies 'scheduler').",
    )
    scheduler: str | None = Field(
        None, description="Address of a running Dask scheduler (tcp://host:8786), kind scheduler."
    )
    connect_timeout: float = Field(
        30.0, gt=0, description="Seconds to wait for the scheduler given by 'scheduler'."
    )
    workers: int | None = Field(
        None, ge=1, description="Local cluster worker processes; default: the CPU count."
    )
    threads_per_worker: int = Field(1, ge=1, description="Threads in each local worker.")
    processes: bool = Field(
        True, description="Local workers as separate processes (False: threads in this one)."
    )
    memory_limit: str = Field(
        "auto", description="Memory limit per local worker, e.g. '4GB'; 'auto' shares RAM."
    )
    gdal_cache_mb: int = Field(
        256,
        ge=16,
        description="GDAL block cache per worker in MB (GDAL's own default is 5 % of RAM per "
        "process); an explicit GDAL_CACHEMAX in the environment wins.",
    )
    dashboard: str | None = Field(
        None,
        description="Dashboard address, e.g. ':8787' (all interfaces); default a free port, "
        "on localhost only for slurm and slurm-runner.",
    )
    # Slurm workers (kind slurm), one Dask worker process per job unless job_processes says
    partition: str | None = Field(None, description="Slurm partition of the worker jobs (-p).")
    account: str | None = Field(None, description="Slurm account charged (-A).")
    job_cores: int = Field(1, ge=1, description="Cores per worker job (--cpus-per-task).")
    job_processes: int = Field(1, ge=1, description="Dask worker processes per job.")
    job_memory: ByteSize = Field("4GB", description="Memory per worker job, e.g. '16GB' (--mem).")
    walltime: SlurmTime = Field("01:00:00", description="Walltime per worker job (-t HH:MM:SS).")
    gpus: int = Field(
        0,
        ge=0,
        description="GPUs per worker job (--gres=gpu:N); its workers offer a Dask resource "
        "GPU=N, and stages that declare a GPU run only there.",
    )
    gres: str | None = Field(
        None, description="The generic resource line instead of gpu:N, e.g. 'gpu:a100:1'."
    )
    worker_resources: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict,
        description="Dask resources every worker offers in addition, e.g. {GPU: 1}.",
    )
    job_directives: list[str] = Field(
        default_factory=list,
        description="More #SBATCH lines, without the prefix, e.g. '--constraint=a100'.",
    )
    prologue: list[str] = Field(
        default_factory=list,
        description="Shell lines run before the worker starts, e.g. 'module load cuda'.",
    )
    interface: str | None = Field(
        None, description="Network interface the scheduler and workers talk on, e.g. 'ib0'."
    )
    local_directory: str | None = Field(
        None, description="Worker scratch folder on the compute node, e.g. '$TMPDIR'."
    )
    python: str | None = Field(
        None, description="Python that starts a worker; default: the one running watergee."
    )
    image: str | None = Field(
        None,
        description="Apptainer image the workers run in: python becomes "
        "'apptainer exec --nv --bind BINDS IMAGE python'.",
    )
    binds: list[str] = Field(
        default_factory=list, description="Folders bound into the image, e.g. '/scratch'."
    )
    apptainer: str = Field("apptainer", description="The apptainer (or singularity) command.")
    min_jobs: int = Field(0, ge=0, description="Adaptive scaling: fewest worker jobs.")
    max_jobs: int = Field(4, ge=1, description="Adaptive scaling: most worker jobs.")
    lifetime: Duration | None = Field(
        "55m",
        description="Workers leave after this long and are replaced (set below the walltime, "
        "so that Slurm never kills a worker mid-tile); null: never.",
    )
    lifetime_stagger: Duration = Field("4m", description="Random spread of the lifetimes.")
    allowed_failures: int = Field(
        3, ge=0, description="Times a tile is retried on another worker after losing one."
    )
    tls: bool = Field(
        True,
        description="slurm and slurm-runner: encrypt and authenticate with per-run temporary "
        "certificates, readable by you only and removed after the run.",
    )
    shared_directory: str | None = Field(
        None,
        description="A folder every node sees, for worker logs, certificates and the "
        "scheduler file; default: .watergee/cluster in the output folder.",
    )

    @model_validator(mode="before")
    @classmethod
    def _scheduler_implies_kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("scheduler") and data.get("kind") in (None, "local"):
            data = {**data, "kind": "scheduler"}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ClusterSettings:
        if self.kind == "scheduler" and not self.scheduler:
            raise ValueError("kind 'scheduler' needs the 'scheduler' address")
        if self.min_jobs > self.max_jobs:
            raise ValueError(f"min_jobs {self.min_jobs} is above max_jobs {self.max_jobs}")
        return self


class Settings(Section):
    """Everything a run needs; science sections first, the cluster section apart."""

    sentinel2: Sentinel2Settings = Field(
        default_factory=Sentinel2Settings, description="Sentinel-2 band scaling and nodata."
    )
    output: OutputSettings = Field(
        default_factory=OutputSettings, description="How rasters are written."
    )
    resample: ResampleSettings = Field(
        default_factory=ResampleSettings, description="The resample stage."
    )
    indices: IndicesSettings = Field(
        default_factory=IndicesSettings, description="The indices stage."
    )
    superpixel: SuperpixelSettings = Field(
        default_factory=SuperpixelSettings, description="The superpixel stage (SLIC)."
    )
    sample: SampleSettings = Field(
        default_factory=SampleSettings, description="The sample stage: training patches."
    )
    train: TrainSettings = Field(
        default_factory=TrainSettings, description="Model training (watergee train)."
    )
    classify: ClassifySettings = Field(
        default_factory=ClassifySettings, description="The classify stage."
    )
    denoise: DenoiseSettings = Field(
        default_factory=DenoiseSettings,
        description="Label-noise correction of water labels by self-training.",
    )
    product: ProductSettings = Field(
        default_factory=ProductSettings, description="What the product stages read."
    )
    clip: ClipSettings = Field(
        default_factory=ClipSettings, description="The clip stage: overlap and boundary clips."
    )
    merge: MergeSettings = Field(
        default_factory=MergeSettings, description="The merge stage: one mosaic of all tiles."
    )
    sieve: SieveSettings = Field(
        default_factory=SieveSettings, description="The sieve stage: minimum mapping unit."
    )
    extract: ExtractSettings = Field(
        default_factory=ExtractSettings, description="The extract stage: one class as 0/1."
    )
    transfer: TransferSettings = Field(
        default_factory=TransferSettings, description="The label-transfer stage: new codes."
    )
    polygonise: PolygoniseSettings = Field(
        default_factory=PolygoniseSettings, description="The polygonise stage: vector output."
    )
    evaluate: EvaluateSettings = Field(
        default_factory=EvaluateSettings, description="The evaluate stage: accuracy and area."
    )
    gee: GeeSettings = Field(
        default_factory=GeeSettings,
        description="The Earth Engine commands (watergee gee ...): composite, grid, downloads.",
    )
    cluster: ClusterSettings = Field(
        default_factory=ClusterSettings,
        description="Where stages run; never part of an output's settings hash.",
    )


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown key '{key}'"
    return f"'{key}': {error['msg'].removeprefix('Value error, ')}"


def _validate(data: dict[str, Any], origin: str) -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise ConfigError(f"{origin}: {problems}") from None


def read_yaml(path: Path, what: str = "config") -> dict[str, Any]:
    """A YAML mapping from a file; errors name the file and the line."""
    text = read_text(path, ConfigError, what)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: {problem}{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping (of keys and values)")
    return data


#: The top-level key of a config that holds the steps of `watergee run`; every other command
#: reads the same file for its settings and leaves this key alone.
PIPELINE_KEY = "pipeline"


def _apply_override(data: dict[str, Any], item: str) -> None:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected section.key=value")
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {item!r}: '{part}' is not a section")
        node = child
    try:
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        node[parts[-1]] = raw


def _set_value(data: dict[str, Any], dotted: str, value: Any) -> None:
    section, key = dotted.split(".", 1)
    node = data.setdefault(section, {})
    if not isinstance(node, dict):
        raise ConfigError(f"'{section}' is not a section")
    node[key] = value


def load_settings(
    path: Path | None = None,
    overrides: list[str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> Settings:
    """Resolve the settings of one run: defaults, then the YAML file, then `--set` overrides
    (YAML values), then the typed values of command options (`{"classify.model": Path}`),
    which are taken as they are, never re-parsed."""
    data = read_yaml(path) if path is not None else {}
    data.pop(PIPELINE_KEY, None)  # the steps of `watergee run`, read by the pipeline
    origin = str(path) if path is not None else "settings"
    _validate(data, origin)
    for item in overrides or []:
        _apply_override(data, item)
    for dotted, value in (values or {}).items():
        _set_value(data, dotted, value)
    return _validate(data, f"{origin} with command-line values" if overrides or values else origin)


def science(section: Section) -> dict[str, Any]:
    """The fields of a section that change results, as JSON values; a later field only where
    it is not at its default."""
    kind = type(section)
    left_out = {
        name
        for name, field in kind.model_fields.items()
        if is_knob(kind, name) or (is_later(kind, name) and getattr(section, name) == field.default)
    }
    return section.model_dump(mode="json", exclude=left_out)


def section_hash(settings: Settings, sections: tuple[str, ...]) -> str:
    """A stable digest of the science fields of the sections a stage reads (defaults
    included): knobs never make a finished output look stale."""
    payload = {name: science(getattr(settings, name)) for name in sections}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def settings_yaml(settings: Settings) -> str:
    return yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False)


def save_settings(settings: Settings, out: Path) -> Path:
    """Write the resolved settings beside the outputs, named by their hash, and return it."""
    digest = hashlib.sha256(settings_yaml(settings).encode()).hexdigest()[:16]
    folder = out / ".watergee" / "settings"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}.yaml"
    if not path.exists():
        header = f"# watergee {__version__} resolved settings, sha256 prefix {digest}\n"
        with atomic_path(path) as tmp:
            tmp.write_text(header + settings_yaml(settings))
    return path


def _wrap_comment(text: str, indent: str) -> list[str]:
    import textwrap

    return [f"{indent}# {line}" for line in textwrap.wrap(text, width=96 - len(indent))]


#: How `watergee config` marks the settings a finished output does not depend on.
UNHASHED = "[Changing it leaves finished outputs current.]"


def annotated_yaml(settings: Settings | None = None) -> str:
    """Settings as YAML with every field's description as a comment: configs/defaults.yaml."""
    settings = settings or Settings()
    lines = ["# watergee settings. Every key is optional; unknown keys are rejected."]
    for name, field in Settings.model_fields.items():
        section = getattr(settings, name)
        placement = getattr(type(section), "placement_only", False)
        about = (field.description or name) + (f" {UNHASHED}" if placement else "")
        lines += ["", *_wrap_comment(about, ""), f"{name}:"]
        for key, sub in type(section).model_fields.items():
            value = yaml.safe_dump(
                {key: getattr(section, key)}, default_flow_style=True, sort_keys=False
            ).strip()[1:-1]
            knob_note = f" {UNHASHED}" if is_knob(type(section), key) and not placement else ""
            lines += [*_wrap_comment((sub.description or key) + knob_note, "  "), f"  {value}"]
    return "\n".join(lines) + "\n"
