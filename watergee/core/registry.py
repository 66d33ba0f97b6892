"""Every stage by name: what it reads, which settings it hashes, its command options.

Functions are named, not imported: building `watergee --help` from this table imports no stage,
no numpy, GDAL, TensorFlow or Earth Engine.
"""

from __future__ import annotations

from pathlib import Path

from watergee.core.stage import Option, Stage

GPU = {"GPU": 1}
#: Product stages end by (re)writing the STAC Catalog of every Item under their --out.
CATALOG = "watergee.io.stac:write_catalog"


def _work(section: str) -> Option:
    return Option(
        "work",
        f"{section}.work",
        Path,
        "Folder with the tiles' stacks (and segments) from earlier stages (default: --out).",
    )


def _labels(section: str, help_text: str) -> Option:
    return Option("labels", f"{section}.labels", Path, help_text)


SAMPLE_SECTIONS = ("output", "sample")
_PRODUCT_WORK = Option(
    "work", "product.work", Path, "Folder with the tiles' class maps (default: --out)."
)
_INPUT = Option(
    "input",
    "product.input",
    str,
    "Which raster of each tile to read.",
    choices=("classes", "clipped", "transferred", "sieved"),
)


def _product_stage(
    name: str,
    function: str,
    section: str,
    summary: str,
    options: tuple[Option, ...],
    needs: tuple[str, ...] = (),
    check: str | None = None,
) -> Stage:
    """A stage that turns each tile's class map (or a mosaic listed as a tile) into a product."""
    return Stage(
        name, function, ("output", "product", section), summary,
        help="A tile list entry that is a raster (a mosaic) is read as it is; --input picks "
        "what an earlier product stage made of it (or of each tile's class map) instead.",
        options=(*options, _INPUT, _PRODUCT_WORK),
        work="product.work",
        finish=CATALOG,
        needs=needs,
        check=check,
    )  # fmt: skip


STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in (
        Stage(
            "resample",
            "watergee.stages.resample:resample",
            ("sentinel2", "output", "resample"),
            "Resample the six 20 m bands (B05 B06 B07 B8A B11 B12) onto each tile's 10 m grid.",
            folder_tiles_only=True,
        ),
        Stage(
            "combine",
            "watergee.stages.combine:combine",
            ("sentinel2", "output"),
            "Write each tile's 10-band 10 m stack: B02 B03 B04 B08 B05 B06 B07 B8A B11 B12.",
            upstream=(("resample", None),),
            folder_tiles_only=True,
        ),
        Stage(
            "indices",
            "watergee.stages.indices:indices",
            ("output", "indices"),
            "Compute NDWI, MNDWI, NDVI and the line band from each tile's 10-band stack.",
            upstream=(("combine", None),),
        ),
        Stage(
            "superpixel",
            "watergee.stages.superpixel:superpixel",
            ("output", "superpixel"),
            "Segment each tile into SLIC superpixels: a segment-id raster and a GeoPackage of "
            "segment centroids with pixel counts and mean band values.",
            upstream=(("combine", None),),
        ),
        Stage(
            "sample",
            "watergee.stages.sample:sample",
            SAMPLE_SECTIONS,
            "Draw training and validation patches per tile from label rasters (or labelled "
            "points), reproducibly and without replacement.",
            help="`watergee sample validate SAMPLES` checks a sample set.",
            finish="watergee.sampleset:write_manifest",
            options=(
                _labels(
                    "sample",
                    "Label raster, or a folder / .txt list of label rasters named by tile.",
                ),
                _work("sample"),
            ),
            upstream=(("combine", None), ("superpixel", ("sample.mode", ("superpixel",)))),
            work="sample.work",
            needs=("sample.labels", "sample.points"),
            check="watergee.stages.sample:check",
        ),
        Stage(
            "train",
            "watergee.stages.train:train",
            ("train",),
            "Train a model from a sample set into a self-describing model folder.",
            options=(
                Option("samples", "train.samples", Path, "Sample set folder.", short="s"),
                Option(
                    "model",
                    "train.model",
                    str,
                    "Model kind.",
                    choices=("pixelcnn", "dense-resnet", "resnet", "svm", "rf"),
                ),
            ),
            unit="train.model",
            source="samples",
            resources=GPU,
            command=False,
        ),
        Stage(
            "classify",
            "watergee.stages.classify:classify",
            ("sentinel2", "output", "resample", "classify"),
            "Classify each tile with a model, per pixel or per superpixel.",
            help="Pixel CNNs and dense ResNets run once over each window of the tile; the patch "
            "ResNet classifies one patch per pixel and is slow by nature: use --mode superpixel "
            "(one patch per segment with classify.superpixel_rule=seed) or a dense-resnet for "
            "whole tiles.",
            options=(
                Option("model", "classify.model", Path, "Model folder.", required=True, short="m"),
                Option(
                    "mode",
                    "classify.mode",
                    str,
                    "pixel: a class per pixel; superpixel: one per segment.",
                    choices=("pixel", "superpixel"),
                ),
                _work("classify"),
            ),
            upstream=(
                ("combine", ("classify.source", ("stack",))),
                ("superpixel", ("classify.mode", ("superpixel",))),
            ),
            work="classify.work",
            variant="classify.mode",
            finish=CATALOG,
            resources=GPU,
            needs=("classify.model",),
            check="watergee.stages.classify:check",
        ),
        Stage(
            "denoise",
            "watergee.stages.denoise:denoise",
            ("output", "denoise"),
            "Correct each tile's noisy water labels (QA water bit, SCL water, an index "
            "threshold, OSM): whole land covers labelled water, water bodies left out.",
            help="OUT/denoised.txt lists the corrected labels, for `sample --labels`.",
            options=(
                _labels(
                    "denoise",
                    "Noisy water labels: a raster, or a folder / .txt list per tile.",
                ),
                _work("denoise"),
            ),
            upstream=(("combine", None),),
            work="denoise.work",
            finish="watergee.io.labels:write_denoised_list",
            resources=GPU,
            needs=("denoise.labels",),
            check="watergee.stages.denoise:check",
        ),
        Stage(
            "clip",
            "watergee.stages.clip:clip",
            ("output", "product", "clip"),
            "Cut each class map to the part its tile alone owns (its MGRS square within its UTM "
            "zone, a footprint or a mask) and to a boundary (--aoi).",
            help="Neighbouring tiles then give every pixel exactly once. A tile list entry that "
            "is a raster (a mosaic) is clipped as it is; with clip.rule none only --aoi cuts.",
            options=(
                Option("aoi", "clip.aoi", Path, "Boundary to clip to (any OGR vector file)."),
                Option(
                    "rule",
                    "clip.rule",
                    str,
                    "Which part a tile owns.",
                    choices=("mgrs", "footprints", "mask", "none"),
                ),
                _PRODUCT_WORK,
            ),
            work="product.work",
            finish=CATALOG,
            needs=("clip.aoi", "clip.footprints", "clip.mask"),
            check="watergee.stages.clip:check",
        ),
        Stage(
            "merge",
            "watergee.stages.merge:merge",
            ("output", "product", "merge"),
            "Merge every tile's class map into one mosaic (default EPSG:3035, 10 m): a Cloud "
            "Optimized GeoTIFF with MODE overviews, the same wherever the tiles are listed.",
            help="Each pixel comes from the tile that owns it (its MGRS square within the "
            "nearest UTM zone), decided on the mosaic's own grid, so UTM zones meet without "
            "gap or overlap; where that tile is absent or has no data, from the tile with data "
            "whose centre is nearest. Written to OUT/NAME/NAME.tif.",
            options=(
                Option("name", "merge.name", str, "Product name (default: mosaic)."),
                Option("crs", "merge.crs", str, "Target CRS (default: EPSG:3035)."),
                _INPUT,
                _PRODUCT_WORK,
            ),
            work="product.work",
            unit="merge.name",
            finish=CATALOG,
            check="watergee.stages.merge:check",
        ),
        _product_stage(
            "label-transfer",
            "watergee.stages.transfer:label_transfer",
            "transfer",
            "Map class codes through an explicit table (e.g. model classes to Corine codes); a "
            "code missing from the table fails the tile, naming it, unless a default is set.",
            (
                Option(
                    "table",
                    "transfer.table_file",
                    Path,
                    "YAML file: {table: {12: 5}, default: null, names: {5: water}}.",
                ),
            ),
            needs=("transfer.table_file",),
            check="watergee.stages.transfer:check",
        ),
        _product_stage(
            "extract",
            "watergee.stages.extract:extract",
            "extract",
            "Extract one class (e.g. water) as a 0/1 or 0/code raster, no data kept (255).",
            (Option("class", "extract.class_id", int, "The class to extract.", required=True),),
        ),
        _product_stage(
            "sieve",
            "watergee.stages.sieve:sieve",
            "sieve",
            "Merge patches below the minimum mapping unit into their largest neighbour (GDAL's "
            "sieve filter; OSMLULC: 64 px, 8-connected).",
            (
                Option("min-size", "sieve.min_size", int, "Smallest patch kept, in pixels."),
                Option(
                    "min-area",
                    "sieve.min_area",
                    float,
                    "Smallest patch kept, in m2 (5000 = 0.5 ha).",
                ),
                Option("connectivity", "sieve.connectivity", int, "4 or 8."),
            ),
        ),
        _product_stage(
            "polygonise",
            "watergee.stages.polygonise:polygonise",
            "polygonise",
            "Turn classes (water) into polygons with class, name, area (m2) and perimeter (m), "
            "in a GeoPackage or FlatGeobuf, through GDAL's polygonize.",
            (
                Option(
                    "class",
                    "polygonise.classes",
                    list[int],
                    "A class to turn into polygons (repeatable); default: every class.",
                ),
                Option("min-area", "polygonise.min_area", float, "Smallest polygon kept, in m2."),
                Option("format", "polygonise.format", str, "gpkg or fgb.", choices=("gpkg", "fgb")),
            ),
        ),
        Stage(
            "evaluate",
            "watergee.stages.evaluate:evaluate",
            ("evaluate",),
            "Accuracy of a class map against reference rasters, polygons or points: confusion "
            "matrix, kappa, per-class accuracy, F1 and IoU with confidence intervals, and "
            "area-adjusted accuracy and class areas for a stratified sample (Olofsson et al. "
            "2014); JSON and an HTML report.",
            help="--sample-design draws the stratified sample to label instead. Written to "
            "OUT/NAME/NAME.json, .html and .png (NAME-sample.gpkg for --sample-design).",
            options=(
                Option(
                    "classified",
                    "evaluate.classified",
                    Path,
                    "The class map to evaluate.",
                    required=True,
                ),
                Option(
                    "reference",
                    "evaluate.reference",
                    Path,
                    "Reference raster, polygons or points with a class attribute.",
                    required_unless="sample-design",
                ),
                Option("field", "evaluate.field", str, "Class attribute of a vector reference."),
                Option(
                    "sample-design",
                    "evaluate.sample_design",
                    bool,
                    "Draw a stratified random sample of points to label instead.",
                ),
                Option("sample-size", "evaluate.sample_size", int, "Points in the sample design."),
                Option("name", "evaluate.name", str, "Report name (default: evaluation)."),
            ),
            unit="evaluate.name",
            source="classified",
            variant="evaluate.sample_design",
            needs=("evaluate.reference", "evaluate.classified"),
            check="watergee.stages.evaluate:check",
        ),
        Stage(
            "gee-download",
            "watergee.gee.stages:gee_download",
            ("output", "gee"),
            "Earth Engine: every grid cell's features and noisy water label, as tiles.",
            help="`watergee gee download` as a step of `watergee run`: one task keeps the "
            "project's request quota for the whole grid. Writes OUT/features/ID.tif, "
            "OUT/labels/ID.tif and OUT/tiles.txt.",
            options=(
                Option(
                    "grid", "gee.grid", Path, "Cell grid (from `watergee gee grid`).", required=True
                ),
            ),
            unit="gee.name",
            source="grid",
            command=False,
        ),
        Stage(
            "gee-export",
            "watergee.gee.stages:gee_export",
            (),
            "Earth Engine: the trained pixel CNN as one image expression, checked against Keras.",
            help="`watergee gee export-model` as a step of `watergee run`.",
            options=(
                Option("model", "gee.model", Path, "Model folder (a pixel CNN).", required=True),
            ),
            unit="gee.model",
            source="model",
            command=False,
            needs=("gee.model",),
            check="watergee.gee.stages:check_export",
        ),
    )
}
