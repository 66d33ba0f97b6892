"""The stage registry: each stage is a plain function of (tile, settings, output folder)."""

from __future__ import annotations

from watergee.sampleset import SECTIONS as SAMPLE_SECTIONS
from watergee.sampleset import write_manifest
from watergee.stage import Stage
from watergee.stages.classify import classify
from watergee.stages.combine import combine
from watergee.stages.denoise import denoise
from watergee.stages.indices import indices
from watergee.stages.resample import resample
from watergee.stages.sample import sample
from watergee.stages.superpixel import superpixel

STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in (
        Stage(
            "resample",
            resample,
            ("sentinel2", "output", "resample"),
            "bring the 20 m bands onto the 10 m grid",
        ),
        Stage("combine", combine, ("sentinel2", "output"), "write the 10-band 10 m stack"),
        Stage("indices", indices, ("output", "indices"), "NDWI, MNDWI, NDVI and the line band"),
        Stage(
            "superpixel",
            superpixel,
            ("output", "superpixel"),
            "SLIC segments and their centroids",
        ),
        Stage(
            "sample",
            sample,
            SAMPLE_SECTIONS,
            "training and validation patches from label rasters",
            finish=write_manifest,
        ),
        Stage(
            "classify",
            classify,
            ("sentinel2", "output", "resample", "classify"),
            "class maps per pixel or per superpixel",
        ),
        Stage(
            "denoise",
            denoise,
            ("output", "denoise"),
            "correct noisy water labels by self-training",
        ),
    )
}
